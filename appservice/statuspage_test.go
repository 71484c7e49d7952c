package appservice

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"sort"
	"strings"
	"testing"

	mas "maunium.net/go/mautrix/appservice"
)

// hostile is a module state that would run script if the page did not escape it.
const (
	hostileState = `<script>alert("state")</script>`
	hostileError = `dial tcp 192.0.2.7:5222: <img src=x onerror=alert(1)>`
)

// statusEnv starts a core with an "xmpp" module in a hostile state, one portal and two
// ghosts of it, and returns its operator endpoints.
func statusEnv(t *testing.T) (*testEnv, http.Handler) {
	t.Helper()
	mod := &statusModule{recModule: &recModule{id: "xmpp"}, status: ModuleStatus{State: hostileState, LastError: hostileError}}
	st := sqliteStore(t)
	env := startCore(t, st, mod)
	ctx := t.Context()
	if err := st.PutPortal(ctx, "xmpp", "room@muc.example", "!portal:test"); err != nil {
		t.Fatal(err)
	}
	for _, u := range []string{"@_xmpp_alice:test", "@_xmpp_bob:test", "@someone_else:test"} {
		if err := st.MarkGhostRegistered(ctx, u); err != nil {
			t.Fatal(err)
		}
	}
	return env, env.core.OpsHandler()
}

