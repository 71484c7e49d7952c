package appservice

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/switchboard-matrix/switchboard/internal/provisiontest"
)

const (
	testProvSecret = "0123456789abcdef0123456789abcdef-secret"
	provAdmin      = "@admin:test"
	provBob        = "@bob:test"   // may use "rec", not "other"; not an admin
	provCarol      = "@carol:test" // may use neither
)

// provModule is a module with provisioning routes that echo what the core passed on.
type provModule struct {
	*statusModule
}

func (m *provModule) ProvisioningRoutes() []ProvisioningRoute {
	echo := func(_ context.Context, r *ProvisioningRequest) (any, error) {
		return map[string]any{"user": r.User, "admin": r.Admin, "x": r.Query.Get("x"), "name": r.PathValue("name")}, nil
	}
	return []ProvisioningRoute{
		{Method: "GET", Path: "/echo", Handle: echo},
		{Method: "GET", Path: "/items/{name}", Handle: func(_ context.Context, r *ProvisioningRequest) (any, error) {
			if r.PathValue("name") != "known" {
				return nil, ProvisioningNotFound("there is no item %q", r.PathValue("name"))
			}
			return echo(context.Background(), r)
		}},
		{Method: "POST", Path: "/items", Handle: func(_ context.Context, r *ProvisioningRequest) (any, error) {
			var body struct {
				Name  string `json:"name"`
				Count int    `json:"count"`
			}
			if err := r.Decode(&body); err != nil {
				return nil, err
			}
			return body, nil
		}},
		{Method: "POST", Path: "/admin-only", Admin: true, Handle: echo},
		{Method: "GET", Path: "/fail", Handle: func(context.Context, *ProvisioningRequest) (any, error) {
			return nil, errors.New("dial tcp 192.0.2.1:993: connection refused")
		}},
		{Method: "DELETE", Path: "/items/{name}", Handle: func(context.Context, *ProvisioningRequest) (any, error) { return nil, nil }},
	}
}

// fakeUserinfo is a homeserver's OpenID userinfo endpoint: tokens map to users.
type fakeUserinfo struct {
	*httptest.Server
	asked atomic.Int32
	mu    sync.Mutex
	users map[string]string // token -> sub; guarded by mu
}

func newFakeUserinfo(t *testing.T, users map[string]string) *fakeUserinfo {
	f := &fakeUserinfo{users: users}
	f.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f.asked.Add(1)
		if r.URL.Path != "/_matrix/federation/v1/openid/userinfo" {
			http.NotFound(w, r)
			return
		}
		f.mu.Lock()
		sub, ok := f.users[r.URL.Query().Get("access_token")]
		f.mu.Unlock()
		if !ok {
			writeError(w, http.StatusUnauthorized, "M_UNKNOWN_TOKEN", "Invalid access token")
			return
		}
		writeJSON(w, http.StatusOK, map[string]string{"sub": sub})
	}))
	t.Cleanup(f.Close)
	return f
}

// provEnv starts a core with the provisioning API, modules "rec" (with routes) and "other",
// and an OpenID userinfo endpoint knowing bob's, the admin's and a foreign user's tokens.
func provEnv(t *testing.T) (*testEnv, *fakeUserinfo, string) {
	t.Helper()
	ui := newFakeUserinfo(t, map[string]string{"bob-token": provBob, "admin-token": provAdmin, "eve-token": "@eve:elsewhere"})
	rec := &provModule{&statusModule{recModule: &recModule{id: "rec"}, status: ModuleStatus{Connected: false, State: "reconnecting", LastError: "dial tcp 192.0.2.1:5222: refused"}}}
	other := &recModule{id: "other"}
	env := startCoreWith(t, sqliteStore(t), func(o *Options) {
		o.Permissions = map[string][]string{"rec": {provBob, provAdmin}, "other": {provAdmin}}
		o.Provisioning = &Provisioning{SharedSecret: testProvSecret, OpenID: true, OpenIDURL: ui.URL, Admins: []string{provAdmin}}
	}, rec, other)
	ops := httptest.NewServer(env.core.OpsHandler())
	t.Cleanup(ops.Close)
	return env, ui, ops.URL
}

