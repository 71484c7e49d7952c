package daemon

import (
	"fmt"

	"github.com/switchboard-matrix/switchboard/appservice"
	"github.com/switchboard-matrix/switchboard/config"
	"github.com/switchboard-matrix/switchboard/internal/clamd"
	"github.com/switchboard-matrix/switchboard/internal/clamdscanner"
)

// scanningOptions is the core's scanning configuration; a nil Scanner when it is off.
func scanningOptions(sc config.ScanningConfig) (appservice.Scanning, error) {
	if !sc.Enabled {
		return appservice.Scanning{}, nil
	}
	network, addr, err := config.ClamdAddress(sc.Clamd)
	if err != nil {
		return appservice.Scanning{}, fmt.Errorf("scanning.clamd: %w", err)
	}
	c := clamd.New(network, addr)
	c.MaxStream = sc.MaxBytes
	c.Timeout = sc.Timeout.Std()
	return appservice.Scanning{
		Scanner: clamdscanner.New(c), FailOpen: sc.OnUnavailable == config.FailOpen, MaxBytes: sc.MaxBytes,
		Outbound: sc.Outbound, Hold: sc.Hold.Std(), VerdictTTL: sc.VerdictTTL.Std(), Timeout: sc.Timeout.Std(),
	}, nil
}
