package appservice

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

func TestParseTransaction(t *testing.T) {
	long := strings.Repeat("x", 300)
	tests := []struct {
		name      string
		body      string
		events    int
		ephemeral int
		wantErr   string
	}{
		{"empty events", `{"events":[]}`, 0, 0, ""},
		{"no keys", `{}`, 0, 0, ""},
		{"one event", `{"events":[` + msgEvent("$a", "!r:x", "hi") + `]}`, 1, 0, ""},
		{"ephemeral", `{"events":[],"ephemeral":[{"type":"m.typing","room_id":"!r:x","content":{"user_ids":[]}}]}`, 0, 1, ""},
		{"msc2409 ephemeral", `{"de.sorunome.msc2409.ephemeral":[{"type":"m.presence","sender":"@a:x","content":{}}]}`, 0, 1, ""},
		{"malformed to-device skipped", `{"events":[],"to_device":[{"nonsense":1}]}`, 0, 0, ""},
		{"msc2409 to-device", `{"de.sorunome.msc2409.to_device":[{"type":"m.room.encrypted","sender":"@a:x","to_user_id":"@b:y","to_device_id":"D","content":{}}]}`, 0, 0, ""},
		{"empty body", ``, 0, 0, "body is not a JSON object"},
		{"array body", `[]`, 0, 0, "body is not a JSON object"},
		{"truncated", `{"events":[`, 0, 0, "invalid JSON"},
		{"events not array", `{"events":{}}`, 0, 0, "events must be an array"},
		{"event not object", `{"events":[1]}`, 0, 0, "events[0]: not a JSON object"},
		{"missing event_id", `{"events":[{"room_id":"!r:x","type":"t","sender":"@a:x"}]}`, 0, 0, "events[0]: missing event_id"},
		{"missing room_id", `{"events":[{"event_id":"$a","type":"t","sender":"@a:x"}]}`, 0, 0, "events[0]: missing room_id"},
		{"missing type", `{"events":[{"event_id":"$a","room_id":"!r:x","sender":"@a:x"}]}`, 0, 0, "events[0]: missing type"},
		{"missing sender", `{"events":[{"event_id":"$a","room_id":"!r:x","type":"t"}]}`, 0, 0, "events[0]: missing sender"},
		{"empty event_id", `{"events":[{"event_id":"","room_id":"!r:x","type":"t","sender":"@a:x"}]}`, 0, 0, "events[0]: empty event_id"},
		{"event_id not string", `{"events":[{"event_id":5,"room_id":"!r:x","type":"t","sender":"@a:x"}]}`, 0, 0, "events[0]: event_id must be a string"},
		{"event_id too long", `{"events":[{"event_id":"` + long + `","room_id":"!r:x","type":"t","sender":"@a:x"}]}`, 0, 0, "event_id longer than 255"},
		{"second event bad", `{"events":[` + msgEvent("$a", "!r:x", "hi") + `,{}]}`, 0, 0, "events[1]: missing event_id"},
		{"ephemeral without type", `{"ephemeral":[{"room_id":"!r:x"}]}`, 0, 0, "ephemeral[0]: missing type"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			txn, err := ParseTransaction([]byte(tt.body))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) || !errors.Is(err, ErrBadTransaction) {
					t.Fatalf("err = %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(txn.Events) != tt.events || len(txn.Ephemeral) != tt.ephemeral {
				t.Fatalf("got %d events, %d ephemeral", len(txn.Events), len(txn.Ephemeral))
			}
		})
	}
}

// FuzzParseTransaction: the parser never panics, an accepted transaction's events carry
// everything the journal needs, and errors never echo the body (it may hold message text).
func FuzzParseTransaction(f *testing.F) {
	f.Add([]byte(`{"events":[` + msgEvent("$a", "!r:x", "hi") + `]}`))
	f.Add([]byte(`{"events":[],"ephemeral":[{"type":"m.typing","room_id":"!r:x"}]}`))
	f.Add([]byte(`{"events":[{"event_id":5}]}`))
	f.Add([]byte(`{"de.sorunome.msc2409.ephemeral":[{"type":"m.receipt"}]}`))
	f.Add([]byte(`{"events":[{"event_id":"$a","room_id":"!r","type":"t","sender":"@s","state_key":""}]}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		txn, err := ParseTransaction(body)
		if err != nil {
			if len(body) > 40 && strings.Contains(err.Error(), string(body)) {
				t.Fatalf("error echoes the body: %v", err)
			}
			return
		}
		for _, e := range txn.Events {
			if e.EventID == "" || e.RoomID == "" || e.Type == "" || e.Sender == "" {
				t.Fatalf("accepted event without ids: %+v", e)
			}
			if len(e.EventID) > maxIDLength || len(e.RoomID) > maxIDLength {
				t.Fatal("accepted over-long id")
			}
			if !json.Valid(e.Raw) {
				t.Fatal("raw event is not valid JSON")
			}
		}
		for _, e := range txn.Ephemeral {
			if e.Type == "" || !json.Valid(e.Raw) {
				t.Fatalf("accepted bad ephemeral event: %+v", e)
			}
		}
	})
}
