package appservice

import (
	"context"
	"fmt"
	"net/http"
	"sync"
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
// cycles. Its fields are atomics or behind its own lock: the endpoints must answer while
// Start holds the core's lock (it waits for an unreachable homeserver).
type lifecycle struct {
	phase atomic.Int32
	up    map[string]*atomic.Bool // immutable map; true between a module's Start returning nil and its Stop
	// grace is how long a module that was seen connected may be seen disconnected and
	// still count as ready (moduleReadyGrace; tests change it before serving).
	grace time.Duration
	now   func() time.Time // time.Now; tests replace it before serving

	mu   sync.Mutex
	seen map[string]*moduleSeen // guarded by mu; a module's entry exists once it was looked at while running
}

// moduleSeen is what the core last saw of a running module's status report.
type moduleSeen struct {
	connected     bool
	lastError     string
	seenConnected time.Time // the last look that found it connected; zero if none since its Start
}

// moduleReadyGrace is how long a module that was connected may be disconnected (a
// reconnect) before readiness fails: a short reconnect does not flap readiness. A module that
// has not been connected since it started gets no grace.
const moduleReadyGrace = 30 * time.Second

func newLifecycle(modules []Module) *lifecycle {
	l := &lifecycle{up: make(map[string]*atomic.Bool, len(modules)), grace: moduleReadyGrace, now: time.Now,
		seen: make(map[string]*moduleSeen, len(modules))}
	for _, m := range modules {
		l.up[m.ID()] = new(atomic.Bool)
	}
	return l
}

// statusTimeout bounds one module's Status call in the operator endpoints.
const statusTimeout = 2 * time.Second

// moduleHealth is a module's state as the operator endpoints see it: a module that is not
// running is not connected; a running module without a StatusReporter counts as connected.
// Every look is remembered for the readiness grace and counted in
// switchboard_module_failures_total when the module went from connected to not connected
// or reports a new error.
func (c *Core) moduleHealth(ctx context.Context, m Module) ModuleStatus {
	if up := c.life.up[m.ID()]; up == nil || !up.Load() {
		c.life.forget(m.ID())
		return ModuleStatus{State: "not started"}
	}
	sr, ok := m.(StatusReporter)
	if !ok {
		return ModuleStatus{Connected: true, State: "running"}
	}
	ctx, cancel := context.WithTimeout(ctx, statusTimeout)
	defer cancel()
	st := sr.Status(ctx)
	disconnected, newError := c.life.observe(m.ID(), st)
	if disconnected {
		c.metrics.failures.WithLabelValues(m.ID(), failureDisconnected).Inc()
	}
	if newError {
		c.metrics.failures.WithLabelValues(m.ID(), failureError).Inc()
	}
	return st
}

// observe records a look at a running module's status and reports whether it went from
// connected to not connected and whether it reports an error other than the last one seen.
func (l *lifecycle) observe(module string, st ModuleStatus) (disconnected, newError bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	s := l.seen[module]
	if s == nil {
		s = &moduleSeen{}
		l.seen[module] = s
	}
	disconnected = s.connected && !st.Connected
	newError = st.LastError != "" && st.LastError != s.lastError
	s.connected, s.lastError = st.Connected, st.LastError
	if st.Connected {
		s.seenConnected = l.now()
	}
	return disconnected, newError
}

// forget drops what was seen of a module that is not running: after a restart it gets no
// grace from before and its errors count again.
func (l *lifecycle) forget(module string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	delete(l.seen, module)
}

// inGrace reports whether a module seen not connected was seen connected less than the
// grace ago, and how long ago.
func (l *lifecycle) inGrace(module string) (bool, time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	s := l.seen[module]
	if s == nil || s.seenConnected.IsZero() {
		return false, 0
	}
	ago := l.now().Sub(s.seenConnected)
	return ago < l.grace, ago
}

// OpsHandler serves the operator endpoints: /metrics (Prometheus), /health (liveness: the
// process serves requests) and /health/ready (readiness: the core has started, the database
// answers, the homeserver is reachable and every module reports itself connected, or was
// connected less than moduleReadyGrace ago; the answer names each check and each module's
// state, and lists the modules that fail it in not_connected), and the status page. They
// answer from New on, before Start has reached the homeserver. Serve them on a private
// address; they need no token.
func (c *Core) OpsHandler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(c.opts.Metrics, promhttp.HandlerOpts{}))
	mux.HandleFunc("GET /health", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, map[string]any{"live": true})
	})
	mux.HandleFunc("GET /health/ready", c.ready)
	mux.HandleFunc("GET /status", c.statusPage)      // statuspage.go
	mux.HandleFunc("GET /status.json", c.statusJSON) // statuspage.go
	if c.provision != nil {
		mux.Handle(ProvisioningPrefix+"/", c.provisionHandler()) // provision.go
	}
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
	if c.scan != nil {
		// Reported, not required: text still flows while the scanner is away (files are
		// held); switchboard_scanner_up is the alert.
		state, errText := c.scan.state()
		if errText != "" {
			state += ": " + errText
		}
		checks["scanner"] = state
	}
	modules := map[string]string{}
	notConnected := []string{}
	for _, m := range c.order {
		st := c.moduleHealth(ctx, m)
		if st.Connected {
			modules[m.ID()] = "connected"
			continue
		}
		state := "not connected"
		if st.State != "" {
			state += ": " + st.State
		}
		if grace, ago := c.life.inGrace(m.ID()); grace {
			modules[m.ID()] = fmt.Sprintf("%s (connected %s ago, within the %s grace)", state, ago.Round(time.Second), c.life.grace)
			continue
		}
		modules[m.ID()], ready = state, false
		notConnected = append(notConnected, m.ID())
	}
	status := http.StatusOK
	if !ready {
		status = http.StatusServiceUnavailable
	}
	writeJSON(w, status, map[string]any{"ready": ready, "checks": checks, "modules": modules, "not_connected": notConnected})
}
