package appservice

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
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
		{"/health/ready", 200, []string{`"ready":true`, `"database":"ok"`, `"homeserver":"ok"`, `"core":"running"`, `"rec":"connected"`}},
		{"/metrics", 200, []string{`switchboard_transactions_total{result="committed"} 1`, "switchboard_inbox_queue_depth", "switchboard_events_received_total 1",
			`switchboard_module_connected{module="rec"} 1`}},
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

// statusModule is a recModule that reports a settable connection state.
type statusModule struct {
	*recModule
	mu     sync.Mutex
	status ModuleStatus // guarded by mu
}

func (m *statusModule) Status(context.Context) ModuleStatus {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.status
}

func (m *statusModule) set(st ModuleStatus) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.status = st
}

// TestReadinessFollowsModuleStatus (issue 10, item 15): a module whose StatusReporter says
// it is not connected makes /health/ready fail with its state, and its
// switchboard_module_connected gauge 0; reconnected, both recover. Before Start and after
// Stop, the modules count as not connected and the core says so. (Here without the
// reconnect grace: see TestReadinessGrace.)
func TestReadinessFollowsModuleStatus(t *testing.T) {
	mod := &statusModule{recModule: &recModule{id: "xmpp"}, status: ModuleStatus{Connected: true, State: "connected"}}
	env := startCore(t, sqliteStore(t), mod)
	// No reconnect grace and no cached look: each change shows at once (the grace and the
	// cache have their own tests in metrics_test.go).
	env.core.life.grace, env.core.metrics.modules.ttl = 0, 0
	ops := httptest.NewServer(env.core.OpsHandler())
	defer ops.Close()
	check := func(t *testing.T, wantStatus int, wantModule, wantCore, wantGauge string) {
		t.Helper()
		code, body := getBody(t, ops.URL+"/health/ready")
		var ready struct {
			Ready   bool              `json:"ready"`
			Checks  map[string]string `json:"checks"`
			Modules map[string]string `json:"modules"`
		}
		if err := json.Unmarshal([]byte(body), &ready); err != nil {
			t.Fatalf("/health/ready: %v: %s", err, body)
		}
		if code != wantStatus || ready.Ready != (wantStatus == 200) || ready.Modules["xmpp"] != wantModule || ready.Checks["core"] != wantCore {
			t.Errorf("/health/ready = %d %s, want %d with xmpp %q and core %q", code, body, wantStatus, wantModule, wantCore)
		}
		if _, metrics := getBody(t, ops.URL+"/metrics"); !strings.Contains(metrics, wantGauge) {
			t.Errorf("/metrics lacks %q", wantGauge)
		}
	}
	tests := []struct {
		name       string
		status     ModuleStatus
		wantStatus int
		wantModule string
		wantGauge  string
	}{
		{"connected", ModuleStatus{Connected: true, State: "connected"}, 200, "connected", `switchboard_module_connected{module="xmpp"} 1`},
		{"disconnected", ModuleStatus{State: "reconnecting in 8s", LastError: "dial tcp: refused"}, 503,
			"not connected: reconnecting in 8s", `switchboard_module_connected{module="xmpp"} 0`},
		{"disconnected without a state", ModuleStatus{}, 503, "not connected", `switchboard_module_connected{module="xmpp"} 0`},
		{"reconnected", ModuleStatus{Connected: true}, 200, "connected", `switchboard_module_connected{module="xmpp"} 1`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			mod.set(tt.status)
			check(t, tt.wantStatus, tt.wantModule, "running", tt.wantGauge)
		})
	}
	t.Run("stopped", func(t *testing.T) {
		if err := env.core.Stop(context.Background()); err != nil {
			t.Fatal(err)
		}
		check(t, 503, "not connected: not started", "not started", `switchboard_module_connected{module="xmpp"} 0`)
	})
}

func getBody(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}