// TestProvisioningAuth: the shared secret, the shared secret acting for a user, OpenID
// tokens, and every refusal, on GET /whoami.
func TestProvisioningAuth(t *testing.T) {
	_, _, base := provEnv(t)
	for _, tt := range []struct {
		name, auth, query string
		header            string // a raw Authorization header instead of auth
		status            int
		errcode           string
		user              string
		admin             bool
		modules           string
	}{
		{name: "no credentials", status: 401, errcode: "M_MISSING_TOKEN"},
		{name: "not bearer", header: "Basic " + testProvSecret, status: 401, errcode: "M_MISSING_TOKEN"},
		{name: "wrong secret", auth: "not-the-secret", status: 401, errcode: "M_UNKNOWN_TOKEN"},
		{name: "secret prefix", auth: testProvSecret[:20], status: 401, errcode: "M_UNKNOWN_TOKEN"},
		{name: "shared secret", auth: testProvSecret, status: 200, admin: true, modules: "rec other"},
		{name: "secret for admin", auth: testProvSecret, query: "?user_id=" + provAdmin, status: 200, user: provAdmin, admin: true, modules: "rec other"},
		{name: "secret for bob", auth: testProvSecret, query: "?user_id=" + provBob, status: 200, user: provBob, modules: "rec"},
		{name: "secret for carol", auth: testProvSecret, query: "?user_id=" + provCarol, status: 200, user: provCarol, modules: ""},
		{name: "secret for a malformed user", auth: testProvSecret, query: "?user_id=bob", status: 400, errcode: "M_INVALID_PARAM"},
		{name: "openid bob", auth: "openid:bob-token", status: 200, user: provBob, modules: "rec"},
		{name: "openid admin", auth: "openid:admin-token", status: 200, user: provAdmin, admin: true, modules: "rec other"},
		{name: "openid same user_id", auth: "openid:bob-token", query: "?user_id=" + provBob, status: 200, user: provBob, modules: "rec"},
		{name: "openid other user_id", auth: "openid:bob-token", query: "?user_id=" + provAdmin, status: 403, errcode: "M_FORBIDDEN"},
		{name: "forged openid", auth: "openid:forged", status: 401, errcode: "M_UNKNOWN_TOKEN"},
		{name: "foreign server openid", auth: "openid:eve-token", status: 401, errcode: "M_UNKNOWN_TOKEN"},
		{name: "empty openid", auth: "openid:", status: 401, errcode: "M_UNKNOWN_TOKEN"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c := &provisiontest.Client{Base: base, Auth: tt.auth}
			var h http.Header
			if tt.header != "" {
				h = http.Header{"Authorization": {tt.header}}
			}
			a := c.DoWith(t, "GET", "/whoami"+tt.query, nil, h)
			if a.Status != tt.status || a.Errcode() != tt.errcode {
				t.Fatalf("status %d %s, want %d %s: %s", a.Status, a.Errcode(), tt.status, tt.errcode, a.Body)
			}
			if a.Status != 200 {
				return
			}
			var who struct {
				UserID  string   `json:"user_id"`
				Admin   bool     `json:"admin"`
				Modules []string `json:"modules"`
			}
			a.JSON(t, &who)
			mods := strings.Join(who.Modules, " ")
			if want := tt.modules; who.UserID != tt.user || who.Admin != tt.admin || mods != want {
				t.Errorf("whoami %+v, want user %q admin %v modules %q", who, tt.user, tt.admin, want)
			}
		})
	}
}

