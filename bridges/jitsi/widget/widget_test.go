package widget

import (
	"encoding/json"
	"regexp"
	"strings"
	"testing"

	"maunium.net/go/mautrix/id"
)

// TestContentMatchesElement compares, field by field, our content with what Element Web
// writes when a user starts a Jitsi video call in a room whose Jitsi uses auth
// "openidtoken-jwt", from Element on https://app.element.io. Compared against
// element-hq/element-web:
//   - src/utils/WidgetUtils.ts, WidgetUtils.addJitsiWidget (conference ID: base32 of the room
//     ID without padding; the URL's query set to confId; the data object) and
//     WidgetUtils.setRoomWidget (type = WidgetType.JITSI.legacy, url, name, data; avatar_url
//     undefined, so absent);
//   - src/utils/WidgetUtils.ts, WidgetUtils.getLocalJitsiWrapperUrl (the fragment's templates
//     in order, supportsScreensharing=true on the web, "&auth=" appended when auth is set) and
//     its test test/utils/WidgetUtils-test.ts ("should generate jitsi URL (for defaults)");
//   - src/widgets/WidgetType.ts, WidgetType.JITSI = ("m.jitsi", "jitsi");
//   - src/vector/jitsi/index.ts, which reads conferenceDomain, conferenceId, isAudioOnly,
//     startWithAudioMuted, startWithVideoMuted, isVideoChannel, displayName, avatarUrl, userId,
//     roomId, roomName, supportsScreensharing and auth back from the fragment.
func TestContentMatchesElement(t *testing.T) {
	// What Element sends as the im.vector.modular.widgets state content (the conference ID
	// computed independently with Python's base64.b32encode, padding stripped).
	const element = `{
		"type": "jitsi",
		"url": "https://app.element.io/jitsi.html?confId=EFHUORLIJBLFOU3EOZAXEST2OVWWQ3J2NVQXI4TJPAXG64TH#conferenceDomain=$domain&conferenceId=$conferenceId&isAudioOnly=$isAudioOnly&startWithAudioMuted=$startWithAudioMuted&startWithVideoMuted=$startWithVideoMuted&isVideoChannel=$isVideoChannel&displayName=$matrix_display_name&avatarUrl=$matrix_avatar_url&userId=$matrix_user_id&roomId=$matrix_room_id&theme=$theme&roomName=$roomName&supportsScreensharing=true&language=$org.matrix.msc2873.client_language&auth=openidtoken-jwt",
		"name": "Jitsi",
		"data": {
			"conferenceId": "EFHUORLIJBLFOU3EOZAXEST2OVWWQ3J2NVQXI4TJPAXG64TH",
			"roomName": "Test room",
			"isAudioOnly": false,
			"isVideoChannel": false,
			"domain": "meet.element.io",
			"auth": "openidtoken-jwt"
		}
	}`
	roomID := id.RoomID("!OGEhHVWSdvArJzumhm:matrix.org")
	got := New(Options{
		Domain:       "meet.element.io",
		ConferenceID: ConferenceForUVS(roomID),
		RoomName:     "Test room",
		Auth:         AuthOpenIDJWT,
	})
	b, err := json.Marshal(got)
	if err != nil {
		t.Fatal(err)
	}
	var want, have map[string]any
	if err := json.Unmarshal([]byte(element), &want); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &have); err != nil {
		t.Fatal(err)
	}
	compareFields(t, "", want, have)
}

// compareFields reports every field that is missing, extra or different, by its path.
func compareFields(t *testing.T, path string, want, have map[string]any) {
	t.Helper()
	for k, w := range want {
		h, ok := have[k]
		if !ok {
			t.Errorf("%s%s: missing, Element writes %#v", path, k, w)
			continue
		}
		if wm, ok := w.(map[string]any); ok {
			hm, ok := h.(map[string]any)
			if !ok {
				t.Errorf("%s%s: %#v, Element writes an object", path, k, h)
				continue
			}
			compareFields(t, path+k+".", wm, hm)
			continue
		}
		if w != h {
			t.Errorf("%s%s:\n have %#v\n want %#v", path, k, h, w)
		}
	}
	for k, h := range have {
		if _, ok := want[k]; !ok {
			t.Errorf("%s%s: %#v, Element does not write this field", path, k, h)
		}
	}
}

func TestNew(t *testing.T) {
	tests := []struct {
		name string
		in   Options
		want Content
	}{
		{
			name: "no auth, audio only, own wrapper",
			in: Options{Domain: "meet.example.org", ConferenceID: "JitsiAbcdefghijklmnopqrstuvw", RoomName: "Team",
				Name: "Meeting", WrapperURL: "https://chat.example.org/jitsi.html", AudioOnly: true},
			want: Content{
				Type: "jitsi",
				URL:  "https://chat.example.org/jitsi.html?confId=JitsiAbcdefghijklmnopqrstuvw#" + strings.Join(wrapperParams, "&"),
				Name: "Meeting",
				Data: Data{ConferenceID: "JitsiAbcdefghijklmnopqrstuvw", RoomName: "Team", IsAudioOnly: true, Domain: "meet.example.org"},
			},
		},
		{
			name: "defaults",
			in:   Options{Domain: "meet.example.org", ConferenceID: "c"},
			want: Content{
				Type: "jitsi",
				URL:  DefaultWrapperURL + "?confId=c#" + strings.Join(wrapperParams, "&"),
				Name: "Jitsi",
				Data: Data{ConferenceID: "c", Domain: "meet.example.org"},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := New(tt.in); got != tt.want {
				t.Errorf("New() =\n %+v\nwant\n %+v", got, tt.want)
			}
		})
	}
}

