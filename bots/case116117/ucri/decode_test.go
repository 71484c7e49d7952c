package ucri

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/switchboard-matrix/switchboard/bots/case116117/ucri/spec"
)

// apiExample returns the example of a schema of the bundled UCRM Client API (for allOf
// schemas, the example of the second part), compacted.
func apiExample(tb testing.TB, name string) []byte {
	tb.Helper()
	b, err := spec.FS.ReadFile(spec.ClientAPI)
	if err != nil {
		tb.Fatal(err)
	}
	var api struct {
		Components struct {
			Schemas map[string]struct {
				Example json.RawMessage
				AllOf   []struct{ Example json.RawMessage }
			}
		}
	}
	if err := json.Unmarshal(b, &api); err != nil {
		tb.Fatal(err)
	}
	s := api.Components.Schemas[name]
	ex := s.Example
	for _, part := range s.AllOf {
		if part.Example != nil {
			ex = part.Example
		}
	}
	if ex == nil {
		tb.Fatalf("no example of %s", name)
	}
	var compact bytes.Buffer
	if err := json.Compact(&compact, ex); err != nil {
		tb.Fatal(err)
	}
	return compact.Bytes()
}

// receivedJSON is a valid received message with one field replaced (or removed, for "").
func receivedJSON(seq int, replace ...string) string {
	m := map[string]any{
		"messageId":   NewMessageID(),
		"sentDate":    "2023-11-13T20:20:39+00:00",
		"timeout":     300,
		"source":      "1.2.3.4.5.6",
		"destination": "1.2.3.4.5.7",
		"sequenceId":  seq,
		"payload": map[string]any{
			"appId": AppTransport, "appVersion": AppVersion, "schemaId": SchemaAvailability,
			"contentType": ContentTypeJSON, "data": `{"id":"1.2","status":"online"}`,
		},
	}
	for i := 0; i+1 < len(replace); i += 2 {
		if replace[i+1] == "" {
			delete(m, replace[i])
			continue
		}
		m[replace[i]] = json.RawMessage(replace[i+1])
	}
	b, err := json.Marshal(m)
	if err != nil {
		panic(err)
	}
	return string(b)
}

func batch(msgs ...string) []byte {
	return []byte(`{"maxMessages":5,"messages":[` + strings.Join(msgs, ",") + `]}`)
}

func TestDecodeReceiveResponseOfficialExample(t *testing.T) {
	r, rejects, err := DecodeReceiveResponse(apiExample(t, "receiverResponse"))
	if err != nil || len(rejects) != 0 {
		t.Fatal(err, rejects)
	}
	m := r.Messages[0]
	if r.MaxMessages != 5 || m.SequenceID != 123456 || m.Destination != "1.2.3.4.5.7" || m.Ack != AckNACK ||
		m.Payload.AppID != "incident_transfer" || !strings.HasPrefix(m.Signature, "eyJ0eXAiOiJVQ1JJX1BMQUlOIiwiYWxnIjoiUlMyNTYifQ.") {
		t.Errorf("decoded %+v", r)
	}
}

