package daemon

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"html"
	"net"
	"net/http"
	"net/http/pprof"
	"strings"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/rs/zerolog"

	"github.com/switchboard-matrix/switchboard/appservice"
)

// opsServer serves /health, /health/ready and /metrics from the start of the process: before
// the core exists (the database is being opened, the instance lock awaited) it answers
// liveness, says not ready with the phase it is in, and serves the metrics registered so
// far; once the core is built, the core's operator endpoints answer, also while the core is
// still waiting for an unreachable homeserver.
type opsServer struct {
	srv   *http.Server
	addr  net.Addr
	core  atomic.Pointer[http.Handler] // the core's OpsHandler once built; nil before
	phase atomic.Pointer[string]       // what the process is doing before the core exists
}

// startOps listens on addr and serves the operator endpoints with reg's metrics, and Go's
// profiler under /debug/pprof/ when profiling is set (metrics.pprof).
func startOps(ctx context.Context, addr string, reg *prometheus.Registry, profiling bool) (*opsServer, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("failed to listen for metrics and health checks on %s: %w", addr, err)
	}
	o := &opsServer{addr: ln.Addr()}
	o.setPhase("reading the registration")
	early := http.NewServeMux()
	early.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	early.HandleFunc("GET /health", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, map[string]any{"live": true})
	})
	early.HandleFunc("GET /health/ready", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusServiceUnavailable, map[string]any{
			"ready": false, "checks": map[string]string{"core": *o.phase.Load()},
		})
	})
	// The status page before the core exists (while starting, or as a standby): its state.
	early.HandleFunc("GET /status.json", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, map[string]any{"core": *o.phase.Load()})
	})
	early.HandleFunc("GET /status", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Header().Set("Refresh", "5")
		_, _ = fmt.Fprintf(w, "<!doctype html><title>Switchboard</title><h1>Switchboard</h1><p id=\"core-state\">%s</p>\n",
			html.EscapeString(*o.phase.Load()))
	})
	var prof http.Handler
	if profiling {
		prof = pprofHandler()
	}
	o.srv = &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if prof != nil && strings.HasPrefix(r.URL.Path, "/debug/pprof/") {
				prof.ServeHTTP(w, r)
				return
			}
			if h := o.core.Load(); h != nil {
				(*h).ServeHTTP(w, r)
				return
			}
			early.ServeHTTP(w, r)
		}),
		ReadHeaderTimeout: 10 * time.Second,
	}
	go func() {
		if err := o.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			zerolog.Ctx(ctx).Error().Err(err).Msg("The metrics and health check server stopped")
		}
	}()
	zerolog.Ctx(ctx).Info().Stringer("addr", ln.Addr()).Msg("Serving /health, /health/ready and /metrics")
	return o, nil
}

// setPhase names what the process does before the core exists; nil-safe.
func (o *opsServer) setPhase(phase string) {
	if o == nil {
		return
	}
	p := "starting: " + phase
	o.phase.Store(&p)
}

// setState names the process's state (not "starting: …") before the core exists; nil-safe.
func (o *opsServer) setState(state string) {
	if o == nil {
		return
	}
	o.phase.Store(&state)
}

// setCore hands the endpoints over to the core; nil-safe.
func (o *opsServer) setCore(core *appservice.Core) {
	if o == nil {
		return
	}
	h := core.OpsHandler()
	o.core.Store(&h)
}

// shutdown stops the server within ctx; nil-safe.
func (o *opsServer) shutdown(ctx context.Context) {
	if o == nil {
		return
	}
	if err := o.srv.Shutdown(ctx); err != nil {
		_ = o.srv.Close()
	}
}

func writeJSON(w http.ResponseWriter, status int, body any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(body)
}

// pprofHandler serves Go's profiles (net/http/pprof) below /debug/pprof/.
func pprofHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	return mux
}