func TestNewRandomConference(t *testing.T) {
	c := New(Options{Domain: "meet.example.org"})
	if !regexp.MustCompile(`^Jitsi[A-Z][a-z]{23}$`).MatchString(c.Data.ConferenceID) {
		t.Errorf("conference %q is not like Element's random one", c.Data.ConferenceID)
	}
	if !strings.Contains(c.URL, "?confId="+c.Data.ConferenceID+"#") {
		t.Errorf("URL %q lacks the conference", c.URL)
	}
}

func TestWrapperURL(t *testing.T) {
	frag := strings.Join(wrapperParams, "&")
	tests := []struct {
		name, base, conf, auth, want string
	}{
		{"default base", "", "abc", "", DefaultWrapperURL + "?confId=abc#" + frag},
		{"auth appended", "", "abc", "openidtoken-jwt", DefaultWrapperURL + "?confId=abc#" + frag + "&auth=openidtoken-jwt"},
		{"query and fragment of base dropped", "https://x.example/jitsi.html?a=b#c=d", "abc", "", "https://x.example/jitsi.html?confId=abc#" + frag},
		{"conference form-encoded", "", "a b&c", "", DefaultWrapperURL + "?confId=a+b%26c#" + frag},
		{"auth fragment-encoded", "", "abc", "a b", DefaultWrapperURL + "?confId=abc#" + frag + "&auth=a%20b"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := WrapperURL(tt.base, tt.conf, tt.auth); got != tt.want {
				t.Errorf("WrapperURL() =\n %s\nwant\n %s", got, tt.want)
			}
		})
	}
}

func TestNewWidgetID(t *testing.T) {
	re := regexp.MustCompile(`^[A-Za-z0-9]{24}$`)
	seen := map[string]bool{}
	for range 100 {
		w := NewWidgetID()
		if !re.MatchString(w) {
			t.Fatalf("widget ID %q is not 24 letters and digits", w)
		}
		if seen[w] {
			t.Fatalf("widget ID %q repeated", w)
		}
		seen[w] = true
	}
}

func TestConferenceForUVS(t *testing.T) {
	tests := []struct {
		name string
		room id.RoomID
		want string // computed with Python's base64.b32encode, padding stripped
	}{
		{"short", "!a:b", "EFQTUYQ"},
		{"typical", "!OGEhHVWSdvArJzumhm:matrix.org", "EFHUORLIJBLFOU3EOZAXEST2OVWWQ3J2NVQXI4TJPAXG64TH"},
		{"room version 12 (no server)", "!x", "EF4A"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := ConferenceForUVS(tt.room); got != tt.want {
				t.Errorf("ConferenceForUVS(%q) = %q, want %q", tt.room, got, tt.want)
			}
		})
	}
}

func TestRoomFromUVSConference(t *testing.T) {
	tests := []struct {
		name, conf string
		want       id.RoomID
		ok         bool
	}{
		{"upper case (Element)", "EFQTUYQ", "!a:b", true},
		{"lower case (Jitsi)", "efqtuyq", "!a:b", true},
		{"mixed case", "eFqTuYq", "!a:b", true},
		{"typical", "efhuorlijblfou3eozaxest2ovwwq3j2nvqxi4tjpaxg64th", "!OGEhHVWSdvArJzumhm:matrix.org", true},
		{"empty", "", "", false},
		{"padding", "EFQTUYQ=", "", false},
		{"newline inside", "EFQT\nUYQ", "", false},
		{"not base32", "jitsiabc1", "", false},
		{"non-canonical trailing bits", "EFQTUYR", "", false},
		{"not a room ID", "MFRGG", "", false}, // "abc"
		{"bare bang", "EE", "", false},
		{"random Element conference", "JitsiQabcdefghijklmnopqrstuvw", "", false},
		{"control character", "EEAQ", "", false}, // "!\x01"
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := RoomFromUVSConference(tt.conf)
			if got != tt.want || ok != tt.ok {
				t.Errorf("RoomFromUVSConference(%q) = %q, %v; want %q, %v", tt.conf, got, ok, tt.want, tt.ok)
			}
		})
	}
}

func TestConferenceHMAC(t *testing.T) {
	a := ConferenceHMAC([]byte("secret"), "!a:b")
	if !regexp.MustCompile(`^jitsi[a-z2-7]{26}$`).MatchString(a) {
		t.Fatalf("ConferenceHMAC = %q, want jitsi + 26 lower-case base32", a)
	}
	tests := []struct {
		name   string
		secret string
		room   id.RoomID
		same   bool
	}{
		{"stable", "secret", "!a:b", true},
		{"other room", "secret", "!a:c", false},
		{"other secret", "secret2", "!a:b", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := ConferenceHMAC([]byte(tt.secret), tt.room); (got == a) != tt.same {
				t.Errorf("ConferenceHMAC(%q, %q) = %q, same as %q: %v, want %v", tt.secret, tt.room, got, a, got == a, tt.same)
			}
		})
	}
	if _, ok := RoomFromUVSConference(a); ok {
		t.Errorf("an HMAC conference decodes to a room")
	}
}
