package config

import (
	"strings"
	"testing"
)

func TestHighAvailabilityProblems(t *testing.T) {
	pg := "database: {uri: 'postgres://sb@db.example.org/switchboard'}\n"
	tests := []struct {
		name string
		yaml string
		want string // "" for none
	}{
		{name: "off by default", yaml: ""},
		{name: "on PostgreSQL", yaml: pg + "high_availability: {enabled: true}"},
		{name: "on SQLite", yaml: "high_availability: {enabled: true}", want: "high_availability.enabled: needs a PostgreSQL database"},
		{name: "fence delay within the lease", yaml: pg + "high_availability: {enabled: true, check_interval: 2s, fence_delay: 3s}",
			want: "high_availability.fence_delay: must be longer than check_interval + check_timeout (3s)"},
		{name: "negative interval", yaml: "high_availability: {check_interval: -1s}", want: "high_availability.check_interval: must be > 0"},
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
