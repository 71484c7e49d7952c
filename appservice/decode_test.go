package appservice

import (
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"testing"

	"maunium.net/go/mautrix/event"

	"github.com/switchboard-matrix/switchboard/internal/store"
)

// refDecodeEvent is decodeEvent as it was before the fast path (mautrix's decoding alone);
// the differential tests hold decodeEvent to it.
func refDecodeEvent(row store.InboxEvent) (*event.Event, error) {
	var evt event.Event
	if err := json.Unmarshal(row.Payload, &evt); err != nil {
		return nil, fmt.Errorf("failed to decode event: %w", err)
	}
	switch {
	case row.Kind == kindEphemeral:
		evt.Type.Class = event.EphemeralEventType
		evt.Mautrix.EventSource = event.SourceEphemeral
	case evt.StateKey != nil:
		evt.Type.Class = event.StateEventType
		evt.Mautrix.EventSource = event.SourceTimeline
	default:
		evt.Type.Class = event.MessageEventType
		evt.Mautrix.EventSource = event.SourceTimeline
	}
	if err := evt.Content.ParseRaw(evt.Type); err != nil && !errors.Is(err, event.ErrUnsupportedContentType) {
		evt.Content.Parsed = nil
	}
	return &evt, nil
}

const decodeBenchEvent = `{"event_id":"$0000000000000000000000000000000000000000000","room_id":"!room01:example.org",` +
	`"type":"m.room.message","sender":"@user1:example.org","origin_server_ts":1700000000001,"unsigned":{"age":10},` +
	`"content":{"msgtype":"m.text","body":"a message of a typical length a message of a typical length a message ` +
	`of a typical length a message of a typical length a message of a typical length a message of a typical length",` +
	`"m.mentions":{}}}`

