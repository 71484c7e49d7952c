package appservice

import (
	"encoding/json"
	"net/http"
	"os"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// metricValue is the value of the series name{module, kind} in the core's registry (kind
// empty: a series without one); ok is false when there is no such series.
func metricValue(t *testing.T, c *Core, name, module, kind string) (v float64, ok bool) {
	t.Helper()
	families, err := c.Gatherer().Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range families {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			if labels["module"] != module || labels["kind"] != kind {
				continue
			}
			switch {
			case m.GetGauge() != nil:
				return m.GetGauge().GetValue(), true
			case m.GetCounter() != nil:
				return m.GetCounter().GetValue(), true
			}
		}
	}
	return 0, false
}

// TestModuleGauges: the per-module gauges carry the status page's numbers for every module:
// connected, outbox queue, portals, ghosts (of its own namespace only).
func TestModuleGauges(t *testing.T) {
	env, _ := statusEnv(t)
	mod := env.core.modules["xmpp"].(*statusModule)
	mod.set(ModuleStatus{Connected: true})
	env.core.metrics.modules.ttl = 0
	tests := []struct {
		name string
		want float64
	}{
		{"switchboard_module_connected", 1},
		{"switchboard_module_queue", 0},
		{"switchboard_module_portals", 1},
		{"switchboard_module_ghosts", 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if v, ok := metricValue(t, env.core, tt.name, "xmpp", ""); !ok || v != tt.want {
				t.Errorf("%s{module=\"xmpp\"} = %v (present %v), want %v", tt.name, v, ok, tt.want)
			}
		})
	}
	mod.set(ModuleStatus{State: "reconnecting"})
	if v, _ := metricValue(t, env.core, "switchboard_module_connected", "xmpp", ""); v != 0 {
		t.Errorf("disconnected: switchboard_module_connected = %v, want 0", v)
	}
}

// TestModuleGaugesCached: scrapes within the cache's lifetime share one look at the modules;
// an expired look is renewed.
func TestModuleGaugesCached(t *testing.T) {
	mod := &statusModule{recModule: &recModule{id: "xmpp"}, status: ModuleStatus{Connected: true}}
	env := startCore(t, sqliteStore(t), mod)
	env.core.metrics.modules.ttl = time.Hour
	if v, _ := metricValue(t, env.core, "switchboard_module_connected", "xmpp", ""); v != 1 {
		t.Fatalf("switchboard_module_connected = %v, want 1", v)
	}
	mod.set(ModuleStatus{})
	if v, _ := metricValue(t, env.core, "switchboard_module_connected", "xmpp", ""); v != 1 {
		t.Errorf("within the cache's lifetime: switchboard_module_connected = %v, want the cached 1", v)
	}
	env.core.metrics.modules.mu.Lock()
	env.core.metrics.modules.ttl = 0
	env.core.metrics.modules.mu.Unlock()
	if v, _ := metricValue(t, env.core, "switchboard_module_connected", "xmpp", ""); v != 0 {
		t.Errorf("after the cache expired: switchboard_module_connected = %v, want 0", v)
	}
}

// TestModuleFailures: switchboard_module_failures_total counts a running module going from
// connected to not connected and each new error it reports, once however often it is looked
// at; its series exist from the start.
func TestModuleFailures(t *testing.T) {
	mod := &statusModule{recModule: &recModule{id: "xmpp"}, status: ModuleStatus{Connected: true}}
	env := startCore(t, sqliteStore(t), mod)
	env.core.metrics.modules.ttl = 0
	steps := []struct {
		name             string
		status           ModuleStatus
		disconnected, er float64
	}{
		{"connected", ModuleStatus{Connected: true}, 0, 0},
		{"disconnected with an error", ModuleStatus{State: "reconnecting", LastError: "dial tcp: refused"}, 1, 1},
		{"the same error looked at again", ModuleStatus{State: "reconnecting", LastError: "dial tcp: refused"}, 1, 1},
		{"another error", ModuleStatus{State: "reconnecting", LastError: "tls: bad certificate"}, 1, 2},
		{"reconnected, the error kept", ModuleStatus{Connected: true, LastError: "tls: bad certificate"}, 1, 2},
		{"disconnected again", ModuleStatus{}, 2, 2},
	}
	for _, s := range steps {
		t.Run(s.name, func(t *testing.T) {
			mod.set(s.status)
			// The registry gathers collectors concurrently: the counters may be read before
			// the module collector's look in the same scrape, so look once first.
			if _, err := env.core.Gatherer().Gather(); err != nil {
				t.Fatal(err)
			}
			// More looks (each check below gathers again): counted once.
			for kind, want := range map[string]float64{failureDisconnected: s.disconnected, failureError: s.er} {
				if v, ok := metricValue(t, env.core, "switchboard_module_failures_total", "xmpp", kind); !ok || v != want {
					t.Errorf("switchboard_module_failures_total{kind=%q} = %v (present %v), want %v", kind, v, ok, want)
				}
			}
		})
	}
}