// TestProvisioningOpenIDCache: a token is checked with the homeserver once a minute, not on
// every request; a homeserver that does not answer is a 502, not a 401.
func TestProvisioningOpenIDCache(t *testing.T) {
	_, ui, base := provEnv(t)
	c := &provisiontest.Client{Base: base, Auth: "openid:bob-token"}
	for range 3 {
		if a := c.Do(t, "GET", "/whoami", nil); a.Status != 200 {
			t.Fatalf("status %d: %s", a.Status, a.Body)
		}
	}
	if n := ui.asked.Load(); n != 1 {
		t.Errorf("userinfo asked %d times for three requests, want 1", n)
	}
	ui.Close()
	c.Auth = "openid:admin-token"
	if a := c.Do(t, "GET", "/whoami", nil); a.Status != http.StatusBadGateway || a.Errcode() != "M_UNKNOWN" {
		t.Errorf("homeserver down: status %d: %s", a.Status, a.Body)
	}
}

// TestProvisioningRateLimit: ten failed authentications from one address, then 429 with
// Retry-After, even for the right secret, until the bucket refills.
func TestProvisioningRateLimit(t *testing.T) {
	env, _, base := provEnv(t)
	now := time.Now()
	var mu sync.Mutex
	env.core.provision.now = func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	bad := &provisiontest.Client{Base: base, Auth: "wrong"}
	for i := range provisionFailBurst {
		if a := bad.Do(t, "GET", "/whoami", nil); a.Status != 401 {
			t.Fatalf("attempt %d: status %d", i+1, a.Status)
		}
	}
	good := &provisiontest.Client{Base: base, Auth: testProvSecret}
	a := good.Do(t, "GET", "/whoami", nil)
	if a.Status != http.StatusTooManyRequests || a.Errcode() != "M_LIMIT_EXCEEDED" || a.Header.Get("Retry-After") == "" {
		t.Fatalf("after %d failures: status %d, Retry-After %q: %s", provisionFailBurst, a.Status, a.Header.Get("Retry-After"), a.Body)
	}
	mu.Lock()
	now = now.Add(provisionFailEvery)
	mu.Unlock()
	if a := good.Do(t, "GET", "/whoami", nil); a.Status != 200 {
		t.Fatalf("after the wait: status %d: %s", a.Status, a.Body)
	}
}

// TestProvisioningStatus: /status lists the modules the caller may use, error texts only
// for admins; /modules/{module}/status answers 404 and 403 as documented.
func TestProvisioningStatus(t *testing.T) {
	_, _, base := provEnv(t)
	for _, tt := range []struct {
		name, auth, path string
		status           int
		want, notWant    []string
	}{
		{name: "bob's status", auth: "openid:bob-token", path: "/status", status: 200,
			want: []string{`"id":"rec"`, `"errors_shown":false`, `"has_error":true`}, notWant: []string{`"other"`, "192.0.2.1"}},
		{name: "admin's status", auth: "openid:admin-token", path: "/status", status: 200,
			want: []string{`"id":"rec"`, `"id":"other"`, `"errors_shown":true`, "192.0.2.1:5222"}},
		{name: "module status", auth: "openid:bob-token", path: "/modules/rec/status", status: 200,
			want: []string{`"id":"rec"`, `"state":"reconnecting"`}, notWant: []string{"192.0.2.1"}},
		{name: "module status for admin", auth: "openid:admin-token", path: "/modules/rec/status", status: 200, want: []string{"192.0.2.1:5222"}},
		{name: "module not permitted", auth: "openid:bob-token", path: "/modules/other/status", status: 403, want: []string{"M_FORBIDDEN", "permissions"}},
		{name: "no such module", auth: "openid:bob-token", path: "/modules/nope/status", status: 404, want: []string{"M_NOT_FOUND", `\"nope\"`}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			a := (&provisiontest.Client{Base: base, Auth: tt.auth}).Do(t, "GET", tt.path, nil)
			if a.Status != tt.status {
				t.Fatalf("status %d, want %d: %s", a.Status, tt.status, a.Body)
			}
			for _, w := range tt.want {
				if !strings.Contains(string(a.Body), w) {
					t.Errorf("answer lacks %s: %s", w, a.Body)
				}
			}
			for _, w := range tt.notWant {
				if strings.Contains(string(a.Body), w) {
					t.Errorf("answer has %s: %s", w, a.Body)
				}
			}
		})
	}
}

