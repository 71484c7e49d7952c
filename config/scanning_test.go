package config

import (
	"strings"
	"testing"
)

func TestScanningProblems(t *testing.T) {
	tests := []struct {
		name string
		yaml string
		want string // "" for none
	}{
		{name: "off by default", yaml: ""},
		{name: "tcp", yaml: "scanning: {enabled: true, clamd: 'tcp://127.0.0.1:3310'}"},
		{name: "unix socket", yaml: "scanning: {enabled: true, clamd: 'unix:///run/clamav/clamd.ctl', on_unavailable: fail_open}"},
		{name: "no address", yaml: "scanning: {enabled: true}", want: "scanning.clamd: required when scanning is enabled"},
		{name: "address without scheme", yaml: "scanning: {enabled: true, clamd: '127.0.0.1:3310'}", want: "scanning.clamd: \"127.0.0.1:3310\": want tcp://host:port or unix:///path"},
		{name: "tcp without port", yaml: "scanning: {enabled: true, clamd: 'tcp://localhost'}", want: "scanning.clamd: \"tcp://localhost\": want tcp://host:port"},
		{name: "relative socket", yaml: "scanning: {enabled: true, clamd: 'unix://clamd.ctl'}", want: "want unix:///absolute/path"},
		{name: "unknown policy", yaml: "scanning: {on_unavailable: ignore}", want: `scanning.on_unavailable: must be "fail_closed" or "fail_open", not "ignore"`},
		{name: "negative size", yaml: "scanning: {max_bytes: -1}", want: "scanning.max_bytes: must be > 0"},
		{name: "negative hold", yaml: "scanning: {hold: -1m}", want: "scanning.hold: must be > 0"},
		{name: "negative verdict ttl", yaml: "scanning: {verdict_ttl: -1h}", want: "scanning.verdict_ttl: must be > 0"},
		{name: "unknown key", yaml: "scanning: {address: x}", want: "scanning.address: unknown key"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse([]byte(minimal + tt.yaml + "\n"))
			switch {
			case tt.want == "" && err != nil:
				t.Fatalf("unexpected problem: %v", err)
			case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
				t.Fatalf("problems %v, want %q", err, tt.want)
			}
		})
	}
}

func TestScanningExplicitValues(t *testing.T) {
	c, err := Parse([]byte(minimal + "scanning: {enabled: true, clamd: 'tcp://[::1]:3310', outbound: false, hold: 30s}\n"))
	if err != nil {
		t.Fatal(err)
	}
	sc := c.Scanning
	if !sc.Enabled || sc.Outbound || sc.Hold.Std().Seconds() != 30 || sc.OnUnavailable != FailClosed {
		t.Errorf("scanning = %+v", sc)
	}
	network, addr, err := ClamdAddress(sc.Clamd)
	if network != "tcp" || addr != "[::1]:3310" || err != nil {
		t.Errorf("ClamdAddress = %q, %q, %v", network, addr, err)
	}
}