// TestReadinessGrace: a module that was connected counts as ready for moduleReadyGrace after
// it is last seen connected, and the answer says so; after the grace, readiness fails and
// names it in not_connected. A module never connected since its start gets no grace.
func TestReadinessGrace(t *testing.T) {
	mod := &statusModule{recModule: &recModule{id: "xmpp"}, status: ModuleStatus{Connected: true}}
	env := startCore(t, sqliteStore(t), mod)
	var mu sync.Mutex
	now := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	env.core.life.now = func() time.Time {
		mu.Lock()
		defer mu.Unlock()
		return now
	}
	advance := func(d time.Duration) {
		mu.Lock()
		defer mu.Unlock()
		now = now.Add(d)
	}
	h := env.core.OpsHandler()
	type answer struct {
		Ready        bool              `json:"ready"`
		Modules      map[string]string `json:"modules"`
		NotConnected []string          `json:"not_connected"`
	}
	ready := func(t *testing.T) (int, answer) {
		t.Helper()
		w := serve(h, "/health/ready", "127.0.0.1:4000", nil)
		var a answer
		if err := json.Unmarshal(w.Body.Bytes(), &a); err != nil {
			t.Fatalf("%v: %s", err, w.Body)
		}
		return w.Code, a
	}
	steps := []struct {
		name       string
		status     *ModuleStatus // nil: unchanged
		advance    time.Duration
		wantCode   int
		wantModule string // prefix
		wantDown   []string
	}{
		{"connected", &ModuleStatus{Connected: true}, 0, 200, "connected", []string{}},
		{"disconnected just now", &ModuleStatus{State: "reconnecting in 8s"}, time.Second, 200,
			"not connected: reconnecting in 8s (connected 1s ago, within the 30s grace)", []string{}},
		{"still within the grace", nil, 28 * time.Second, 200, "not connected: reconnecting in 8s (connected 29s ago", []string{}},
		{"grace over", nil, 2 * time.Second, 503, "not connected: reconnecting in 8s", []string{"xmpp"}},
		{"reconnected", &ModuleStatus{Connected: true}, time.Second, 200, "connected", []string{}},
	}
	for _, s := range steps {
		t.Run(s.name, func(t *testing.T) {
			if s.status != nil {
				mod.set(*s.status)
			}
			advance(s.advance)
			code, a := ready(t)
			if code != s.wantCode || a.Ready != (s.wantCode == 200) || !strings.HasPrefix(a.Modules["xmpp"], s.wantModule) || !slices.Equal(a.NotConnected, s.wantDown) {
				t.Errorf("/health/ready = %d %+v, want %d, xmpp %q…, not_connected %q", code, a, s.wantCode, s.wantModule, s.wantDown)
			}
			if s.wantCode == 503 && a.Modules["xmpp"] != s.wantModule {
				t.Errorf("after the grace, xmpp = %q, want %q", a.Modules["xmpp"], s.wantModule)
			}
		})
	}
	t.Run("never connected after a restart", func(t *testing.T) {
		env.core.life.forget("xmpp") // what a look at the stopped module does
		mod.set(ModuleStatus{State: "connecting"})
		if code, a := ready(t); code != 503 || !slices.Equal(a.NotConnected, []string{"xmpp"}) {
			t.Errorf("/health/ready = %d %+v, want 503 naming xmpp", code, a)
		}
	})
}

// templateVar is a dashboard variable; Query is a string or an object.
type templateVar struct {
	Name  string          `json:"name"`
	Type  string          `json:"type"`
	Query json.RawMessage `json:"query"`
}

// dashboardMetric finds the metric names in a PromQL expression.
var dashboardMetric = regexp.MustCompile(`\bswitchboard_[a-z_]+\b`)