// TestProvisioningModuleRoutes: what the core checks before and after a module's route:
// its permission list, admin routes, bodies, errors; and what the route is handed.
func TestProvisioningModuleRoutes(t *testing.T) {
	_, _, base := provEnv(t)
	big := `{"name":"` + strings.Repeat("x", provisionMaxBody) + `"}`
	for _, tt := range []struct {
		name, auth, method, path, ctype, body string
		status                                int
		want                                  []string
		notWant                               string
	}{
		{name: "echo for bob", auth: "openid:bob-token", method: "GET", path: "/rec/echo?x=1&user_id=" + provBob, status: 200,
			want: []string{`"user":"@bob:test"`, `"admin":false`, `"x":"1"`}},
		{name: "echo for the secret", auth: testProvSecret, method: "GET", path: "/rec/echo", status: 200, want: []string{`"user":""`, `"admin":true`}},
		{name: "not permitted", auth: testProvSecret, method: "GET", path: "/rec/echo?user_id=" + provCarol, status: 403, want: []string{"M_FORBIDDEN", "@carol:test"}},
		{name: "path value", auth: "openid:bob-token", method: "GET", path: "/rec/items/known", status: 200, want: []string{`"name":"known"`}},
		{name: "module's 404", auth: "openid:bob-token", method: "GET", path: "/rec/items/gone", status: 404, want: []string{"M_NOT_FOUND", `no item \"gone\"`}},
		{name: "admin route for bob", auth: "openid:bob-token", method: "POST", path: "/rec/admin-only", status: 403, want: []string{"management.admins"}},
		{name: "admin route for admin", auth: "openid:admin-token", method: "POST", path: "/rec/admin-only", status: 200, want: []string{`"admin":true`}},
		{name: "body", auth: "openid:bob-token", method: "POST", path: "/rec/items", ctype: "application/json", body: `{"name":"a","count":2}`, status: 200, want: []string{`"name":"a"`, `"count":2`}},
		{name: "no body", auth: "openid:bob-token", method: "POST", path: "/rec/items", status: 400, want: []string{"M_NOT_JSON", "JSON object"}},
		{name: "unknown field", auth: "openid:bob-token", method: "POST", path: "/rec/items", ctype: "application/json", body: `{"nmae":"a"}`, status: 400, want: []string{"M_BAD_JSON", `unknown field \"nmae\"`}},
		{name: "wrong type", auth: "openid:bob-token", method: "POST", path: "/rec/items", ctype: "application/json", body: `{"count":"two"}`, status: 400, want: []string{"M_BAD_JSON", "count must be"}},
		{name: "broken JSON", auth: "openid:bob-token", method: "POST", path: "/rec/items", ctype: "application/json", body: `{"name":`, status: 400, want: []string{"M_NOT_JSON"}},
		{name: "trailing data", auth: "openid:bob-token", method: "POST", path: "/rec/items", ctype: "application/json", body: `{"name":"a"} {}`, status: 400},
		{name: "not JSON", auth: "openid:bob-token", method: "POST", path: "/rec/items", ctype: "text/plain", body: `name=a`, status: 415, want: []string{"M_NOT_JSON", "text/plain"}},
		{name: "too large", auth: "openid:bob-token", method: "POST", path: "/rec/items", ctype: "application/json", body: big, status: 413, want: []string{"M_TOO_LARGE"}},
		{name: "error for bob", auth: "openid:bob-token", method: "GET", path: "/rec/fail", status: 500, want: []string{"M_UNKNOWN", "the log has the details"}, notWant: "192.0.2.1"},
		{name: "error for admin", auth: "openid:admin-token", method: "GET", path: "/rec/fail", status: 500, want: []string{"192.0.2.1:993"}},
		{name: "delete answers {}", auth: "openid:bob-token", method: "DELETE", path: "/rec/items/x", status: 200, want: []string{"{}"}},
		{name: "unknown endpoint", auth: "openid:bob-token", method: "GET", path: "/rec/nothing", status: 404, want: []string{"M_UNRECOGNIZED", "openapi"}},
		{name: "unknown endpoint without credentials", method: "GET", path: "/rec/nothing", status: 404},
		{name: "credentials before routes", method: "GET", path: "/rec/echo", status: 401},
	} {
		t.Run(tt.name, func(t *testing.T) {
			req, err := http.NewRequest(tt.method, base+ProvisioningPrefix+"/modules"+tt.path, strings.NewReader(tt.body))
			if err != nil {
				t.Fatal(err)
			}
			if tt.ctype != "" {
				req.Header.Set("Content-Type", tt.ctype)
			}
			if tt.auth != "" {
				req.Header.Set("Authorization", "Bearer "+tt.auth)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tt.status {
				t.Fatalf("status %d, want %d: %s", resp.StatusCode, tt.status, body)
			}
			if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
				t.Errorf("content type %q", ct)
			}
			for _, w := range tt.want {
				if !strings.Contains(string(body), w) {
					t.Errorf("answer lacks %s: %s", w, body)
				}
			}
			if tt.notWant != "" && strings.Contains(string(body), tt.notWant) {
				t.Errorf("answer has %s: %s", tt.notWant, body)
			}
		})
	}
}