func serve(h http.Handler, path, remote string, header map[string]string) *httptest.ResponseRecorder {
	r := httptest.NewRequest(http.MethodGet, path, nil)
	r.RemoteAddr = remote
	for k, v := range header {
		r.Header.Set(k, v)
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}

// TestStatusJSON: /status.json has the documented keys, the module's state, queue, portal
// and ghost counts, and the core's depths and checks.
func TestStatusJSON(t *testing.T) {
	_, h := statusEnv(t)
	w := serve(h, "/status.json", "127.0.0.1:4000", nil)
	if w.Code != 200 || !strings.HasPrefix(w.Header().Get("Content-Type"), "application/json") {
		t.Fatalf("status %d, content type %q", w.Code, w.Header().Get("Content-Type"))
	}
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(w.Body.Bytes(), &raw); err != nil {
		t.Fatal(err)
	}
	var keys []string
	for k := range raw {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	want := "core database encryption errors_shown generated homeserver inbox_depth modules outbox_depth refresh_seconds scanner started uptime_seconds version"
	if got := strings.Join(keys, " "); got != want {
		t.Errorf("keys %q, want %q", got, want)
	}
	var s statusSnapshot
	if err := json.Unmarshal(w.Body.Bytes(), &s); err != nil {
		t.Fatal(err)
	}
	one, two := 1, 2
	wantMod := statusLine{ID: "xmpp", State: hostileState, HasError: true, LastError: hostileError, Portals: &one, Ghosts: &two}
	if len(s.Modules) != 1 || !sameLine(s.Modules[0], wantMod) {
		t.Errorf("modules %s, want one like %+v", raw["modules"], wantMod)
	}
	if s.Version != "test" || s.Core != "running" || !s.Homeserver.Reachable || !s.Database.Reachable ||
		s.InboxDepth == nil || s.OutboxDepth == nil || !s.ErrorsShown || s.RefreshSeconds != 15 {
		t.Errorf("core part: %s", w.Body.Bytes())
	}
}

func sameLine(a, b statusLine) bool {
	eq := func(x, y *int) bool { return (x == nil) == (y == nil) && (x == nil || *x == *y) }
	return a.ID == b.ID && a.Connected == b.Connected && a.State == b.State && a.HasError == b.HasError &&
		a.LastError == b.LastError && a.Queue == b.Queue && eq(a.Portals, b.Portals) && eq(a.Ghosts, b.Ghosts)
}

// TestStatusPageEscapes: a module's state and error reach the page as text, never as
// markup; the page has a CSP that allows only its own style sheet, and refreshes itself.
func TestStatusPageEscapes(t *testing.T) {
	_, h := statusEnv(t)
	w := serve(h, "/status", "127.0.0.1:4000", nil)
	body := w.Body.String()
	if w.Code != 200 || w.Header().Get("Content-Type") != "text/html; charset=utf-8" {
		t.Fatalf("status %d, content type %q", w.Code, w.Header().Get("Content-Type"))
	}
	for _, bad := range []string{"<script", "<img"} {
		if strings.Contains(body, bad) {
			t.Errorf("page contains %q unescaped:\n%s", bad, body)
		}
	}
	for _, want := range []string{
		`&lt;script&gt;alert(&#34;state&#34;)&lt;/script&gt;`, `&lt;img src=x onerror=alert(1)&gt;`,
		`<meta http-equiv="refresh" content="15">`, `<tr id="module-xmpp">`, `not connected`,
		`1 of 1 modules not connected`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("page lacks %q:\n%s", want, body)
		}
	}
	csp := w.Header().Get("Content-Security-Policy")
	style := regexp.MustCompile(`(?s)<style>(.*?)</style>`).FindStringSubmatch(body)
	if style == nil || !strings.Contains(csp, "default-src 'none'") || !strings.Contains(csp, "'"+cspHash(style[1])+"'") {
		t.Errorf("CSP %q does not allow exactly the page's style sheet", csp)
	}
	if strings.Contains(body, "http://") || strings.Contains(body, "https://") {
		t.Error("page refers to an external address")
	}
}

// TestStatusErrorsForLoopbackOnly: error texts go to direct loopback requests only; others
// learn that there is an error.
func TestStatusErrorsForLoopbackOnly(t *testing.T) {
	_, h := statusEnv(t)
	tests := []struct {
		name   string
		remote string
		header map[string]string
		shown  bool
	}{
		{"loopback IPv4", "127.0.0.1:4000", nil, true},
		{"loopback IPv6", "[::1]:4000", nil, true},
		{"private network", "10.1.2.3:4000", nil, false},
		{"loopback through a proxy (X-Forwarded-For)", "127.0.0.1:4000", map[string]string{"X-Forwarded-For": "198.51.100.9"}, false},
		{"loopback through a proxy (Forwarded)", "127.0.0.1:4000", map[string]string{"Forwarded": "for=198.51.100.9"}, false},
		{"loopback through a proxy (X-Real-IP)", "127.0.0.1:4000", map[string]string{"X-Real-IP": "198.51.100.9"}, false},
		{"unparsable peer", "somewhere", nil, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			page := serve(h, "/status", tt.remote, tt.header).Body.String()
			js := serve(h, "/status.json", tt.remote, tt.header).Body.String()
			if got := strings.Contains(page, "192.0.2.7"); got != tt.shown {
				t.Errorf("page shows the error: %v, want %v", got, tt.shown)
			}
			if got := strings.Contains(js, "192.0.2.7"); got != tt.shown {
				t.Errorf("JSON shows the error: %v, want %v", got, tt.shown)
			}
			if !tt.shown && (!strings.Contains(page, "has errors") || !strings.Contains(js, `"has_error":true`)) {
				t.Error("hidden error not flagged")
			}
		})
	}
}

// TestStatusBeforeStart: the page answers before Start (modules "not started", their Status
// not asked) and says the homeserver is unreachable when it is.
func TestStatusBeforeStart(t *testing.T) {
	hs := newFakeHomeserver(t)
	mod := &statusModule{recModule: &recModule{id: "xmpp"}, status: ModuleStatus{Connected: true, State: "must not be asked"}}
	c, err := New(Options{Registration: &mas.Registration{ID: "sbtest", AppToken: "as-token", ServerToken: testHSToken, SenderLocalpart: "bot"}, HomeserverURL: hs.URL, Domain: "test", Store: sqliteStore(t), Modules: []Module{mod}})
	if err != nil {
		t.Fatal(err)
	}
	hs.Close()
	ops := httptest.NewServer(c.OpsHandler())
	defer ops.Close()
	resp, err := http.Get(ops.URL + "/status")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	for _, want := range []string{"not started", `<span class="bad">unreachable</span>`, "Homeserver"} {
		if !strings.Contains(string(body), want) {
			t.Errorf("page lacks %q:\n%s", want, body)
		}
	}
	if strings.Contains(string(body), "must not be asked") {
		t.Error("the module was asked for its status before Start")
	}
}