// TestGrafanaDashboard: docs/grafana-dashboard.json is a Grafana dashboard with a
// Prometheus data source variable, every panel has a query, and every query names only
// metrics that the core registers (histograms by their _bucket, _sum or _count series).
func TestGrafanaDashboard(t *testing.T) {
	raw, err := os.ReadFile("../docs/grafana-dashboard.json")
	if err != nil {
		t.Fatal(err)
	}
	type panel struct {
		Title      string `json:"title"`
		Type       string `json:"type"`
		Datasource struct {
			UID string `json:"uid"`
		} `json:"datasource"`
		Targets []struct {
			Expr string `json:"expr"`
		} `json:"targets"`
		Panels []json.RawMessage `json:"panels"` // a collapsed row's panels
	}
	var dash struct {
		Title         string            `json:"title"`
		UID           string            `json:"uid"`
		SchemaVersion int               `json:"schemaVersion"`
		Panels        []json.RawMessage `json:"panels"`
		Templating    struct {
			List []templateVar `json:"list"`
		} `json:"templating"`
	}
	if err := json.Unmarshal(raw, &dash); err != nil {
		t.Fatalf("not JSON: %v", err)
	}
	if dash.Title == "" || dash.UID == "" || dash.SchemaVersion < 36 {
		t.Errorf("title %q, uid %q, schemaVersion %d: want a title, a uid and schemaVersion ≥ 36", dash.Title, dash.UID, dash.SchemaVersion)
	}
	hasDatasource := slices.ContainsFunc(dash.Templating.List, func(v templateVar) bool {
		return v.Name == "datasource" && v.Type == "datasource" && string(v.Query) == `"prometheus"`
	})
	if !hasDatasource {
		t.Error("no Prometheus data source variable named datasource")
	}

	mod := &statusModule{recModule: &recModule{id: "xmpp"}, status: ModuleStatus{Connected: true}}
	env := startCore(t, sqliteStore(t), mod)
	serve(env.core.OpsHandler(), "/metrics", "127.0.0.1:4000", nil) // as after a first scrape
	families, err := env.core.Gatherer().Gather()
	if err != nil {
		t.Fatal(err)
	}
	registered := map[string]bool{}
	for _, mf := range families {
		registered[mf.GetName()] = true
	}
	var walk func(raws []json.RawMessage) int
	walk = func(raws []json.RawMessage) int {
		queries := 0
		for _, r := range raws {
			var p panel
			if err := json.Unmarshal(r, &p); err != nil {
				t.Fatal(err)
			}
			if p.Type == "row" {
				queries += walk(p.Panels)
				continue
			}
			if len(p.Targets) == 0 {
				t.Errorf("panel %q has no query", p.Title)
			}
			if p.Datasource.UID != "${datasource}" {
				t.Errorf("panel %q: data source %q, want ${datasource}", p.Title, p.Datasource.UID)
			}
			for _, target := range p.Targets {
				names := dashboardMetric.FindAllString(target.Expr, -1)
				if len(names) == 0 {
					t.Errorf("panel %q: query %q names no switchboard metric", p.Title, target.Expr)
				}
				for _, name := range names {
					family := name
					for _, suffix := range []string{"_bucket", "_sum", "_count"} {
						if base, ok := strings.CutSuffix(name, suffix); ok && registered[base] {
							family = base
						}
					}
					if !registered[family] {
						t.Errorf("panel %q: query %q names %s, which the core does not register", p.Title, target.Expr, name)
					}
				}
				queries++
			}
		}
		return queries
	}
	if n := walk(dash.Panels); n == 0 {
		t.Error("the dashboard has no queries")
	}
	for _, want := range []string{"switchboard_module_connected", "switchboard_module_queue", "switchboard_module_portals",
		"switchboard_module_ghosts", "switchboard_module_failures_total", "switchboard_inbox_queue_depth", "switchboard_outbox_queue_depth"} {
		if !strings.Contains(string(raw), want) {
			t.Errorf("the dashboard does not show %s", want)
		}
	}
}

// TestOpsMetricsServed: the new series are served on /metrics in the text format.
func TestOpsMetricsServed(t *testing.T) {
	_, h := statusEnv(t)
	// The first scrape looks at the module and counts its error; the second shows it.
	serve(h, "/metrics", "127.0.0.1:4000", nil)
	w := serve(h, "/metrics", "127.0.0.1:4000", nil)
	if w.Code != http.StatusOK {
		t.Fatalf("status %d", w.Code)
	}
	for _, want := range []string{`switchboard_module_portals{module="xmpp"} 1`, `switchboard_module_ghosts{module="xmpp"} 2`,
		`switchboard_module_queue{module="xmpp"} 0`, `switchboard_module_failures_total{kind="error",module="xmpp"} 1`,
		`switchboard_outbox_sends_total{module="xmpp",result="failed"} 0`} {
		if !strings.Contains(w.Body.String(), want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
}