// TestProvisioningOff: without Options.Provisioning the API is not there at all.
func TestProvisioningOff(t *testing.T) {
	env := startCore(t, sqliteStore(t))
	ops := httptest.NewServer(env.core.OpsHandler())
	defer ops.Close()
	req, _ := http.NewRequest("GET", ops.URL+ProvisioningPrefix+"/whoami", nil)
	req.Header.Set("Authorization", "Bearer "+testProvSecret)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Errorf("status %d, want 404", resp.StatusCode)
	}
}

// TestProvisioningNeedsCredentials: New refuses a provisioning API nobody can use.
func TestProvisioningNeedsCredentials(t *testing.T) {
	_, err := newProvisionAuth(Options{Provisioning: &Provisioning{}})
	if err == nil || !strings.Contains(err.Error(), "neither") {
		t.Errorf("err = %v", err)
	}
}

// TestProvisioningLogsNoCredentials: the audit log names the caller and the request, never
// the shared secret or an OpenID token.
func TestProvisioningLogsNoCredentials(t *testing.T) {
	var buf syncBuffer
	env, _, base := provEnv(t)
	env.core.log = env.core.log.Output(&buf).Level(-1)
	for _, auth := range []string{testProvSecret, "openid:bob-token", "openid:forged-secret-token", "wrong-secret-guess"} {
		(&provisiontest.Client{Base: base, Auth: auth}).Do(t, "GET", "/whoami", nil)
	}
	(&provisiontest.Client{Base: base, Auth: "openid:bob-token"}).Do(t, "GET", "/modules/other/status", nil)
	log := buf.String()
	for _, secret := range []string{testProvSecret, "bob-token", "forged-secret-token", "wrong-secret-guess"} {
		if strings.Contains(log, secret) {
			t.Errorf("the log holds %q:\n%s", secret, log)
		}
	}
	if !strings.Contains(log, `"user_id":"@bob:test"`) || !strings.Contains(log, `"status":403`) {
		t.Errorf("the log lacks the caller or the refusal:\n%s", log)
	}
}

// TestProvisioningDocumentedCoreRoutes: the core's own endpoints are in the OpenAPI
// document (the modules' are checked by their tests through provisiontest).
func TestProvisioningDocumentedCoreRoutes(t *testing.T) {
	doc, _ := provisiontest.Spec(t)
	for _, p := range []string{"/whoami", "/status", "/modules/{module}/status"} {
		if doc.Paths.Find(p) == nil || doc.Paths.Find(p).Get == nil {
			t.Errorf("GET %s is not in %s", p, provisiontest.SpecPath())
		}
	}
}
