package appservice

import (
	"bytes"
	"context"
	"crypto/sha256"
	_ "embed" // the status page's template and style sheet
	"encoding/base64"
	"html/template"
	"net"
	"net/http"
	"strconv"
	"time"

	"github.com/rs/zerolog"
	"maunium.net/go/mautrix/id"
)

// The status page (GET /status, GET /status.json on the ops listener): the core's and every
// module's state for an operator, as server-rendered HTML that refreshes itself (a meta
// refresh, no script) and as JSON with the same data.
//
// Errors (a module's last error, why the database or the homeserver is unreachable) can
// name hosts and addresses, and a handler's error text is whatever a module wrapped, so
// they are shown only to a request that comes straight from loopback: its peer address is
// a loopback address and it carries no proxy header (Forwarded, X-Forwarded-For,
// X-Real-IP). Others see that there is an error, not its text.

// statusRefresh is how often the HTML page reloads itself.
const statusRefresh = 15 * time.Second

// processStarted is when the process (this package) started, for the uptime.
var processStarted = time.Now()

var (
	//go:embed statuspage.html
	statusHTML string
	//go:embed statuspage.css
	statusCSS string

	statusTemplate = template.Must(template.New("status").Funcs(template.FuncMap{
		"count": func(n *int) string {
			if n == nil {
				return "–"
			}
			return strconv.Itoa(*n)
		},
	}).Parse(statusHTML))
	// statusCSP allows nothing but the page's own embedded style sheet.
	statusCSP = "default-src 'none'; style-src '" + cspHash(statusCSS) + "'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)

func cspHash(s string) string {
	sum := sha256.Sum256([]byte(s))
	return "sha256-" + base64.StdEncoding.EncodeToString(sum[:])
}

// statusSnapshot is the data of the status page; its JSON form is GET /status.json.
type statusSnapshot struct {
	Version        string      `json:"version"`
	Core           string      `json:"core"` // the core's phase: "running", "starting: …", …
	Started        time.Time   `json:"started"`
	UptimeSeconds  int64       `json:"uptime_seconds"`
	Generated      time.Time   `json:"generated"`
	RefreshSeconds int         `json:"refresh_seconds"`
	Homeserver     statusCheck `json:"homeserver"`
	Database       statusCheck `json:"database"`
	InboxDepth     *int        `json:"inbox_depth"`  // null when the database did not answer
	OutboxDepth    *int        `json:"outbox_depth"` // null when the database did not answer
	Encryption     string      `json:"encryption"`   // "on", "off" or "unsupported"
	// Scanner is the virus scanner's state ("off", "ok (…)", "unreachable", with the files
	// held); ScannerError its last error, when errors are shown.
	Scanner      string       `json:"scanner"`
	ScannerError string       `json:"scanner_error,omitempty"`
	ErrorsShown  bool         `json:"errors_shown"` // false: error texts are left out
	Modules      []statusLine `json:"modules"`
}

// statusCheck is whether the core reaches a dependency.
type statusCheck struct {
	Reachable bool   `json:"reachable"`
	Error     string `json:"error,omitempty"` // only when errors are shown
}

// statusLine is one module's line of the status page.
type statusLine struct {
	ID        string `json:"id"`
	Connected bool   `json:"connected"`
	State     string `json:"state"`
	// HasError says the module reported an error or its handler failed last time; the text
	// is in LastError when errors are shown.
	HasError  bool   `json:"has_error"`
	LastError string `json:"last_error,omitempty"`
	Queue     int    `json:"queue"`   // messages of the module waiting to be sent to Matrix
	Portals   *int   `json:"portals"` // null when the store did not answer
	Ghosts    *int   `json:"ghosts"`  // registered ghosts in the module's namespace; null likewise
}

// statusSnapshot collects the status page's data. It answers while Start waits for the
// homeserver: it uses only what the operator endpoints may use (atomics, the store, the
// outbox's and the dispatcher's own locks).
func (c *Core) statusSnapshot(ctx context.Context, showErrors bool) statusSnapshot {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	now := time.Now()
	s := statusSnapshot{
		Version: c.opts.Version, Core: phaseNames[c.life.phase.Load()],
		Started: processStarted.UTC().Truncate(time.Second), Generated: now.UTC().Truncate(time.Second),
		UptimeSeconds:  int64(now.Sub(processStarted).Seconds()),
		RefreshSeconds: int(statusRefresh.Seconds()), ErrorsShown: showErrors, Encryption: "off",
	}
	switch {
	case c.EncryptionActive():
		s.Encryption = "on"
	case c.encryptionOff.Load():
		s.Encryption = "unsupported"
	}
	s.Scanner, s.ScannerError = c.scan.state()
	if !showErrors {
		s.ScannerError = ""
	}
	check := func(err error) statusCheck {
		if err == nil {
			return statusCheck{Reachable: true}
		}
		if showErrors {
			return statusCheck{Error: err.Error()}
		}
		return statusCheck{}
	}
	hsCtx, hsCancel := context.WithTimeout(ctx, statusTimeout)
	_, err := c.as.BotClient().Versions(hsCtx)
	hsCancel()
	s.Homeserver = check(err)
	var dbErr error
	if n, err := c.store.InboxDepth(ctx); err == nil {
		s.InboxDepth = &n
	} else {
		dbErr = err
	}
	if n, err := c.store.OutboxDepth(ctx); err == nil {
		s.OutboxDepth = &n
	} else {
		dbErr = err
	}
	if dbErr == nil {
		dbErr = c.store.Ping(ctx)
	}
	s.Database = check(dbErr)
	s.Modules = c.moduleLines(ctx, showErrors)
	return s
}

// moduleLines collects every module's line of the status page, in the modules' order: its
// own status report, its outbox queue, its portals and ghosts. The metrics collector
// (metrics.go) reads the same lines.
func (c *Core) moduleLines(ctx context.Context, showErrors bool) []statusLine {
	portals, ghosts := c.portalCounts(ctx), c.ghostCounts(ctx)
	queue := c.outbox.depthByModule()
	c.disp.mu.Lock()
	handlerErr := make(map[string]string, len(c.disp.lastError))
	for k, v := range c.disp.lastError {
		handlerErr[k] = v
	}
	c.disp.mu.Unlock()
	var lines []statusLine
	for _, m := range c.order {
		st := c.moduleHealth(ctx, m)
		line := statusLine{ID: m.ID(), Connected: st.Connected, State: st.State, Queue: queue[m.ID()]}
		switch {
		case line.State != "":
		case st.Connected:
			line.State = "connected"
		default:
			line.State = "not connected"
		}
		lastErr := st.LastError
		if lastErr == "" {
			lastErr = handlerErr[m.ID()]
		}
		line.HasError = lastErr != ""
		if showErrors {
			line.LastError = lastErr
		}
		if portals != nil {
			n := portals[m.ID()]
			line.Portals = &n
		}
		if ghosts != nil {
			n := ghosts[m.ID()]
			line.Ghosts = &n
		}
		lines = append(lines, line)
	}
	return lines
}

// portalCounts counts the portals of each module; nil when the store does not answer.
func (c *Core) portalCounts(ctx context.Context) map[string]int {
	rows, err := c.store.DB().QueryContext(ctx, `SELECT module, COUNT(*) FROM portal GROUP BY module`)
	if err != nil {
		zerolog.Ctx(ctx).Debug().Err(err).Msg("Status page: failed to count portals")
		return nil
	}
	defer rows.Close()
	out := map[string]int{}
	for rows.Next() {
		var module string
		var n int
		if err := rows.Scan(&module, &n); err != nil {
			return nil
		}
		out[module] = n
	}
	if rows.Err() != nil {
		return nil
	}
	return out
}

// ghostCounts counts the registered ghosts in each module's namespace; nil when the store
// does not answer.
func (c *Core) ghostCounts(ctx context.Context) map[string]int {
	rows, err := c.store.DB().QueryContext(ctx, `SELECT user_id FROM ghost`)
	if err != nil {
		zerolog.Ctx(ctx).Debug().Err(err).Msg("Status page: failed to count ghosts")
		return nil
	}
	defer rows.Close()
	out := map[string]int{}
	for rows.Next() {
		var userID string
		if err := rows.Scan(&userID); err != nil {
			return nil
		}
		if m := c.router.moduleForUser(id.UserID(userID)); m != nil {
			out[m.ID()]++
		}
	}
	if rows.Err() != nil {
		return nil
	}
	return out
}

// showErrors reports whether r may see error texts: it comes straight from loopback.
func showErrors(r *http.Request) bool {
	for _, h := range []string{"Forwarded", "X-Forwarded-For", "X-Real-Ip"} {
		if r.Header.Get(h) != "" {
			return false
		}
	}
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return false
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// statusHeaders are the headers of both status answers.
func statusHeaders(w http.ResponseWriter) {
	h := w.Header()
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
}

func (c *Core) statusPage(w http.ResponseWriter, r *http.Request) {
	v := statusView{statusSnapshot: c.statusSnapshot(r.Context(), showErrors(r)), CSS: template.CSS(statusCSS)}
	v.Uptime = (time.Duration(v.UptimeSeconds) * time.Second).String()
	for _, m := range v.Modules {
		if !m.Connected {
			v.Down++
		}
	}
	var buf bytes.Buffer
	if err := statusTemplate.Execute(&buf, v); err != nil {
		zerolog.Ctx(r.Context()).Error().Err(err).Msg("Failed to render the status page")
		http.Error(w, "failed to render the status page", http.StatusInternalServerError)
		return
	}
	statusHeaders(w)
	w.Header().Set("Content-Security-Policy", statusCSP)
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	_, _ = w.Write(buf.Bytes())
}

func (c *Core) statusJSON(w http.ResponseWriter, r *http.Request) {
	statusHeaders(w)
	writeJSON(w, http.StatusOK, c.statusSnapshot(r.Context(), showErrors(r)))
}

// statusView is what the template sees: the snapshot, the style sheet and a few sums.
type statusView struct {
	statusSnapshot
	CSS    template.CSS // the embedded statuspage.css, allowed by statusCSP's hash
	Uptime string
	Down   int // modules not connected
}
