package appservice

import (
	"context"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"
	mas "maunium.net/go/mautrix/appservice"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"

	"github.com/switchboard-matrix/switchboard/internal/store"
	"github.com/switchboard-matrix/switchboard/internal/store/storetest"
	"github.com/switchboard-matrix/switchboard/registration"
)

const testHSToken = "hs-secret-token"

// recModule is a module for unit tests: it records what it is given and fails on demand.
type recModule struct {
	id string
	mu sync.Mutex
	// guarded by mu
	events    []*event.Event
	ephemeral []*event.Event
	fail      map[id.EventID]int // remaining failures per event
	block     id.EventID         // handling this event blocks until the context ends
	host      Host
}

func (m *recModule) ID() string { return m.id }
func (m *recModule) Namespaces() registration.Namespaces {
	return registration.Namespaces{
		Users:   []registration.Pattern{{Localpart: "_" + m.id + "_.+", Exclusive: true}},
		Aliases: []registration.Pattern{{Localpart: "_" + m.id + "_.+", Exclusive: true}},
	}
}
func (m *recModule) Start(_ context.Context, h Host) error { m.host = h; return nil }
func (m *recModule) Stop(context.Context) error            { return nil }
func (m *recModule) HandleEvent(ctx context.Context, evt *event.Event) error {
	if evt.ID == m.block {
		<-ctx.Done()
		return ctx.Err()
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.fail[evt.ID] > 0 {
		m.fail[evt.ID]--
		return io.ErrUnexpectedEOF
	}
	m.events = append(m.events, evt)
	return nil
}
func (m *recModule) HandleEphemeral(_ context.Context, evt *event.Event) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.ephemeral = append(m.ephemeral, evt)
	return nil
}
func (m *recModule) QueryUser(_ context.Context, u id.UserID) (bool, error) {
	return strings.HasSuffix(u.Localpart(), "exists"), nil
}
func (m *recModule) QueryAlias(_ context.Context, a id.RoomAlias) (bool, error) {
	return strings.Contains(a.String(), "exists"), nil
}
func (m *recModule) Protocols() []string { return []string{m.id + "proto"} }
func (m *recModule) Protocol(_ context.Context, p string) (*ThirdPartyProtocol, error) {
	return &ThirdPartyProtocol{"user_fields": []string{"name"}}, nil
}
func (m *recModule) Locations(_ context.Context, p string, f map[string]string) ([]ThirdPartyLocation, error) {
	if f["room"] == "" {
		return nil, nil
	}
	return []ThirdPartyLocation{{Alias: id.RoomAlias("#_" + m.id + "_" + f["room"] + ":test"), Protocol: p, Fields: f}}, nil
}
func (m *recModule) Users(_ context.Context, p string, f map[string]string) ([]ThirdPartyUser, error) {
	if f["name"] == "" {
		return nil, nil
	}
	return []ThirdPartyUser{{UserID: id.UserID("@_" + m.id + "_" + f["name"] + ":test"), Protocol: p, Fields: f}}, nil
}
func (m *recModule) LocationsByAlias(_ context.Context, a id.RoomAlias) ([]ThirdPartyLocation, error) {
	return []ThirdPartyLocation{{Alias: a, Protocol: m.id + "proto", Fields: map[string]string{"room": "x"}}}, nil
}
func (m *recModule) UsersByID(_ context.Context, u id.UserID) ([]ThirdPartyUser, error) {
	return []ThirdPartyUser{{UserID: u, Protocol: m.id + "proto", Fields: map[string]string{"name": "x"}}}, nil
}

func (m *recModule) got() []*event.Event {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]*event.Event(nil), m.events...)
}

type testEnv struct {
	core *Core
	hs   *fakeHomeserver
	st   *store.Store
	url  string
	mod  *recModule
}

func startCore(t *testing.T, st *store.Store, mods ...Module) *testEnv {
	t.Helper()
	return startCoreWith(t, st, nil, mods...)
}

// startCoreWith is startCore with a chance to change the options before New.
func startCoreWith(t *testing.T, st *store.Store, tweak func(*Options), mods ...Module) *testEnv {
	t.Helper()
	hs := newFakeHomeserver(t)
	mod := &recModule{id: "rec", fail: map[id.EventID]int{}}
	if len(mods) == 0 {
		mods = []Module{mod}
	}
	reg := &mas.Registration{ID: "sbtest", URL: "http://127.0.0.1:1", AppToken: "as-token", ServerToken: testHSToken, SenderLocalpart: "bot"}
	opts := Options{
		Registration: reg, HomeserverURL: hs.URL, Domain: "test", Store: st, Modules: mods,
		Listen: "127.0.0.1:0", Retry: Retry{Attempts: 3, Initial: 10 * time.Millisecond, Max: 50 * time.Millisecond},
		Version: "test",
	}
	if tweak != nil {
		tweak(&opts)
	}
	c, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	ctx := zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.WarnLevel).WithContext(context.Background())
	if err := c.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = c.Stop(sctx)
	})
	return &testEnv{core: c, hs: hs, st: st, url: "http://" + c.Addr().String(), mod: mod}
}

func (e *testEnv) do(t *testing.T, method, path, token, body string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, e.url+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// eventually polls cond until it holds or the deadline passes.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func sqliteStore(t *testing.T) *store.Store { return storetest.Open(t, store.SQLite) }
