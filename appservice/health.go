package appservice

import (
	"context"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// The phases of a Core, for readiness.
const (
	phaseNew      int32 = iota // New returned; Start not called (or Stop returned)
	phaseStarting              // Start is registering the bot or starting the modules
	phaseRunning               // Start returned nil
	phaseStopping              // Stop is running
)

var phaseNames = map[int32]string{
	phaseNew:      "not started",
	phaseStarting: "starting: waiting for the homeserver and the modules",
	phaseRunning:  "running",
	phaseStopping: "stopping",
}

// lifecycle is what the operator endpoints know of the core's and the modules' life
// cycles. Its fields are atomics: the endpoints must answer while Start holds the core's
// lock (it waits for an unreachable homeserver).
type lifecycle struct {
	phase atomic.Int32
	up    map[string]*atomic.Bool // immutable map; true between a module's Start returning nil and its Stop
}

func newLifecycle(modules []Module) *lifecycle {
	l := &lifecycle{up: make(map[string]*atomic.Bool, len(modules))}
	for _, m := range modules {
		l.up[m.ID()] = new(atomic.Bool)
	}
	return l
}

// statusTimeout bounds one module's Status call in the operator endpoints.
const statusTimeout = 2 * time.Second

// moduleHealth is a module's state as the operator endpoints see it: a module that is not
// running is not connected; a running module without a StatusReporter counts as connected.
func (c *Core) moduleHealth(ctx context.Context, m Module) ModuleStatus {
	if up := c.life.up[m.ID()]; up == nil || !up.Load() {
		return ModuleStatus{State: "not started"}
	}
	sr, ok := m.(StatusReporter)
	if !ok {
		return ModuleStatus{Connected: true, State: "running"}
	}
	ctx, cancel := context.WithTimeout(ctx, statusTimeout)
	defer cancel()
	return sr.Status(ctx)
}

// OpsHandler serves the operator endpoints: /metrics (Prometheus), /health (liveness: the
// process serves requests) and /health/ready (readiness: the core has started, the database
// answers, the homeserver is reachable and every module reports itself connected; the
// answer names each check and, for a module, its state). They answer from New on, before
// Start has reached the homeserver. Serve them on a private address; they need no token.
func (c *Core) OpsHandler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(c.opts.Metrics, promhttp.HandlerOpts{}))
	mux.HandleFunc("GET /health", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, map[string]any{"live": true})
	})
	mux.HandleFunc("GET /health/ready", c.ready)
	mux.HandleFunc("GET /status", c.statusPage)      // statuspage.go
	mux.HandleFunc("GET /status.json", c.statusJSON) // statuspage.go
	return mux
}

func (c *Core) ready(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 5*time.Second)
	defer cancel()
	phase := c.life.phase.Load()
	checks := map[string]string{"core": phaseNames[phase], "database": "ok", "homeserver": "ok"}
	ready := phase == phaseRunning
	if err := c.store.Ping(ctx); err != nil {
		checks["database"], ready = "unreachable", false
	}
	if _, err := c.as.BotClient().Versions(ctx); err != nil {
		checks["homeserver"], ready = "unreachable", false
	}
	modules := map[string]string{}
	for _, m := range c.order {
		st := c.moduleHealth(ctx, m)
		switch {
		case st.Connected:
			modules[m.ID()] = "connected"
		case st.State != "":
			modules[m.ID()], ready = "not connected: "+st.State, false
		default:
			modules[m.ID()], ready = "not connected", false
		}
	}
	status := http.StatusOK
	if !ready {
		status = http.StatusServiceUnavailable
	}
	writeJSON(w, status, map[string]any{"ready": ready, "checks": checks, "modules": modules})
}
