package widget

import (
	"encoding/json"
	"strings"
	"testing"
	"unicode/utf8"

	"maunium.net/go/mautrix/id"
)

func FuzzRoomFromUVSConference(f *testing.F) {
	for _, s := range []string{"EFQTUYQ", "efqtuyq", "", "EE", "EFQTUYQ=", "jitsiabc", "EF4A", "EFQT\nUYQ"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, conf string) {
		room, ok := RoomFromUVSConference(conf)
		if !ok {
			if room != "" {
				t.Fatalf("not ok but room %q", room)
			}
			return
		}
		if !strings.HasPrefix(string(room), "!") {
			t.Fatalf("room %q does not start with !", room)
		}
		if back := ConferenceForUVS(room); !strings.EqualFold(back, conf) {
			t.Fatalf("%q -> %q -> %q", conf, room, back)
		}
	})
}

func FuzzConferenceForUVS(f *testing.F) {
	for _, s := range []string{"!a:b", "!OGEhHVWSdvArJzumhm:matrix.org", "!x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, room string) {
		conf := ConferenceForUVS(id.RoomID(room))
		for _, c := range []string{conf, strings.ToLower(conf)} {
			got, ok := RoomFromUVSConference(c)
			if ok && string(got) != room {
				t.Fatalf("%q -> %q -> %q", room, c, got)
			}
		}
	})
}

func FuzzPinLayout(f *testing.F) {
	for _, s := range []string{``, `null`, `{}`, `[1]`, `{"widgets":{"w1":"x","o":{"container":"right"}}}`,
		`{"widgets":null}`, `{"widgets":{"w1":{"width":1e999}}}`, `{"a":"\ud800"}`, `{"widgets":{"w1":{}},"widgets":1}`} {
		f.Add([]byte(s), "w1")
	}
	f.Fuzz(func(t *testing.T, existing []byte, widgetID string) {
		out, err := PinLayout(existing, widgetID)
		if !utf8.ValidString(widgetID) {
			return // widget IDs are ASCII; JSON cannot carry this one as it is
		}
		if err != nil {
			if json.Valid(existing) {
				t.Fatalf("valid JSON %q refused: %v", existing, err)
			}
			return
		}
		var layout struct {
			Widgets map[string]json.RawMessage `json:"widgets"`
		}
		if err := json.Unmarshal(out, &layout); err != nil {
			t.Fatalf("PinLayout(%q) = %s: %v", existing, out, err)
		}
		var w struct {
			Container string  `json:"container"`
			Index     float64 `json:"index"`
			Width     float64 `json:"width"`
			Height    float64 `json:"height"`
		}
		raw, ok := layout.Widgets[widgetID]
		if !ok || json.Unmarshal(raw, &w) != nil || w.Container != "top" || w.Index != 0 || w.Width != 100 || w.Height != 40 {
			t.Fatalf("PinLayout(%q, %q) = %s: our widget not pinned", existing, widgetID, out)
		}
		back, changed, err := UnpinLayout(out, widgetID)
		if err != nil || !changed || !json.Valid(back) {
			t.Fatalf("UnpinLayout(%s) = %s, %v, %v", out, back, changed, err)
		}
	})
}
