package appservice

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"reflect"
	"sort"
	"strings"
	"sync"
	"testing"

	mas "maunium.net/go/mautrix/appservice"
	"maunium.net/go/mautrix/id"
)

// TestBridgeInfoJSON: the content uses MSC2346's field names (and bridgebot), and leaves
// out optional fields that are empty.
func TestBridgeInfoJSON(t *testing.T) {
	tests := []struct {
		name string
		info BridgeInfo
		want string
	}{
		{
			name: "all fields",
			info: BridgeInfo{
				BridgeBot: "@switchboard:example.org", Creator: "@alice:example.org",
				Protocol: BridgeInfoSection{ID: "xmpp", DisplayName: "XMPP", AvatarURL: "mxc://example.org/x", ExternalURL: "https://xmpp.org"},
				Network:  &BridgeInfoSection{ID: "muc.example.org", DisplayName: "MUC", ExternalURL: "xmpp:muc.example.org"},
				Channel:  BridgeInfoSection{ID: "room@muc.example.org", DisplayName: "Room", ExternalURL: "xmpp:room@muc.example.org?join"},
			},
			want: `{"bridgebot":"@switchboard:example.org","creator":"@alice:example.org",` +
				`"protocol":{"id":"xmpp","displayname":"XMPP","avatar_url":"mxc://example.org/x","external_url":"https://xmpp.org"},` +
				`"network":{"id":"muc.example.org","displayname":"MUC","external_url":"xmpp:muc.example.org"},` +
				`"channel":{"id":"room@muc.example.org","displayname":"Room","external_url":"xmpp:room@muc.example.org?join"}}`,
		},
		{
			name: "required only",
			info: BridgeInfo{BridgeBot: "@bot:example.org", Protocol: BridgeInfoSection{ID: "sip"}, Channel: BridgeInfoSection{ID: "bob@pbx.example.org"}},
			want: `{"bridgebot":"@bot:example.org","protocol":{"id":"sip"},"channel":{"id":"bob@pbx.example.org"}}`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			raw, err := json.Marshal(tt.info)
			if err != nil {
				t.Fatal(err)
			}
			if string(raw) != tt.want {
				t.Fatalf("JSON\n got %s\nwant %s", raw, tt.want)
			}
		})
	}
}

