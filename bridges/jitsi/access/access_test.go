package access

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"

	"github.com/switchboard-matrix/switchboard/internal/openid"
)

const (
	testServer = "example.org"
	testBearer = "uvs-secret"
	testRoom   = id.RoomID("!room:example.org")
)

// fakeHS is a homeserver's OpenID userinfo endpoint. Tokens map to a status and body.
type fakeHS struct {
	*httptest.Server
	calls atomic.Int64
	// answers is immutable after newFakeHS.
	answers map[string]struct {
		status int
		body   string
	}
}

func newFakeHS(t testing.TB) *fakeHS {
	hs := &fakeHS{answers: map[string]struct {
		status int
		body   string
	}{
		"tok-alice": {200, `{"sub":"@alice:example.org"}`},
		"tok-bob":   {200, `{"sub":"@bob:example.org"}`},
		"tok-carol": {200, `{"sub":"@carol:example.org"}`},
		"tok-dave":  {200, `{"sub":"@dave:example.org"}`},
		"tok-eve":   {200, `{"sub":"@eve:evil.example"}`},
		"tok-tail":  {200, `{"sub":"@eve:evil.example.org"}`},
		"tok-nosub": {200, `{}`},
		"tok-500":   {500, `{"errcode":"M_UNKNOWN"}`},
		"tok-429":   {429, `{"errcode":"M_LIMIT_EXCEEDED"}`},
	}}
	hs.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hs.calls.Add(1)
		if r.URL.Path != openid.UserinfoPath || r.Method != http.MethodGet {
			http.NotFound(w, r)
			return
		}
		a, ok := hs.answers[r.URL.Query().Get("access_token")]
		if !ok {
			a.status, a.body = 401, `{"errcode":"M_UNKNOWN_TOKEN","error":"Invalid access token"}`
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(a.status)
		_, _ = w.Write([]byte(a.body))
	}))
	t.Cleanup(hs.Close)
	return hs
}

// fakeState is a RoomState from maps.
type fakeState struct {
	mu      sync.Mutex
	members map[id.RoomID]map[id.UserID]event.Membership // guarded by mu
	names   map[id.UserID]string
	pls     map[id.RoomID]string // raw content
	botOut  map[id.RoomID]bool
	broken  map[id.RoomID]bool
}

func newFakeState() *fakeState {
	return &fakeState{
		members: map[id.RoomID]map[id.UserID]event.Membership{
			testRoom: {
				"@alice:example.org": event.MembershipJoin,
				"@bob:example.org":   event.MembershipBan,
				"@carol:example.org": event.MembershipLeave,
				"@dave:example.org":  event.MembershipInvite,
			},
			"!nopl:example.org": {"@alice:example.org": event.MembershipJoin, "@bob:example.org": event.MembershipJoin},
		},
		names: map[id.UserID]string{"@alice:example.org": "Alice"},
		pls: map[id.RoomID]string{
			testRoom: `{"ban":50,"events":{"m.room.name":50},"state_default":50,"users":{"@alice:example.org":100},"users_default":0}`,
		},
		botOut: map[id.RoomID]bool{"!out:example.org": true},
		broken: map[id.RoomID]bool{"!broken:example.org": true},
	}
}

func (s *fakeState) Membership(_ context.Context, roomID id.RoomID, userID id.UserID) (event.Membership, string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.botOut[roomID] {
		return "", "", ErrBotNotInRoom
	}
	if s.broken[roomID] {
		return "", "", errors.New("homeserver said 500")
	}
	m := s.members[roomID][userID]
	if m != event.MembershipJoin {
		return m, "", nil
	}
	return m, s.names[userID], nil
}

func (s *fakeState) PowerLevels(_ context.Context, roomID id.RoomID) (*event.PowerLevelsEventContent, json.RawMessage, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.botOut[roomID] {
		return nil, nil, ErrBotNotInRoom
	}
	raw, ok := s.pls[roomID]
	if !ok {
		return nil, nil, nil
	}
	var pl event.PowerLevelsEventContent
	if err := json.Unmarshal([]byte(raw), &pl); err != nil {
		return nil, nil, err
	}
	return &pl, json.RawMessage(raw), nil
}

// testClock is a settable clock.
type testClock struct {
	mu  sync.Mutex
	now time.Time // guarded by mu
}

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *testClock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

var testEpoch = time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)

// newTestHandler returns a Handler on a fake homeserver and state; mutate may change cfg.
func newTestHandler(t testing.TB, mutate func(*Config)) (*Handler, *fakeHS, *testClock) {
	t.Helper()
	hs := newFakeHS(t)
	clock := &testClock{now: testEpoch}
	cfg := Config{
		ServerName:    testServer,
		HomeserverURL: hs.URL,
		AuthToken:     testBearer,
		PerIP:         Rate{PerSecond: 1000, Burst: 1000},
		PerUser:       Rate{PerSecond: 1000, Burst: 1000},
		Now:           clock.Now,
	}
	if mutate != nil {
		mutate(&cfg)
	}
	h, err := New(cfg, newFakeState())
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return h, hs, clock
}

// call is one request to a Handler.
type call struct {
	method, path, body string
	bearer             string // "" = no Authorization header
	remote             string // default 192.0.2.1:40000
	ctx                context.Context
}