func TestDecodeReceiveResponse(t *testing.T) {
	tests := []struct {
		name    string
		body    []byte
		good    int
		rejects []int64 // sequenceIds of the rejected messages
		code    int     // of the batch error
		msg     string  // in the batch error, or in the first reject
	}{
		{"valid", batch(receivedJSON(1), receivedJSON(2)), 2, nil, 0, ""},
		{"bad message id", batch(receivedJSON(1), receivedJSON(2, "messageId", `"abc"`)), 1, []int64{2}, 0, "/messages/1/messageId: not a UUID"},
		{"bad source", batch(receivedJSON(1, "source", `"x"`)), 0, []int64{1}, 0, "/messages/0/source: does not match pattern"},
		{"missing payload", batch(receivedJSON(7, "payload", "")), 0, []int64{7}, 0, `/messages/0: missing property "payload"`},
		{"bad content type", batch(receivedJSON(1, "payload", `{"appId":"a","appVersion":"1","schemaId":"s","contentType":"x","data":""}`)), 0, []int64{1}, 0,
			"/messages/0/payload/contentType: value must be one of"},
		{"timeout out of range", batch(receivedJSON(1, "timeout", `5`), receivedJSON(2)), 1, []int64{1}, 0, "/messages/0/timeout: must be ≥ 10"},
		{"several bad", batch(receivedJSON(1, "ack", `"SOME"`), receivedJSON(2), receivedJSON(3, "sentDate", "")), 1, []int64{1, 3}, 0, "/messages/0/ack"},
		{"unknown fields are allowed", batch(receivedJSON(1, "x-vendor", `{"a":1}`)), 1, nil, 0, ""},
		{"case variant of messages", []byte(`{"maxMessages":5,"messages":[` + receivedJSON(1) + `],"Messages":[1,2,3]}`), 1, nil, 0, ""},
		{"unreadable sequenceId", batch(receivedJSON(1), receivedJSON(2, "sequenceId", `"2"`)), 0, nil, CodeInvalidTransport,
			"/messages/1/sequenceId: got string, want integer"},
		{"negative sequenceId", batch(receivedJSON(-1)), 0, nil, CodeInvalidTransport, "/messages/0/sequenceId: must be ≥ 0"},
		{"sequenceId beyond int64", batch(strings.Replace(receivedJSON(1), `"sequenceId":1`, `"sequenceId":1e30`, 1)), 0, nil, CodeInvalidTransport,
			"/messages/0/sequenceId: value out of range"},
		{"timeout written as float", batch(receivedJSON(1, "timeout", "300.0"), receivedJSON(2)), 1, []int64{1}, 0, "/messages/0/timeout: value out of range"},
		{"huge exponent", batch(receivedJSON(1, "timeout", "1e999999999")), 0, nil, CodeInvalidTransport, "/messages/0/timeout: number out of range"},
		{"unreadable destination", batch(receivedJSON(1, "destination", `"x"`)), 0, nil, CodeInvalidTransport, "/messages/0/destination"},
		{"message not an object", batch(`7`), 0, nil, CodeInvalidTransport, "/messages/0: got number, want object"},
		{"no messages", []byte(`{"maxMessages":5,"messages":[]}`), 0, nil, CodeInvalidTransport, "/messages: 0 items"},
		{"no maxMessages", []byte(`{"messages":[` + receivedJSON(1) + `]}`), 0, nil, CodeInvalidTransport, `(root): missing property "maxMessages"`},
		{"maxMessages beyond int", []byte(`{"maxMessages":1e30,"messages":[` + receivedJSON(1) + `]}`), 0, nil, CodeInvalidTransport, "/maxMessages"},
		{"not JSON", []byte(`{"messages":`), 0, nil, CodeInvalidTransport, "not JSON"},
		{"too big", make([]byte, MaxBodyBytes+1), 0, nil, CodeInvalidTransport, "exceeds"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, rejects, err := DecodeReceiveResponse(tt.body)
			if tt.code != 0 {
				wantCode(t, err, tt.code, tt.msg)
				if r != nil || rejects != nil {
					t.Errorf("batch error with results %v, %v", r, rejects)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(r.Messages) != tt.good {
				t.Errorf("%d good messages, want %d", len(r.Messages), tt.good)
			}
			for _, m := range r.Messages {
				if err := m.Check(); err != nil {
					t.Errorf("accepted message fails Check: %v", err)
				}
			}
			var seqs []int64
			for _, rj := range rejects {
				seqs = append(seqs, rj.SequenceID)
				if rj.Destination != "1.2.3.4.5.7" || rj.Err == nil || rj.Err.Code != CodeInvalidTransport {
					t.Errorf("reject %+v", rj)
				}
				if !errors.Is(rj, rj.Err) {
					t.Error("MessageError does not unwrap to its *Error")
				}
			}
			if !equalInts(seqs, tt.rejects) {
				t.Errorf("rejected sequenceIds %v, want %v", seqs, tt.rejects)
			}
			if tt.msg != "" && !strings.Contains(rejects[0].Err.Message, tt.msg) {
				t.Errorf("reject message %q, want %q", rejects[0].Err.Message, tt.msg)
			}
		})
	}
}

func equalInts(a, b []int64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestMessageErrorKeepsIDs(t *testing.T) {
	id := NewMessageID()
	_, rejects, err := DecodeReceiveResponse(batch(receivedJSON(9, "messageId", `"`+id+`"`, "timeout", "1")))
	if err != nil || len(rejects) != 1 {
		t.Fatal(err, rejects)
	}
	rj := rejects[0]
	if rj.Index != 0 || rj.MessageID != id || rj.SequenceID != 9 {
		t.Errorf("reject %+v", rj)
	}
	if s := rj.Error(); !strings.Contains(s, "sequenceId 9") || !strings.Contains(s, "/messages/0/timeout") {
		t.Errorf("Error() = %s", s)
	}
}

func TestReceivedMessageCheck(t *testing.T) {
	valid := func() ReceivedMessage {
		return ReceivedMessage{
			Envelope: Envelope{MessageID: NewMessageID(), SentDate: "2024-01-01T10:05:08Z", Timeout: 300, Source: "1.2.3",
				Payload: Payload{AppID: AppTransport, AppVersion: AppVersion, SchemaID: SchemaAvailability, ContentType: ContentTypeJSON, Data: "{}"}},
			Destination: "1.2.4",
			SequenceID:  0,
		}
	}
	tests := []struct {
		name   string
		change func(*ReceivedMessage)
		msg    string
	}{
		{"valid", func(*ReceivedMessage) {}, ""},
		{"ack", func(m *ReceivedMessage) { m.Ack = AckAll }, ""},
		{"message id", func(m *ReceivedMessage) { m.MessageID = "" }, "/messageId: not a UUID"},
		{"source", func(m *ReceivedMessage) { m.Source = "1..2" }, "/source: not an OID"},
		{"destination", func(m *ReceivedMessage) { m.Destination = "a" }, "/destination: not an OID"},
		{"sequence id", func(m *ReceivedMessage) { m.SequenceID = -1 }, "/sequenceId: must be ≥ 0"},
		{"sent date", func(m *ReceivedMessage) { m.SentDate = "" }, "/sentDate: missing"},
		{"timeout", func(m *ReceivedMessage) { m.Timeout = 86401 }, "/timeout: must be 10 to 86400"},
		{"unknown ack", func(m *ReceivedMessage) { m.Ack = "all" }, "/ack"},
		{"content type", func(m *ReceivedMessage) { m.Payload.ContentType = "" }, "/payload/contentType"},
		{"app id", func(m *ReceivedMessage) { m.Payload.AppID = "" }, "/payload/appId: empty"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := valid()
			tt.change(&m)
			err := m.Check()
			if tt.msg == "" {
				wantCode(t, err, 0, "")
				return
			}
			wantCode(t, err, CodeInvalidTransport, tt.msg)
		})
	}
}

func TestDecodeSendResponse(t *testing.T) {
	ex := string(apiExample(t, "senderResponse"))
	tests := []struct {
		name string
		body string
		code int
		msg  string
	}{
		{"official example", ex, 0, ""},
		{"message id", strings.Replace(ex, "f8c3de3d-1fea-4d7c-a8b0-29f63c4c3454", "1", 1), CodeInvalidTransport, "/messageId: not a UUID"},
		{"two destinations", strings.Replace(ex, `["1.2.3.4.5.7"]`, `["1.2.3.4.5.7","1.2"]`, 1), CodeInvalidTransport, "/destinations: 2 items, want at most 1"},
		{"no ack", strings.Replace(ex, `"ack":"NACK",`, ``, 1), CodeInvalidTransport, `missing property "ack"`},
		{"not an object", `"x"`, CodeInvalidTransport, "got string, want object"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := DecodeSendResponse([]byte(tt.body))
			wantCode(t, err, tt.code, tt.msg)
			if tt.code == 0 && (r.MessageID != "f8c3de3d-1fea-4d7c-a8b0-29f63c4c3454" || r.Destinations[0] != "1.2.3.4.5.7" || r.Timeout != 300) {
				t.Errorf("decoded %+v", r)
			}
		})
	}
}

