package case116117

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/rs/zerolog"
	"gopkg.in/yaml.v3"
	"maunium.net/go/mautrix"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"

	"github.com/switchboard-matrix/switchboard/appservice"
	"github.com/switchboard-matrix/switchboard/config"
)

// cryptoHost is a Host that says whether the core encrypts.
type cryptoHost struct {
	appservice.Host
	active bool
}

func (h cryptoHost) EncryptionActive() bool { return h.active }

// encryptionEvents returns the m.room.encryption events of req's initial state.
func encryptionEvents(req *mautrix.ReqCreateRoom) []*event.Event {
	var out []*event.Event
	for _, e := range req.InitialState {
		if e.Type == event.StateEncryption {
			out = append(out, e)
		}
	}
	return out
}

// TestCreateRoomRequestEncryption: the rooms the bot creates get exactly one Megolm
// m.room.encryption when encrypt_rooms (default true) is on and the core encrypts, none
// otherwise; the caller's request is not changed and its other state is kept.
func TestCreateRoomRequestEncryption(t *testing.T) {
	caseState := &event.Event{Type: caseStateType, StateKey: ptr(""), Content: event.Content{Raw: map[string]any{"case_id": "x"}}}
	existing := &event.Event{Type: event.StateEncryption, StateKey: ptr(""), Content: event.Content{Raw: map[string]any{"algorithm": "m.megolm.v1.aes-sha2", "rotation_period_msgs": 10}}}
	tests := []struct {
		name         string
		encryptRooms *bool // nil: the default
		active       bool  // the core encrypts
		state        []*event.Event
		want         bool // the request carries m.room.encryption
	}{
		{"default, core encrypts", nil, true, nil, true},
		{"default, core encrypts, case state kept", nil, true, []*event.Event{caseState}, true},
		{"on, core encrypts", ptr(true), true, nil, true},
		{"default, core without encryption", nil, false, []*event.Event{caseState}, false},
		{"off, core encrypts", ptr(false), true, []*event.Event{caseState}, false},
		{"off, core without encryption", ptr(false), false, nil, false},
		{"already in the request", nil, true, []*event.Event{existing, caseState}, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b := &Bot{cfg: Config{EncryptRooms: tc.encryptRooms}, host: cryptoHost{active: tc.active}}
			req := &mautrix.ReqCreateRoom{Preset: "private_chat", Name: "Fall A1", InitialState: append([]*event.Event(nil), tc.state...)}
			got := withEncryption(req, b.encryptRooms())
			if len(req.InitialState) != len(tc.state) {
				t.Fatalf("the caller's request was changed: %d initial state events, want %d", len(req.InitialState), len(tc.state))
			}
			enc := encryptionEvents(got)
			if !tc.want {
				if len(enc) != 0 || got != req {
					t.Fatalf("request %+v, want it unchanged without m.room.encryption", got)
				}
				return
			}
			if len(enc) != 1 {
				t.Fatalf("%d m.room.encryption events, want 1", len(enc))
			}
			// What goes to the homeserver: the request as JSON.
			raw, err := json.Marshal(got)
			if err != nil {
				t.Fatal(err)
			}
			var wire struct {
				InitialState []struct {
					Type     string                       `json:"type"`
					StateKey *string                      `json:"state_key"`
					Content  event.EncryptionEventContent `json:"content"`
				} `json:"initial_state"`
			}
			if err := json.Unmarshal(raw, &wire); err != nil {
				t.Fatal(err)
			}
			n := 0
			for _, s := range wire.InitialState {
				if s.Type == event.StateEncryption.Type {
					n++
					if s.Content.Algorithm != id.AlgorithmMegolmV1 || s.StateKey == nil || *s.StateKey != "" {
						t.Errorf("m.room.encryption sent as %s", raw)
					}
				}
			}
			if n != 1 {
				t.Errorf("%d m.room.encryption in the request %s, want 1", n, raw)
			}
			for _, s := range tc.state {
				found := false
				for _, g := range got.InitialState {
					found = found || g == s
				}
				if !found {
					t.Errorf("initial state %s lost", s.Type.Type)
				}
			}
			if got.Name != req.Name || got.Preset != req.Preset {
				t.Errorf("request %+v lost fields of %+v", got, req)
			}
		})
	}
}

// TestEncryptRoomsConfig: encrypt_rooms defaults to true and can be turned off in YAML.
func TestEncryptRoomsConfig(t *testing.T) {
	link := "links: [{name: b, oid: 1.2.3, ucrm: {url: 'https://u.example/', username: u, password: p}, dispatchers: ['@d:example.org']}]\n"
	tests := []struct {
		name, yaml string
		want       bool
	}{
		{"default", link, true},
		{"on", link + "encrypt_rooms: true\n", true},
		{"off", link + "encrypt_rooms: false\n", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var section config.ModuleConfig
			if err := yaml.Unmarshal([]byte("enabled: true\n"+tc.yaml), &section); err != nil {
				t.Fatal(err)
			}
			c, err := ParseConfig(section)
			if err != nil {
				t.Fatal(err)
			}
			if got := c.encryptRooms(); got != tc.want {
				t.Errorf("encryptRooms() = %v, want %v", got, tc.want)
			}
		})
	}
}

// TestUnencryptedRoomsWarned: without encryption in the core (or with encrypt_rooms off)
// the start logs one warning that case rooms hold patient data unencrypted.
func TestUnencryptedRoomsWarned(t *testing.T) {
	tests := []struct {
		name         string
		encryptRooms *bool
		active       bool
		warn         bool
	}{
		{"core without encryption", nil, false, true},
		{"encrypt_rooms off", ptr(false), true, true},
		{"encrypted", nil, true, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var buf bytes.Buffer
			ctx := zerolog.New(&buf).Level(zerolog.DebugLevel).WithContext(t.Context())
			b := &Bot{cfg: Config{EncryptRooms: tc.encryptRooms}, host: cryptoHost{active: tc.active}}
			b.logEncryption(ctx)
			warnings := strings.Count(buf.String(), `"level":"warn"`)
			if tc.warn && (warnings != 1 || !strings.Contains(buf.String(), "UNENCRYPTED")) || !tc.warn && warnings != 0 {
				t.Errorf("log %s", buf.String())
			}
		})
	}
}
