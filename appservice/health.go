package appservice

import (
	"context"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// OpsHandler serves the operator endpoints: /metrics (Prometheus), /health (liveness: the
// process serves requests) and /health/ready (readiness: the database answers and the
// homeserver is reachable). Serve it on a private address; it needs no token.
func (c *Core) OpsHandler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(c.opts.Metrics, promhttp.HandlerOpts{}))
	mux.HandleFunc("GET /health", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, map[string]any{"live": true})
	})
	mux.HandleFunc("GET /health/ready", func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), 5*time.Second)
		defer cancel()
		checks := map[string]string{"database": "ok", "homeserver": "ok"}
		ready := true
		if err := c.store.Ping(ctx); err != nil {
			checks["database"], ready = "unreachable", false
		}
		if _, err := c.as.BotClient().Versions(ctx); err != nil {
			checks["homeserver"], ready = "unreachable", false
		}
		status := http.StatusOK
		if !ready {
			status = http.StatusServiceUnavailable
		}
		writeJSON(w, status, map[string]any{"ready": ready, "checks": checks})
	})
	return mux
}