// The official commParticipant example has status "off", which its own schema does not
// allow; DecodeParticipant rejects it, DecodeRegistry leaves it out.
func TestDecodeParticipantAndRegistry(t *testing.T) {
	ex := string(apiExample(t, "commParticipant"))
	fixed := strings.Replace(ex, `"status":"off"`, `"status":"offline"`, 1)

	_, err := DecodeParticipant([]byte(ex))
	wantCode(t, err, CodeInvalidTransport, `/status: value must be one of "online", "offline", "unknown"`)
	p, err := DecodeParticipant([]byte(fixed))
	if err != nil {
		t.Fatal(err)
	}
	if p.ID != "1.2.3.1.276.5.1.58.28.2.1" || p.Key == nil || p.Key.E != "AQAB" || p.TechSupport.Email != "abc@lst-essen.de" || len(p.SupportedApps) != 2 {
		t.Errorf("decoded %+v", p)
	}

	tests := []struct {
		name  string
		body  string
		count int // valid entries returned; -1: nil
		code  int
		msg   string
	}{
		{"valid", `{"commParticipants":[` + fixed + `,` + fixed + `]}`, 2, 0, ""},
		{"empty", `{"commParticipants":[]}`, 0, 0, ""},
		{"one invalid", `{"commParticipants":[` + ex + `,` + fixed + `]}`, 1, CodeInvalidTransport, "invalid entries left out: 1: /commParticipants/0/status"},
		{"entry not an object", `{"commParticipants":[1,` + fixed + `]}`, 1, CodeInvalidTransport, "/commParticipants/0: got number, want object"},
		{"no list", `{}`, -1, CodeInvalidTransport, `missing property "commParticipants"`},
		{"list not an array", `{"commParticipants":{}}`, -1, CodeInvalidTransport, "/commParticipants: got object, want array"},
		{"not JSON", `{`, -1, CodeInvalidTransport, "not JSON"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ps, err := DecodeRegistry([]byte(tt.body))
			wantCode(t, err, tt.code, tt.msg)
			if tt.count == -1 {
				if ps != nil {
					t.Errorf("entries %v with a batch error", ps)
				}
			} else if len(ps) != tt.count {
				t.Errorf("%d entries, want %d", len(ps), tt.count)
			}
		})
	}
}

func TestDecodeInfoAndError(t *testing.T) {
	info, err := DecodeInfo(apiExample(t, "info"))
	if err != nil || info.UCRMProvider != "ACME AG" || info.Status != 1 {
		t.Errorf("DecodeInfo = %+v, %v", info, err)
	}
	_, err = DecodeInfo([]byte(`{"apiVersion":"1","ucrmProvider":"a","ucrmProductName":"b","ucrmVersion":"c","status":3}`))
	wantCode(t, err, CodeInvalidTransport, "/status: value must be one of 0, 1, 2")

	ue, err := DecodeError([]byte(`{"code":479,"reason":"invalid signature","message":"digest"}`))
	if err != nil || ue.Code != CodeWrongSignature || ue.Reason != "invalid signature" || ue.Message != "digest" {
		t.Errorf("DecodeError = %+v, %v", ue, err)
	}
	_, err = DecodeError([]byte(`{"code":401,"reason":"unauthorized"}`))
	wantCode(t, err, CodeInvalidTransport, "/code: value must be one of")
	_, err = DecodeError([]byte(`<html>`))
	wantCode(t, err, CodeInvalidTransport, "not JSON")
}