func TestBridgeInfoStateKey(t *testing.T) {
	tests := []struct {
		name    string
		network string // "" for none
		channel string
		want    string
	}{
		{"with network", "muc.example.org", "room@muc.example.org", "net.switchboard://xmpp/muc.example.org/room@muc.example.org"},
		{"without network", "", "room@muc.example.org", "net.switchboard://xmpp/room@muc.example.org"},
		{"slashes escaped", "a/b", "c/d/e", "net.switchboard://xmpp/a%2Fb/c%2Fd%2Fe"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			info := BridgeInfo{Protocol: BridgeInfoSection{ID: "xmpp"}, Channel: BridgeInfoSection{ID: tt.channel}}
			if tt.network != "" {
				info.Network = &BridgeInfoSection{ID: tt.network}
			}
			if got := info.StateKey(); got != tt.want {
				t.Fatalf("StateKey = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestBridgeInfoValidate(t *testing.T) {
	good := BridgeInfo{BridgeBot: "@bot:test", Protocol: BridgeInfoSection{ID: "email"}, Channel: BridgeInfoSection{ID: "info@example.org"}}
	tests := []struct {
		name   string
		change func(*BridgeInfo)
		ok     bool
	}{
		{"complete", func(*BridgeInfo) {}, true},
		{"no bridgebot", func(b *BridgeInfo) { b.BridgeBot = "" }, false},
		{"no protocol", func(b *BridgeInfo) { b.Protocol.ID = "" }, false},
		{"no channel", func(b *BridgeInfo) { b.Channel.ID = "" }, false},
		{"network without id", func(b *BridgeInfo) { b.Network = &BridgeInfoSection{DisplayName: "x"} }, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			info := good
			tt.change(&info)
			err := info.Validate()
			if (err == nil) != tt.ok || (err != nil && !errors.Is(err, ErrBadBridgeInfo)) {
				t.Fatalf("Validate = %v, want ok %v", err, tt.ok)
			}
		})
	}
}

// stateRecorder is a homeserver that records state events sent to it.
type stateRecorder struct {
	mu   sync.Mutex
	puts []string // "<room> <type> <state key> <content>"; guarded by mu
}

func (s *stateRecorder) serve(t *testing.T) *Intent {
	t.Helper()
	mux := http.NewServeMux()
	mux.HandleFunc("POST /_matrix/client/v3/register", func(w http.ResponseWriter, _ *http.Request) {
		_, _ = w.Write([]byte(`{"user_id":"@bot:test"}`))
	})
	mux.HandleFunc("POST /_matrix/client/v3/rooms/{room}/join", func(w http.ResponseWriter, r *http.Request) {
		_, _ = fmt.Fprintf(w, `{"room_id":%q}`, r.PathValue("room"))
	})
	mux.HandleFunc("PUT /_matrix/client/v3/rooms/{room}/state/{type}/{key...}", func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		key, _ := url.PathUnescape(r.PathValue("key"))
		s.mu.Lock()
		s.puts = append(s.puts, r.PathValue("room")+" "+r.PathValue("type")+" "+key+" "+string(body))
		s.mu.Unlock()
		_, _ = w.Write([]byte(`{"event_id":"$state"}`))
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	as := fakeAppService(t, srv.URL)
	return &Intent{api: as.BotIntent()}
}

func (s *stateRecorder) sent() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := append([]string(nil), s.puts...)
	sort.Strings(out)
	return out
}

// memStore is a ModuleStore with only the key-value part.
type memStore struct {
	ModuleStore
	mu sync.Mutex
	kv map[string]string // guarded by mu
}

func (m *memStore) GetKV(_ context.Context, key string) (string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	v, ok := m.kv[key]
	if !ok {
		return "", ErrNotFound
	}
	return v, nil
}

func (m *memStore) PutKV(_ context.Context, key, value string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.kv[key] = value
	return nil
}

// TestEnsureBridgeInfo: both event types with the same content and state key, written once
// per room; a change of the info is written again.
func TestEnsureBridgeInfo(t *testing.T) {
	hs := &stateRecorder{}
	in := hs.serve(t)
	st := &memStore{kv: map[string]string{}}
	ctx := context.Background()
	info := BridgeInfo{BridgeBot: "@bot:test", Protocol: BridgeInfoSection{ID: "email", DisplayName: "Email"}, Channel: BridgeInfoSection{ID: "info@example.org"}}
	content := `{"bridgebot":"@bot:test","protocol":{"id":"email","displayname":"Email"},"channel":{"id":"info@example.org"}}`

	steps := []struct {
		name  string
		room  id.RoomID
		info  BridgeInfo
		wrote bool
	}{
		{"new portal", "!a:test", info, true},
		{"same again", "!a:test", info, false},
		{"other portal", "!b:test", info, true},
	}
	for _, s := range steps {
		wrote, err := EnsureBridgeInfo(ctx, st, in, s.room, s.info)
		if err != nil || wrote != s.wrote {
			t.Fatalf("%s: EnsureBridgeInfo = %v, %v; want %v", s.name, wrote, err, s.wrote)
		}
	}
	want := []string{
		"!a:test m.bridge net.switchboard://email/info@example.org " + content,
		"!a:test uk.half-shot.bridge net.switchboard://email/info@example.org " + content,
		"!b:test m.bridge net.switchboard://email/info@example.org " + content,
		"!b:test uk.half-shot.bridge net.switchboard://email/info@example.org " + content,
	}
	if got := hs.sent(); !reflect.DeepEqual(got, want) {
		t.Fatalf("state sent:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}

	changed := info
	changed.Channel.DisplayName = "Info"
	if wrote, err := EnsureBridgeInfo(ctx, st, in, "!a:test", changed); err != nil || !wrote {
		t.Fatalf("changed info: EnsureBridgeInfo = %v, %v; want a write", wrote, err)
	}
	if n := len(hs.sent()); n != 6 {
		t.Fatalf("%d state events sent, want 6", n)
	}
	if _, err := EnsureBridgeInfo(ctx, st, in, "!c:test", BridgeInfo{}); !errors.Is(err, ErrBadBridgeInfo) {
		t.Fatalf("incomplete info: error %v, want ErrBadBridgeInfo", err)
	}
}

func ExampleBridgeInfo_StateKey() {
	info := BridgeInfo{
		BridgeBot: "@switchboard:example.org",
		Protocol:  BridgeInfoSection{ID: "xmpp", DisplayName: "XMPP"},
		Network:   &BridgeInfoSection{ID: "muc.example.org"},
		Channel:   BridgeInfoSection{ID: "lobby@muc.example.org", ExternalURL: "xmpp:lobby@muc.example.org?join"},
	}
	fmt.Println(info.StateKey())
	// Output: net.switchboard://xmpp/muc.example.org/lobby@muc.example.org
}

// fakeAppService is a mautrix appservice (token "as", bot "@bot:test") talking to the fake
// homeserver at url.
func fakeAppService(t *testing.T, url string) *mas.AppService {
	t.Helper()
	as := mas.Create()
	as.Registration = &mas.Registration{AppToken: "as", SenderLocalpart: "bot"}
	as.HomeserverDomain = "test"
	if err := as.SetHomeserverURL(url); err != nil {
		t.Fatal(err)
	}
	return as
}
