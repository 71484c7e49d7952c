package daemon

import (
	"testing"
	"time"

	"github.com/switchboard-matrix/switchboard/config"
)

func TestScanningOptions(t *testing.T) {
	off, err := scanningOptions(config.ScanningConfig{Clamd: "tcp://127.0.0.1:3310"})
	if err != nil || off.Scanner != nil {
		t.Errorf("disabled: %+v, %v; want no scanner", off, err)
	}
	on, err := scanningOptions(config.ScanningConfig{Enabled: true, Clamd: "unix:///run/clamav/clamd.ctl",
		OnUnavailable: config.FailOpen, MaxBytes: 1 << 20, Outbound: true, Hold: config.Duration(time.Minute),
		Timeout: config.Duration(time.Second), VerdictTTL: config.Duration(time.Hour)})
	if err != nil || on.Scanner == nil || !on.FailOpen || on.MaxBytes != 1<<20 || !on.Outbound || on.Hold != time.Minute ||
		on.Timeout != time.Second || on.VerdictTTL != time.Hour {
		t.Errorf("enabled: %+v, %v", on, err)
	}
	if _, err := scanningOptions(config.ScanningConfig{Enabled: true, Clamd: "clamd:3310"}); err == nil {
		t.Error("a bad address was accepted")
	}
}