func (c call) do(h http.Handler) *httptest.ResponseRecorder {
	if c.method == "" {
		c.method = http.MethodPost
	}
	r := httptest.NewRequest(c.method, c.path, strings.NewReader(c.body))
	if c.ctx != nil {
		r = r.WithContext(c.ctx)
	}
	r.RemoteAddr = "192.0.2.1:40000"
	if c.remote != "" {
		r.RemoteAddr = c.remote
	}
	if c.bearer != "" {
		r.Header.Set("Authorization", "Bearer "+c.bearer)
	}
	r.Header.Set("Content-Type", "application/json")
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}

// assertJSON compares a JSON body to want (both decoded).
func assertJSON(t *testing.T, got []byte, want string) {
	t.Helper()
	var g, wnt any
	if err := json.Unmarshal(got, &g); err != nil {
		t.Fatalf("answer is not JSON: %v: %s", err, got)
	}
	if err := json.Unmarshal([]byte(want), &wnt); err != nil {
		t.Fatalf("bad want: %v", err)
	}
	if !reflect.DeepEqual(g, wnt) {
		t.Errorf("body:\n got %s\nwant %s", got, want)
	}
}

func TestNewValidates(t *testing.T) {
	ok := Config{ServerName: testServer, HomeserverURL: "http://127.0.0.1:8008"}
	tests := []struct {
		name    string
		mutate  func(*Config)
		noState bool
		want    []string // substrings of the error; none = success
	}{
		{name: "minimal", mutate: func(*Config) {}},
		{name: "no state", mutate: func(*Config) {}, noState: true, want: []string{"RoomState is required"}},
		{name: "everything missing", mutate: func(c *Config) { *c = Config{} },
			want: []string{"ServerName is required", "HomeserverURL: required"}},
		{name: "bad server name", mutate: func(c *Config) { c.ServerName = "example.org/x" }, want: []string{"not a Matrix server name"}},
		{name: "bad homeserver URL", mutate: func(c *Config) { c.HomeserverURL = "ftp://x" }, want: []string{"not an http(s) URL"}},
		{name: "negative rate", mutate: func(c *Config) { c.PerIP = Rate{PerSecond: -1} }, want: []string{"PerIP must not be negative"}},
		{name: "half rate", mutate: func(c *Config) { c.PerUser = Rate{PerSecond: 1} }, want: []string{"PerUser needs both"}},
		{name: "jwt without anything", mutate: func(c *Config) { c.JWT = &JWTConfig{} },
			want: []string{"JWT.Issuer", "JWT.Secret (HS256) or PrivateKey", "Conference is required", "MeetURL: required"}},
		{name: "jwt ok", mutate: func(c *Config) {
			c.JWT = &JWTConfig{Issuer: "app", Secret: []byte("s")}
			c.Conference = func(id.RoomID) string { return "c" }
			c.MeetURL = "https://meet.example.org/"
		}},
		{name: "jwt both keys", mutate: func(c *Config) {
			c.JWT = &JWTConfig{Issuer: "app", Secret: []byte("s"), PrivateKey: testRSAKey(t)}
			c.Conference = func(id.RoomID) string { return "c" }
			c.MeetURL = "https://meet.example.org"
		}, want: []string{"exclusive"}},
		{name: "rsa without kid", mutate: func(c *Config) {
			c.JWT = &JWTConfig{Issuer: "app", PrivateKey: testRSAKey(t)}
			c.Conference = func(id.RoomID) string { return "c" }
			c.MeetURL = "https://meet.example.org"
		}, want: []string{"KeyID is required"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := ok
			tt.mutate(&cfg)
			var state RoomState = newFakeState()
			if tt.noState {
				state = nil
			}
			_, err := New(cfg, state)
			if len(tt.want) == 0 {
				if err != nil {
					t.Fatalf("New: %v", err)
				}
				return
			}
			if !errors.Is(err, ErrConfig) {
				t.Fatalf("New: %v, want ErrConfig", err)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
		})
	}
}

func TestRoutes(t *testing.T) {
	h, _, _ := newTestHandler(t, nil)
	tests := []struct {
		name       string
		c          call
		wantStatus int
		wantAllow  string
	}{
		{name: "health", c: call{method: http.MethodGet, path: "/health"}, wantStatus: 200},
		{name: "health head", c: call{method: http.MethodHead, path: "/health"}, wantStatus: 200},
		{name: "health post", c: call{path: "/health"}, wantStatus: 405, wantAllow: "GET, HEAD"},
		{name: "verify get", c: call{method: http.MethodGet, path: "/verify/user"}, wantStatus: 405, wantAllow: "POST"},
		{name: "unknown path", c: call{path: "/verify/other"}, wantStatus: 404},
		{name: "token without jwt", c: call{path: "/token", body: `{}`}, wantStatus: 404},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := tt.c.do(h)
			if w.Code != tt.wantStatus {
				t.Fatalf("status %d, want %d: %s", w.Code, tt.wantStatus, w.Body)
			}
			if got := w.Header().Get("Allow"); got != tt.wantAllow {
				t.Errorf("Allow %q, want %q", got, tt.wantAllow)
			}
		})
	}
}
