package appservice

import (
	"fmt"
	"reflect"
	"strings"
	"testing"
)

// txnDiffSeeds are bodies for the differential tests: the shapes of TestParseTransaction and
// hostile ones (case-folded and duplicate names, escapes, invalid UTF-8, wrong kinds, nulls,
// trailing data, device lists and key counts).
var txnDiffSeeds = []string{
	`{"events":[]}`, `{}`, `{"events":[` + msgEvent("$a", "!r:x", "hi") + `]}`,
	`{"events":[],"ephemeral":[{"type":"m.typing","room_id":"!r:x","content":{"user_ids":[]}}]}`,
	`{"de.sorunome.msc2409.ephemeral":[{"type":"m.presence","sender":"@a:x","content":{}}]}`,
	`{"events":[],"to_device":[{"nonsense":1}]}`,
	`{"de.sorunome.msc2409.to_device":[{"type":"m.room.encrypted","sender":"@a:x","to_user_id":"@b:y","to_device_id":"D","content":{}}]}`,
	``, `[]`, `{"events":[`, `{"events":{}}`, `{"events":[1]}`, `{"events":"x"}`, `{"events":5}`, `{"events":true}`,
	`{"events":[{"room_id":"!r:x","type":"t","sender":"@a:x"}]}`,
	`{"events":[{"event_id":"","room_id":"!r:x","type":"t","sender":"@a:x"}]}`,
	`{"events":[{"event_id":5,"room_id":"!r:x","type":"t","sender":"@a:x"}]}`,
	`{"events":[{"event_id":"` + strings.Repeat("x", 300) + `","room_id":"!r:x","type":"t","sender":"@a:x"}]}`,
	`{"events":[` + msgEvent("$a", "!r:x", "hi") + `,{}]}`,
	`{"ephemeral":[{"room_id":"!r:x"}]}`,
	` {"EVENTS":[{"Event_ID":"$a","ROOM_ID":"!r","Type":"t","sender":"@s","State_Key":null}]} `,
	`{"events":[{"event_id":"$a","room_id":"!r","type":"t","sender":"@s","event_id":null}]}`,
	`{"events":[{"event_id":"$\u0061\ud800","room_id":"!r\"","type":"t\u00e9","sender":"@s` + "\xff" + `"}]}`,
	`{"events":[{"event_id":"$a","room_id":"!r","type":"t","sender":"@s","state_key":""}],"events":null}`,
	`{"events":[{}],"events":[]}`, `{"events":[],"ephemeral":null,"de.sorunome.msc2409.ephemeral":[{"type":"x"}]}`,
	`{"ephemeral":[],"de.sorunome.msc2409.ephemeral":[{"type":"x"}]}`,
	`{"to_device":[{"type":"t","sender":"@a","to_user_id":"@b"},{"type":"t","sender":"@a"},5,{"type":[]}]}`,
	`{"device_lists":{"changed":["@a:x"],"left":[]},"device_one_time_keys_count":{"@a:x":{"D":{"signed_curve25519":5}}}}`,
	`{"org.matrix.msc3202.device_lists":{"changed":["@a:x"]},"org.matrix.msc3202.device_one_time_keys_count":{"@a:x":{"D":{}}}}`,
	`{"device_lists":{"changed":["@a:x"]},"device_lists":{"left":["@b"]}}`, `{"device_lists":{"changed":5}}`,
	`{"device_one_time_keys_count":[]}`, `{"events":{},"device_lists":[]}`, `{"device_lists":[],"events":{}}`,
	`{"events":[{"event_id":{},"room_id":[],"type":true}]}`, `{"events":[]} x`, `{"events":[]}}`, `{"events":[,]}`,
	`{"a":1,"b":[{"c":null}],"events":[{"event_id":"$a","room_id":"!r","type":"t","sender":"@s","content":{"x":[1,2,{"y":"z"}]}}]}`,
	"{\"events\":[{\"event_id\":\"$a\",\"room_id\":\"!r\",\"type\":\"t\",\"sender\":\"@s\"}\t\n]\v}\u00a0",
	`{"events":[{"event_id":"$a","room_id":"!r","type":"t","sender":"@s"}],"events":{}}`,
	`{"ev\u0065nts":[{"\u0065vent_id":"$a","room_id":"!r","type":"t","sender":"@s"}]}`,
	`{"events":[{"event_\u212a":"x","event_id":"$a","room_id":"!r","type":"t","sender":"@s"}]}`,
	`{"to_device":[{"type":"t","sender":"@a","to_user_id":"` + strings.Repeat("u", 256) + `"}]}`,
	`{"events":[{"event_id":"$a","room_id":"!r","type":"t","sender":"@s","content":{"a":1e999}}]}`,
}

// checkSameParse fails unless ParseTransaction and refParseTransaction agree on body.
func checkSameParse(t *testing.T, body []byte) {
	t.Helper()
	want, wantErr := refParseTransaction(body)
	got, gotErr := ParseTransaction(body)
	if fmt.Sprint(gotErr) != fmt.Sprint(wantErr) {
		t.Fatalf("body %q:\nerr  %v\nwant %v", body, gotErr, wantErr)
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("body %q:\ngot  %+v\nwant %+v", body, got, want)
	}
}

func TestParseTransactionMatchesReference(t *testing.T) {
	for i, s := range txnDiffSeeds {
		t.Run(fmt.Sprint(i), func(t *testing.T) { checkSameParse(t, []byte(s)) })
	}
	t.Run("bench body", func(t *testing.T) { checkSameParse(t, []byte(benchParseBody())) })
}

// FuzzParseTransactionDiff holds the single-pass parser to the encoding/json one it
// replaced: same acceptance, same Transaction, same error text.
func FuzzParseTransactionDiff(f *testing.F) {
	for _, s := range txnDiffSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) { checkSameParse(t, body) })
}

// benchParseBody is a transaction of 100 message events of about 400 bytes in 20 rooms.
func benchParseBody() string {
	evts := make([]string, 100)
	for i := range evts {
		evts[i] = fmt.Sprintf(`{"event_id":"$%043d","room_id":"!room%02d:example.org","type":"m.room.message",`+
			`"sender":"@user%d:example.org","origin_server_ts":1700000000%03d,"unsigned":{"age":%d},`+
			`"content":{"msgtype":"m.text","body":%q,"m.mentions":{}}}`,
			i, i%20, i%7, i, i*10, strings.Repeat("a message of a typical length ", 6))
	}
	return txnBody(evts...)
}

func BenchmarkParseTransaction(b *testing.B) {
	body := []byte(benchParseBody())
	for _, impl := range []struct {
		name  string
		parse func([]byte) (*Transaction, error)
	}{{"reference", refParseTransaction}, {"single-pass", ParseTransaction}} {
		b.Run(impl.name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(body)))
			for b.Loop() {
				if _, err := impl.parse(body); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*100), "ns/event")
		})
	}
}