// decodeShapes are real event shapes: each must take the fast path and decode as mautrix does.
var decodeShapes = []struct {
	name, kind, payload string
}{
	{"message", kindTimeline, decodeBenchEvent},
	{"message with reply and formatting", kindTimeline, `{"event_id":"$b","room_id":"!r:x","type":"m.room.message","sender":"@a:x","origin_server_ts":2,"content":{"msgtype":"m.text","body":"> hi\n\nyo","format":"org.matrix.custom.html","formatted_body":"<b>yo</b>","m.relates_to":{"m.in_reply_to":{"event_id":"$a"}},"m.mentions":{"user_ids":["@b:x"]}}}`},
	{"edit", kindTimeline, `{"event_id":"$c","room_id":"!r:x","type":"m.room.message","sender":"@a:x","origin_server_ts":3,"content":{"msgtype":"m.text","body":"* new","m.new_content":{"msgtype":"m.text","body":"new"},"m.relates_to":{"rel_type":"m.replace","event_id":"$b"}}}`},
	{"image", kindTimeline, `{"event_id":"$i","room_id":"!r:x","type":"m.room.message","sender":"@a:x","origin_server_ts":3,"content":{"msgtype":"m.image","body":"cat.png","url":"mxc://x/abc","info":{"mimetype":"image/png","size":1234,"w":10,"h":20,"thumbnail_info":{"w":1}}}}`},
	{"our echo with txn marker", kindTimeline, `{"event_id":"$e","room_id":"!r:x","type":"m.room.message","sender":"@bot:x","origin_server_ts":4,"content":{"msgtype":"m.notice","body":"ok","` + txnMarkerKey + `":"txn-1"},"unsigned":{"transaction_id":"txn-1","age":5}}`},
	{"member join", kindTimeline, `{"event_id":"$m","room_id":"!r:x","type":"m.room.member","sender":"@a:x","state_key":"@a:x","origin_server_ts":5,"content":{"membership":"join","displayname":"A","avatar_url":"mxc://x/y"},"unsigned":{"prev_content":{"membership":"invite"},"prev_sender":"@b:x","replaces_state":"$old","age":7}}`},
	{"member invite direct", kindTimeline, `{"event_id":"$n","room_id":"!r:x","type":"m.room.member","sender":"@b:x","state_key":"@a:x","origin_server_ts":5,"content":{"membership":"invite","is_direct":true}}`},
	{"power levels", kindTimeline, `{"event_id":"$p","room_id":"!r:x","type":"m.room.power_levels","sender":"@a:x","state_key":"","origin_server_ts":6,"content":{"users":{"@a:x":100},"users_default":0,"events":{"m.room.name":50},"ban":50,"notifications":{"room":50}}}`},
	{"room name", kindTimeline, `{"event_id":"$q","room_id":"!r:x","type":"m.room.name","sender":"@a:x","state_key":"","origin_server_ts":6,"content":{"name":"Room"}}`},
	{"encryption", kindTimeline, `{"event_id":"$s","room_id":"!r:x","type":"m.room.encryption","sender":"@a:x","state_key":"","origin_server_ts":6,"content":{"algorithm":"m.megolm.v1.aes-sha2","rotation_period_ms":604800000}}`},
	{"redaction", kindTimeline, `{"event_id":"$r","room_id":"!r:x","type":"m.room.redaction","sender":"@a:x","redacts":"$b","origin_server_ts":7,"content":{"redacts":"$b","reason":"spam"}}`},
	{"encrypted", kindTimeline, `{"event_id":"$x","room_id":"!r:x","type":"m.room.encrypted","sender":"@a:x","origin_server_ts":8,"content":{"algorithm":"m.megolm.v1.aes-sha2","ciphertext":"AwgAEpAB","device_id":"DEV","sender_key":"abc","session_id":"sess","m.relates_to":{"rel_type":"m.thread","event_id":"$root"}}}`},
	{"reaction", kindTimeline, `{"event_id":"$y","room_id":"!r:x","type":"m.reaction","sender":"@a:x","origin_server_ts":9,"content":{"m.relates_to":{"rel_type":"m.annotation","event_id":"$b","key":"👍"}}}`},
	{"custom type", kindTimeline, `{"event_id":"$z","room_id":"!r:x","type":"org.example.custom","sender":"@a:x","origin_server_ts":10,"content":{"a":[1,2.5,"x",null,true,{"b":{}}],"n":-1e3}}`},
	{"custom state", kindTimeline, `{"event_id":"$cs","room_id":"!r:x","type":"org.example.state","sender":"@a:x","state_key":"k","origin_server_ts":10,"content":{}}`},
	{"redacted message", kindTimeline, `{"event_id":"$rm","room_id":"!r:x","type":"m.room.message","sender":"@a:x","origin_server_ts":11,"content":{},"unsigned":{"redacted_because":{"event_id":"$r","type":"m.room.redaction","sender":"@a:x","redacts":"$rm","content":{}}}}`},
	{"bad content for type", kindTimeline, `{"event_id":"$bc","room_id":"!r:x","type":"m.room.message","sender":"@a:x","content":{"body":5}}`},
	{"no content", kindTimeline, `{"event_id":"$nc","room_id":"!r:x","type":"m.room.message","sender":"@a:x"}`},
	{"extra top-level keys", kindTimeline, `{"event_id":"$et","room_id":"!r:x","type":"m.room.message","sender":"@a:x","age":5,"user_id":"@a:x","origin":"x","content":{"msgtype":"m.text","body":"é ✓ \u00e9\n"}}`},
	{"typing", kindEphemeral, `{"type":"m.typing","room_id":"!r:x","content":{"user_ids":["@a:x","@b:x"]}}`},
	{"receipt", kindEphemeral, `{"type":"m.receipt","room_id":"!r:x","content":{"$b":{"m.read":{"@a:x":{"ts":12,"thread_id":"main"}}}}}`},
	{"presence", kindEphemeral, `{"type":"m.presence","sender":"@a:x","content":{"presence":"online","last_active_ago":5,"currently_active":true,"status_msg":"hi"}}`},
}

