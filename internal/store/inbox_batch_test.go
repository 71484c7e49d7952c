package store

import (
	"bytes"
	"fmt"
	"testing"

	"github.com/klauspost/compress/s2"
)

func TestBatchRoundTrip(t *testing.T) {
	for _, tc := range []struct {
		name string
		evs  []InboxEvent
	}{
		{"one", []InboxEvent{{EventID: "$a", RoomID: "!r:x", Kind: "timeline", Payload: []byte(`{"a":1}`)}}},
		{"empty fields", []InboxEvent{{EventID: "$b", Kind: "todevice", Payload: nil}, {EventID: "", Kind: "", Payload: []byte{}}}},
		{"many", func() []InboxEvent {
			evs := make([]InboxEvent, 300)
			for i := range evs {
				evs[i] = InboxEvent{EventID: fmt.Sprintf("$e%d", i), RoomID: "!room:example.org", Kind: "ephemeral",
					Payload: bytes.Repeat([]byte{byte(i)}, i*7)}
			}
			return evs
		}()},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ptrs := make([]*InboxEvent, len(tc.evs))
			for i := range tc.evs {
				ptrs[i] = &tc.evs[i]
			}
			got, err := decodeBatch(encodeBatch(ptrs), 40, len(tc.evs), 1234)
			if err != nil {
				t.Fatal(err)
			}
			for i, e := range tc.evs {
				g := got[i]
				if g.Seq != 40+int64(i) || g.ReceivedAt != 1234 || g.EventID != e.EventID || g.RoomID != e.RoomID ||
					g.Kind != e.Kind || !bytes.Equal(g.Payload, e.Payload) {
					t.Errorf("event %d = %+v, want %+v", i, g, e)
				}
				if cap(g.Payload) != len(g.Payload) {
					t.Errorf("event %d: payload capacity %d beyond its length %d: an append would overwrite the next event", i, cap(g.Payload), len(g.Payload))
				}
			}
		})
	}
}

func TestDecodeBatchRejects(t *testing.T) {
	good := encodeBatch([]*InboxEvent{{EventID: "$a", Kind: "timeline", Payload: []byte("{}")}})
	raw, _ := s2.Decode(nil, good)
	for _, tc := range []struct {
		name  string
		body  []byte
		count int
	}{
		{"not s2", []byte("plain"), 1},
		{"unknown format", s2.Encode(nil, append([]byte{9}, raw[1:]...)), 1},
		{"more events than written", good, 2},
		{"fewer events than written", good, 0},
		{"cut short", s2.Encode(nil, raw[:len(raw)-1]), 1},
		{"empty", s2.Encode(nil, nil), 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := decodeBatch(tc.body, 1, tc.count, 0); err == nil {
				t.Error("decodeBatch accepted it")
			}
		})
	}
}

// FuzzDecodeBatch: any body and count either decodes to exactly count events or is an
// error; nothing panics.
func FuzzDecodeBatch(f *testing.F) {
	f.Add(encodeBatch([]*InboxEvent{{EventID: "$a", RoomID: "!r", Kind: "timeline", Payload: []byte("{}")}}), 1)
	f.Add([]byte{}, 0)
	f.Add(s2.Encode(nil, []byte{1, 0, 0, 0, 0}), 1)
	f.Fuzz(func(t *testing.T, body []byte, count int) {
		evs, err := decodeBatch(body, 1, count, 0)
		if err == nil && len(evs) != count {
			t.Fatalf("%d events, want %d", len(evs), count)
		}
	})
}
