package appservice

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestOpsEndpoints(t *testing.T) {
	env := startCore(t, sqliteStore(t))
	env.putTxn(t, "1", msgEvent("$m1", "!nowhere:test", "x"))
	ops := httptest.NewServer(env.core.OpsHandler())
	defer ops.Close()
	tests := []struct {
		path   string
		status int
		want   []string
	}{
		{"/health", 200, []string{`"live":true`}},
		{"/health/ready", 200, []string{`"ready":true`, `"database":"ok"`, `"homeserver":"ok"`}},
		{"/metrics", 200, []string{`switchboard_transactions_total{result="committed"} 1`, "switchboard_inbox_queue_depth", "switchboard_events_received_total 1"}},
		{"/nothing", 404, nil},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			resp, err := http.Get(ops.URL + tt.path)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			body, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != tt.status {
				t.Fatalf("status %d, want %d", resp.StatusCode, tt.status)
			}
			for _, w := range tt.want {
				if !strings.Contains(string(body), w) {
					t.Errorf("body lacks %q:\n%.2000s", w, body)
				}
			}
		})
	}
	env.hs.Close() // the homeserver goes away: not ready any more
	resp, err := http.Get(ops.URL + "/health/ready")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("ready without homeserver: status %d, want 503", resp.StatusCode)
	}
}