// decodeOddities take the slow path or fail; they must still come out as mautrix's do.
var decodeOddities = []string{
	`{"Event_ID":"$a","type":"m.room.message","content":{"body":"x"}}`,
	`{"type":"m.room.message","type":"m.room.name","content":{"name":"x"}}`,
	`{"type":"m.room.member","state_key":"@a","prev_content":{"membership":"leave"},"replaces_state":"$o","content":{"membership":"join"}}`,
	`{"type":"m.room.message","content":{"body":"a","body":"b"}}`,
	`{"type":"m.room.message","content":null}`, `{"type":null,"content":{}}`, `{"content":{}}`, `{}`, `[]`, `null`, ``, `{"type":"x"} x`,
	`{"type":"m.room.message","origin_server_ts":1.5,"content":{}}`, `{"type":"m.room.message","origin_server_ts":"1","content":{}}`,
	`{"type":"m.room.message","state_key":null,"content":{}}`, `{"type":"m.room.message","sender":5,"content":{}}`,
	`{"type":"m.room.message","unsigned":{"age":"x"},"content":{}}`, `{"type":"m.room.message","unsigned":null,"content":{}}`,
	`{"type":"m.room.message","content":{"body":"` + "\xff\xfe" + `","x":"\ud800"}}`, `{"type":"m\u002eroom.message","sender":"@\u0061","content":{"msgtype":"m.text"}}`,
	`{"type":"m.room.message","content":{"n":1e999}}`, `{"type":"m.room.message","content":{"MsgType":"m.text","BODY":"x"}}`,
	`{"type":"m.room.message","msc4354_sticky":{"duration_ms":5},"content":{}}`, `{"type":"m.room.message","content":{"body":"x"},"\u0063ontent":{}}`,
	`{"type":"m.room.message","content":{"m.relates_to":{"rel_type":"m.replace","event_id":5}}}`,
	`{"type":"m.room.power_levels","state_key":"","content":{"users":{"@a":"100"}}}`,
}

func checkSameDecode(t *testing.T, kind string, payload []byte) {
	t.Helper()
	row := store.InboxEvent{Kind: kind, Payload: payload}
	want, wantErr := refDecodeEvent(row)
	got, gotErr := decodeEvent(row)
	if fmt.Sprint(gotErr) != fmt.Sprint(wantErr) {
		t.Fatalf("%s %q:\nerr  %v\nwant %v", kind, payload, gotErr, wantErr)
	}
	// The one documented difference: no Raw where mautrix parsed the content (except
	// m.room.encrypted); contentString reads such content from VeryRaw.
	if got != nil && got.Content.Raw == nil && want.Content.Raw != nil {
		if got.Content.Parsed == nil || got.Type == event.EventEncrypted {
			t.Fatalf("%s %q: Raw left out though Parsed is %T", kind, payload, got.Content.Parsed)
		}
		for k, v := range want.Content.Raw {
			if s, ok := v.(string); ok && contentString(&got.Content, k) != s {
				t.Fatalf("%s %q: contentString(%q) = %q, want %q", kind, payload, k, contentString(&got.Content, k), s)
			}
		}
		want.Content.Raw = nil
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("%s %q:\ngot  %#v\nwant %#v", kind, payload, got, want)
	}
}

func TestDecodeEventMatchesMautrix(t *testing.T) {
	for _, s := range decodeShapes {
		t.Run(s.name, func(t *testing.T) {
			if _, ok := decodeEventFast(store.InboxEvent{Kind: s.kind, Payload: []byte(s.payload)}); !ok {
				t.Error("took the slow path")
			}
			checkSameDecode(t, s.kind, []byte(s.payload))
		})
	}
	for i, p := range decodeOddities {
		t.Run(fmt.Sprint("oddity ", i), func(t *testing.T) {
			for _, kind := range []string{kindTimeline, kindEphemeral} {
				checkSameDecode(t, kind, []byte(p))
			}
		})
	}
}

// FuzzDecodeEvent holds decodeEvent to mautrix's decoding for any payload.
func FuzzDecodeEvent(f *testing.F) {
	for _, s := range decodeShapes {
		f.Add(s.kind == kindEphemeral, []byte(s.payload))
	}
	for _, p := range decodeOddities {
		f.Add(false, []byte(p))
	}
	f.Fuzz(func(t *testing.T, ephemeral bool, payload []byte) {
		kind := kindTimeline
		if ephemeral {
			kind = kindEphemeral
		}
		checkSameDecode(t, kind, payload)
	})
}

func BenchmarkDecodeEvent(b *testing.B) {
	row := store.InboxEvent{Kind: kindTimeline, Payload: []byte(decodeBenchEvent)}
	for _, impl := range []struct {
		name   string
		decode func(store.InboxEvent) (*event.Event, error)
	}{{"mautrix", refDecodeEvent}, {"fast", decodeEvent}} {
		b.Run(impl.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := impl.decode(row); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
