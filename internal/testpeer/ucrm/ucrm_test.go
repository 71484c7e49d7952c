package ucrm

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"math/big"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/santhosh-tekuri/jsonschema/v6"
)

const (
	oidA = "1.2.276.0.58.1.1" // signs
	oidB = "1.2.276.0.58.1.2" // signs
	oidC = "1.2.276.0.58.1.3" // has no key, transmits unsigned
)

var testKeys = sync.OnceValue(func() []*rsa.PrivateKey {
	keys := make([]*rsa.PrivateKey, 3)
	for i := range keys {
		k, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			panic(err)
		}
		keys[i] = k
	}
	return keys
})

// fixture is a running server with participants A, B (signing) and C (unsigned).
type fixture struct {
	s       *Server
	a, b, c *Peer
	keyA    *rsa.PrivateKey
	keyB    *rsa.PrivateKey
	other   *rsa.PrivateKey // nobody's key
}

func newFixture(t *testing.T, opts Options) *fixture {
	t.Helper()
	keys := testKeys()
	if opts.Logf == nil {
		opts.Logf = t.Logf
	}
	s := New(opts)
	s.AddParticipant(Participant{OID: oidA, Username: "a", Password: "pa", Key: &keys[0].PublicKey})
	s.AddParticipant(Participant{OID: oidB, Username: "b", Password: "pb", Key: &keys[1].PublicKey})
	s.AddParticipant(Participant{OID: oidC, Username: "c", Password: "pc", TransmitsUnsigned: true})
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return &fixture{
		s: s, a: s.Peer(oidA, keys[0]), b: s.Peer(oidB, keys[1]), c: s.Peer(oidC, nil),
		keyA: keys[0], keyB: keys[1], other: keys[2],
	}
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	t.Cleanup(cancel)
	return c
}

// ack is a valid acknowledgement of incident_transfer_with_patient 1.0.
func ack() map[string]any {
	return map[string]any{
		"sharedIncidentId":           "550e8400-e29b-41d4-a716-446655440000",
		"acknowledgedByDispatcherAt": "2024-01-01T10:06:09Z",
		"status":                     "accepted",
	}
}

func mustSchema(t *testing.T, pointer string) *jsonschema.Schema {
	t.Helper()
	sch, err := CompileAPISchema(pointer)
	if err != nil {
		t.Fatal(err)
	}
	return sch
}

func validate(t *testing.T, sch *jsonschema.Schema, body []byte) {
	t.Helper()
	doc, err := decodeJSON(body)
	if err != nil {
		t.Fatalf("answer is not JSON: %v: %s", err, body)
	}
	if err := sch.Validate(doc); err != nil {
		t.Fatalf("answer does not match the specification: %s\n%s", describe(err), body)
	}
}

func parse(t *testing.T, raw json.RawMessage) Message {
	t.Helper()
	m, err := ParseMessage(raw)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func TestToken(t *testing.T) {
	f := newFixture(t, Options{TokenTTL: time.Minute})
	tests := []struct {
		name, user, pass string
		basic            bool
		wantStatus       int
	}{
		{"ok", "a", "pa", true, http.StatusOK},
		{"wrong password", "a", "nope", true, http.StatusUnauthorized},
		{"unknown user", "zz", "pa", true, http.StatusUnauthorized},
		{"no credentials", "", "", false, http.StatusUnauthorized},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, _ := http.NewRequestWithContext(ctx(t), http.MethodGet, f.s.URL()+"/token", nil)
			if tt.basic {
				req.SetBasicAuth(tt.user, tt.pass)
			}
			status, body, err := f.a.roundTrip(req)
			if err != nil {
				t.Fatal(err)
			}
			if status != tt.wantStatus {
				t.Fatalf("status %d, want %d: %s", status, tt.wantStatus, body)
			}
			if status != http.StatusOK {
				var e Error
				if json.Unmarshal(body, &e); e.Code != CodeUnauthorized {
					t.Fatalf("code %d, want 475: %s", e.Code, body)
				}
				validate(t, mustSchema(t, "#/components/schemas/Error"), body)
				return
			}
			var tok struct{ Token string }
			_ = json.Unmarshal(body, &tok)
			parts := strings.Split(tok.Token, ".")
			if len(parts) != 3 {
				t.Fatalf("token %q is not a JWS", tok.Token)
			}
			hdr, _ := base64.RawURLEncoding.DecodeString(parts[0])
			claimsJSON, _ := base64.RawURLEncoding.DecodeString(parts[1])
			var claims struct {
				Sub      string
				Iat, Exp int64
			}
			_ = json.Unmarshal(claimsJSON, &claims)
			if !strings.Contains(string(hdr), `"HS256"`) || claims.Sub != oidA || claims.Exp-claims.Iat != 60 {
				t.Fatalf("header %s claims %s", hdr, claimsJSON)
			}
		})
	}
}

func TestBearerAuth(t *testing.T) {
	now := time.Now()
	var clockMu sync.Mutex
	clock := func() time.Time { clockMu.Lock(); defer clockMu.Unlock(); return now }
	f := newFixture(t, Options{Now: clock, TokenTTL: time.Minute})
	tok, err := f.a.Token(ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		header func() string // called after before
		before func()
	}{
		{"no header", func() string { return "" }, nil},
		{"garbled", func() string { return "Bearer not.a.token" }, nil},
		{"basic instead of bearer", func() string { return "Basic YTpwYQ==" }, nil},
		{"expired by ExpireTokens", func() string { return "Bearer " + tok }, f.s.ExpireTokens},
		{"expired by TTL", func() string { return "Bearer " + tok }, func() {
			tok, _ = f.a.Token(ctx(t))
			clockMu.Lock()
			now = now.Add(2 * time.Minute)
			clockMu.Unlock()
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.before != nil {
				tt.before()
			}
			h := tt.header()
			req, _ := http.NewRequestWithContext(ctx(t), http.MethodGet, f.s.URL()+"/info", nil)
			if h != "" {
				req.Header.Set("Authorization", h)
			}
			status, body, err := f.a.roundTrip(req)
			if err != nil {
				t.Fatal(err)
			}
			var e Error
			_ = json.Unmarshal(body, &e)
			if status != http.StatusUnauthorized || e.Code != CodeUnauthorized {
				t.Fatalf("status %d code %d, want 401 475: %s", status, e.Code, body)
			}
		})
	}
	t.Run("peer renews its token", func(t *testing.T) {
		before := f.s.Requests("/token")
		f.s.ExpireTokens()
		status, body, err := f.a.Do(ctx(t), http.MethodGet, "/info", nil)
		if err != nil || status != http.StatusOK {
			t.Fatalf("status %d err %v: %s", status, err, body)
		}
		if got := f.s.Requests("/token") - before; got != 1 {
			t.Fatalf("%d token requests, want 1", got)
		}
	})
}

func TestSendReceiveCommit(t *testing.T) {
	f := newFixture(t, Options{})
	c := ctx(t)
	id, err := f.a.Send(c, oidB, AppIncident, "acknowledgement", ack(), "")
	if err != nil {
		t.Fatal(err)
	}
	sent := f.s.Sent(oidA)
	if len(sent) != 1 {
		t.Fatalf("Sent(A) has %d entries", len(sent))
	}
	validate(t, mustSchema(t, "#/components/schemas/SenderResponse"), sent[0])
	resp := parse(t, sent[0])
	if resp.MessageID != id || resp.Ack != "NONE" || resp.Envelope["timeout"] != json.Number("3600") || resp.Envelope["sentDate"] == nil {
		t.Fatalf("stored send request %s", sent[0])
	}

	itemSchema := mustSchema(t, "#/components/schemas/ReceiverResponse")
	var first []byte
	for i := range 2 { // uncommitted messages are delivered again
		status, body, err := f.b.Do(c, http.MethodPost, "/messaging/receive", map[string]any{"destinations": []string{oidB}, "maxDelay": 0})
		if err != nil || status != http.StatusOK {
			t.Fatalf("receive %d: status %d err %v: %s", i, status, err, body)
		}
		validate(t, itemSchema, body)
		if i == 1 && string(body) != string(first) {
			t.Fatalf("redelivery differs:\n%s\n%s", first, body)
		}
		first = body
	}
	msgs, err := f.b.Fetch(c, 0)
	if err != nil || len(msgs) != 1 {
		t.Fatalf("fetch: %d messages, %v", len(msgs), err)
	}
	m := parse(t, msgs[0])
	if m.MessageID != id || m.Source != oidA || m.Destination != oidB || m.SequenceID != 1 || m.SchemaID != "acknowledgement" {
		t.Fatalf("received %s", msgs[0])
	}
	if _, ok := m.Envelope["destinations"]; ok {
		t.Fatalf("a received item holds destinations: %s", msgs[0])
	}
	if err := VerifySignature(m.Envelope, m.Destination, &f.keyA.PublicKey); err != nil {
		t.Fatalf("signature does not verify after routing: %v", err)
	}
	if err := f.b.Commit(c, m.SequenceID); err != nil {
		t.Fatal(err)
	}
	if q, cm := f.s.Queue(oidB), f.s.Committed(oidB); q != 0 || cm != 1 {
		t.Fatalf("after commit: queue %d committed %d", q, cm)
	}
	if msgs, err := f.b.Fetch(c, 0); err != nil || msgs != nil {
		t.Fatalf("after commit: %d messages, %v", len(msgs), err)
	}
	if got := f.s.Queue(oidA); got != 0 {
		t.Fatalf("ack NONE caused %d messages to the sender", got)
	}

	t.Run("sequence ids increase and commit removes up to one", func(t *testing.T) {
		for range 3 {
			if _, err := f.c.Send(c, oidB, AppIncident, "acknowledgement", ack(), ""); err != nil {
				t.Fatal(err)
			}
		}
		msgs, _ := f.b.Fetch(c, 0)
		if len(msgs) != 3 || parse(t, msgs[0]).SequenceID != 2 || parse(t, msgs[2]).SequenceID != 4 {
			t.Fatalf("got %d messages: %s", len(msgs), msgs)
		}
		_, body, _ := f.b.Do(c, http.MethodPost, "/messaging/receive", map[string]any{"destinations": []string{oidB}, "maxMessages": 2})
		var resp struct {
			Messages    []json.RawMessage
			MaxMessages int
		}
		if json.Unmarshal(body, &resp); len(resp.Messages) != 2 || resp.MaxMessages != 2 || parse(t, resp.Messages[0]).SequenceID != 2 {
			t.Fatalf("maxMessages 2: %s", body)
		}
		if err := f.b.Commit(c, 3); err != nil {
			t.Fatal(err)
		}
		msgs, _ = f.b.Fetch(c, 0)
		if len(msgs) != 1 || parse(t, msgs[0]).SequenceID != 4 {
			t.Fatalf("after commit 3: %s", msgs)
		}
	})
}

func TestIdempotentResend(t *testing.T) {
	f := newFixture(t, Options{})
	c := ctx(t)
	env, err := f.a.Envelope(oidB, AppIncident, "acknowledgement", ack(), "ALL")
	if err != nil {
		t.Fatal(err)
	}
	r1, err := f.a.SendEnvelope(c, env)
	if err != nil {
		t.Fatal(err)
	}
	r2, err := f.a.SendEnvelope(c, env)
	if err != nil {
		t.Fatal(err)
	}
	if string(r1) != string(r2) {
		t.Fatalf("resend answered differently:\n%s\n%s", r1, r2)
	}
	if n, q := len(f.s.Sent(oidA)), f.s.Queue(oidB); n != 1 || q != 1 {
		t.Fatalf("Sent %d, queued %d; want 1, 1", n, q)
	}

	t.Run("generated messageId", func(t *testing.T) {
		env, _ := f.c.Envelope(oidB, AppIncident, "acknowledgement", ack(), "")
		delete(env, "messageId")
		body, err := f.c.SendEnvelope(c, env)
		if err != nil {
			t.Fatal(err)
		}
		if id := parse(t, body).MessageID; len(id) != 36 || id[14] != '4' {
			t.Fatalf("generated messageId %q is not a UUIDv4", id)
		}
	})
}

// deliveryStatus receives the only message in p's queue, checks that it is a delivery
// status of the UCRM and returns its data.
func deliveryStatus(t *testing.T, f *fixture, p *Peer) map[string]any {
	t.Helper()
	msgs, err := p.Receive(ctx(t), 0)
	if err != nil || len(msgs) != 1 {
		t.Fatalf("%s: %d messages, %v", p.OID(), len(msgs), err)
	}
	m := parse(t, msgs[0])
	if m.Source != f.s.OID() || m.AppID != AppTransport || m.SchemaID != "message_delivery_status" || m.Signature != "" {
		t.Fatalf("not an unsigned delivery status of the UCRM: %s", msgs[0])
	}
	sch, _ := loadSchemas()
	data, _ := decodeJSON(m.Data)
	if err := sch.apps[AppTransport][AppVersion]["message_delivery_status"].Validate(data); err != nil {
		t.Fatalf("delivery status does not match its schema: %s: %s", describe(err), m.Data)
	}
	return data.(map[string]any)
}

func TestDeliveryStatus(t *testing.T) {
	t.Run("ack ALL gives 200 after commit", func(t *testing.T) {
		f := newFixture(t, Options{})
		c := ctx(t)
		id, err := f.a.Send(c, oidB, AppIncident, "acknowledgement", ack(), "ALL")
		if err != nil {
			t.Fatal(err)
		}
		if n := f.s.Queue(oidA); n != 0 {
			t.Fatalf("status before commit (%d queued)", n)
		}
		if _, err := f.b.Receive(c, 0); err != nil {
			t.Fatal(err)
		}
		st := deliveryStatus(t, f, f.a)
		if st["statusCode"] != json.Number("200") || st["refMessageId"] != id || st["destination"] != oidB {
			t.Fatalf("status %v", st)
		}
		if f.s.Queue(oidA)+f.s.Queue(oidB)+f.s.Queue(f.s.OID()) != 0 {
			t.Fatal("committing a delivery status caused another message")
		}
	})
	tests := []struct {
		name   string
		ack    string
		want   bool
		expire func(f *fixture, advance func())
	}{
		{"ExpireNow NACK", "NACK", true, func(f *fixture, _ func()) { f.s.ExpireNow() }},
		{"ExpireNow ALL", "ALL", true, func(f *fixture, _ func()) { f.s.ExpireNow() }},
		{"ExpireNow NONE", "NONE", false, func(f *fixture, _ func()) { f.s.ExpireNow() }},
		{"ticker after timeout", "NACK", true, func(f *fixture, advance func()) {
			advance()
			for deadline := time.Now().Add(5 * time.Second); f.s.Queue(oidB) != 0; time.Sleep(5 * time.Millisecond) {
				if time.Now().After(deadline) {
					t.Fatal("the message did not time out")
				}
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var mu sync.Mutex
			now := time.Now()
			clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
			advance := func() { mu.Lock(); now = now.Add(11 * time.Second); mu.Unlock() }
			f := newFixture(t, Options{Now: clock, DeliveryTimeoutTick: 5 * time.Millisecond})
			env, _ := f.a.Envelope(oidB, AppIncident, "acknowledgement", ack(), tt.ack)
			env["timeout"] = 10
			if _, err := f.a.SendEnvelope(ctx(t), env); err != nil {
				t.Fatal(err)
			}
			tt.expire(f, advance)
			if n := f.s.Queue(oidB); n != 0 {
				t.Fatalf("%d messages left for B", n)
			}
			if !tt.want {
				if n := f.s.Queue(oidA); n != 0 {
					t.Fatalf("ack NONE gave %d statuses", n)
				}
				return
			}
			st := deliveryStatus(t, f, f.a)
			msg, _ := st["statusMessage"].(string)
			if st["statusCode"] != json.Number("504") || st["refMessageId"] != env["messageId"] || msg == "" || utf8.RuneCountInString(msg) > 100 {
				t.Fatalf("status %v", st)
			}
		})
	}
}

func TestErrors(t *testing.T) {
	f := newFixture(t, Options{})
	errSchema := mustSchema(t, "#/components/schemas/Error")
	// env returns a signed envelope from A to B after edit, signed after edit if resign.
	env := func(edit func(map[string]any), resign bool) map[string]any {
		e, err := f.a.Envelope(oidB, AppIncident, "acknowledgement", ack(), "")
		if err != nil {
			t.Fatal(err)
		}
		if edit != nil {
			edit(e)
		}
		if resign {
			sig, err := SignEnvelope(e, oidB, f.keyA)
			if err != nil {
				t.Fatal(err)
			}
			e["signature"] = sig
		}
		return e
	}
	payload := func(key string, v any) func(map[string]any) {
		return func(e map[string]any) { e["payload"].(map[string]any)[key] = v }
	}
	tests := []struct {
		name     string
		peer     *Peer
		path     string
		body     any
		wantCode int
		wantMsg  string
	}{
		{"460 not JSON", f.a, "/messaging/send", []byte("{"), CodeInvalidRequest, "not JSON"},
		{"460 bad ack", f.a, "/messaging/send", env(func(e map[string]any) { e["ack"] = "SOME" }, true), CodeInvalidRequest, "/ack"},
		{"460 two destinations", f.a, "/messaging/send", env(func(e map[string]any) { e["destinations"] = []string{oidB, oidC} }, true), CodeInvalidRequest, "/destinations"},
		{"460 timeout too small", f.a, "/messaging/send", env(func(e map[string]any) { e["timeout"] = 5 }, true), CodeInvalidRequest, "/timeout"},
		{"460 messageId not a uuid", f.a, "/messaging/send", env(func(e map[string]any) { e["messageId"] = "m-1" }, true), CodeInvalidRequest, "/messageId"},
		{"460 missing payload", f.a, "/messaging/send", env(func(e map[string]any) { delete(e, "payload") }, false), CodeInvalidRequest, "payload"},
		{"460 receive maxDelay too large", f.b, "/messaging/receive", map[string]any{"destinations": []string{oidB}, "maxDelay": 31}, CodeInvalidRequest, "/maxDelay"},
		{"460 commit without sequenceId", f.b, "/messaging/commit", map[string]any{"destination": oidB}, CodeInvalidRequest, "sequenceId"},
		{"461 unknown app", f.a, "/messaging/send", env(payload("appId", "incident_transfer"), true), CodeUnknownAppID, "incident_transfer"},
		{"462 unknown version", f.a, "/messaging/send", env(payload("appVersion", "0.1"), true), CodeUnknownAppVersion, "0.1"},
		{"463 unknown schema", f.a, "/messaging/send", env(payload("schemaId", "transfer"), true), CodeUnknownSchemaID, "transfer"},
		{"464 data misses a field", f.a, "/messaging/send", env(payload("data", `{"status":"accepted"}`), true), CodeInvalidPayload, "sharedIncidentId"},
		{"464 data with a bad date-time", f.a, "/messaging/send", env(payload("data", `{"sharedIncidentId":"550e8400-e29b-41d4-a716-446655440000","acknowledgedByDispatcherAt":"2024-01-01T10:06:09","status":"accepted"}`), true), CodeInvalidPayload, "/acknowledgedByDispatcherAt"},
		{"465 data not JSON", f.a, "/messaging/send", env(payload("data", `{"status":`), true), CodeInvalidJSON, "not JSON"},
		{"467 transport app", f.a, "/messaging/send", env(func(e map[string]any) {
			p := e["payload"].(map[string]any)
			p["appId"], p["schemaId"], p["data"] = AppTransport, "participant_availability_update", `{"id":"1.2","status":"online"}`
		}, true), CodeForbiddenAppID, AppTransport},
		{"470 unknown destination", f.a, "/messaging/send", env(func(e map[string]any) { e["destinations"] = []string{"9.9.9"} }, true), CodeUnknownDestination, "9.9.9"},
		{"478 foreign source", f.c, "/messaging/send", env(nil, false), CodeOIDForbidden, oidA},
		{"478 receive for another", f.c, "/messaging/receive", map[string]any{"destinations": []string{oidB}}, CodeOIDForbidden, oidB},
		{"478 commit for another", f.c, "/messaging/commit", map[string]any{"destination": oidB, "sequenceId": 1}, CodeOIDForbidden, oidB},
		{"479 no signature", f.a, "/messaging/send", env(func(e map[string]any) { delete(e, "signature") }, false), CodeWrongSignature, "no signature"},
		{"479 signed without messageId", f.a, "/messaging/send", env(func(e map[string]any) { delete(e, "messageId") }, false), CodeWrongSignature, "messageId"},
		{"479 data changed after signing", f.a, "/messaging/send", env(payload("data", `{"sharedIncidentId":"550e8400-e29b-41d4-a716-446655440000","acknowledgedByDispatcherAt":"2024-01-01T10:06:09Z","status":"rejected"}`), false), CodeWrongSignature, "digest"},
		{"479 signed for another destination", f.a, "/messaging/send", env(func(e map[string]any) {
			e["signature"], _ = SignEnvelope(e, oidC, f.keyA)
		}, false), CodeWrongSignature, "digest"},
		{"479 signed by another key", f.a, "/messaging/send", env(func(e map[string]any) {
			e["signature"], _ = SignEnvelope(e, oidB, f.other)
		}, false), CodeWrongSignature, "verify"},
		{"479 garbage signature", f.a, "/messaging/send", env(func(e map[string]any) { e["signature"] = "x.y.z" }, false), CodeWrongSignature, "JWS"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, body, err := tt.peer.Do(ctx(t), http.MethodPost, tt.path, tt.body)
			if err != nil {
				t.Fatal(err)
			}
			var e Error
			_ = json.Unmarshal(body, &e)
			if status != http.StatusBadRequest || e.Code != tt.wantCode || !strings.Contains(e.Message, tt.wantMsg) {
				t.Fatalf("status %d code %d, want 400 %d with %q: %s", status, e.Code, tt.wantCode, tt.wantMsg, body)
			}
			validate(t, errSchema, body)
		})
	}
	if n := len(f.s.Sent(oidA)) + len(f.s.Sent(oidC)) + f.s.Queue(oidB); n != 0 {
		t.Fatalf("rejected requests were recorded or queued (%d)", n)
	}
	t.Run("unsigned participant may send unsigned", func(t *testing.T) {
		if _, err := f.c.Send(ctx(t), oidB, AppIncident, "acknowledgement", ack(), ""); err != nil {
			t.Fatal(err)
		}
	})
}

func TestLongPoll(t *testing.T) {
	f := newFixture(t, Options{})
	t.Run("204 after maxDelay", func(t *testing.T) {
		start := time.Now()
		msgs, err := f.b.Fetch(ctx(t), time.Second)
		if err != nil || msgs != nil {
			t.Fatalf("%d messages, %v", len(msgs), err)
		}
		if d := time.Since(start); d < 900*time.Millisecond || d > 3*time.Second {
			t.Fatalf("answered after %v, want about 1 s", d)
		}
	})
	t.Run("wakes on a send", func(t *testing.T) {
		done := make(chan []json.RawMessage, 1)
		go func() {
			msgs, _ := f.b.Fetch(ctx(t), 10*time.Second)
			done <- msgs
		}()
		time.Sleep(100 * time.Millisecond)
		start := time.Now()
		if _, err := f.a.Send(ctx(t), oidB, AppIncident, "acknowledgement", ack(), ""); err != nil {
			t.Fatal(err)
		}
		select {
		case msgs := <-done:
			if len(msgs) != 1 {
				t.Fatalf("woke with %d messages", len(msgs))
			}
		case <-time.After(3 * time.Second):
			t.Fatal("the long-poll did not wake")
		}
		if d := time.Since(start); d > time.Second {
			t.Fatalf("woke after %v", d)
		}
	})
	t.Run("ends when the client goes away", func(t *testing.T) {
		c, cancel := context.WithTimeout(t.Context(), 200*time.Millisecond)
		defer cancel()
		if _, err := f.c.Fetch(c, 30*time.Second); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("err %v", err)
		}
	})
}

func TestStopRestart(t *testing.T) {
	f := newFixture(t, Options{})
	c := ctx(t)
	url := f.s.URL()
	if _, err := f.a.Send(c, oidB, AppIncident, "acknowledgement", ack(), ""); err != nil {
		t.Fatal(err)
	}
	if _, err := f.b.Token(c); err != nil {
		t.Fatal(err)
	}
	errc := make(chan error, 1)
	go func() {
		_, err := f.c.Fetch(c, 30*time.Second)
		errc <- err
	}()
	time.Sleep(100 * time.Millisecond)
	start := time.Now()
	f.s.Stop()
	select {
	case err := <-errc:
		if err == nil {
			t.Fatal("a long-poll ended by Stop returned no error")
		}
	case <-time.After(3 * time.Second):
		t.Fatal("Stop did not end the long-poll")
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("Stop took %v", d)
	}
	if _, err := f.b.Fetch(c, 0); err == nil {
		t.Fatal("a request while stopped succeeded")
	}
	tokens := f.s.Requests("/token")
	if err := f.s.Restart(); err != nil {
		t.Fatal(err)
	}
	if f.s.URL() != url {
		t.Fatalf("address changed: %s → %s", url, f.s.URL())
	}
	msgs, err := f.b.Receive(c, 0)
	if err != nil || len(msgs) != 1 || parse(t, msgs[0]).SequenceID != 1 {
		t.Fatalf("after restart: %d messages, %v", len(msgs), err)
	}
	if got := f.s.Requests("/token"); got != tokens {
		t.Fatalf("tokens were not kept across the restart (%d → %d token requests)", tokens, got)
	}
	if err := f.s.Start(); err == nil {
		t.Fatal("Start on a running server succeeded")
	}
}

// TestRestartFresh: a restart that loses the in-memory state, like the reference UCRM's,
// empties the queues and numbers sequenceIds from 1 again; tokens are renewed on 401.
func TestRestartFresh(t *testing.T) {
	f := newFixture(t, Options{})
	c := ctx(t)
	for range 2 {
		if _, err := f.a.Send(c, oidB, AppIncident, "acknowledgement", ack(), ""); err != nil {
			t.Fatal(err)
		}
	}
	before, err := f.b.Fetch(c, 0)
	if err != nil || len(before) != 2 || parse(t, before[1]).SequenceID != 2 {
		t.Fatalf("before the restart: %d messages, %v", len(before), err)
	}
	if err := f.b.Commit(c, 1); err != nil {
		t.Fatal(err)
	}
	url := f.s.URL()
	if err := f.s.RestartFresh(); err != nil {
		t.Fatal(err)
	}
	if f.s.URL() != url || f.s.Queue(oidB) != 0 || f.s.Committed(oidB) != 0 {
		t.Fatalf("after the restart: url %s, queue %d, committed %d", f.s.URL(), f.s.Queue(oidB), f.s.Committed(oidB))
	}
	if _, err := f.a.Send(c, oidB, AppIncident, "acknowledgement", ack(), ""); err != nil {
		t.Fatal(err)
	}
	after, err := f.b.Fetch(c, 0)
	if err != nil || len(after) != 1 {
		t.Fatalf("after the restart: %d messages, %v", len(after), err)
	}
	if m := parse(t, after[0]); m.SequenceID != 1 || m.MessageID == parse(t, before[0]).MessageID {
		t.Fatalf("after the restart: sequenceId %d, messageId %s", m.SequenceID, m.MessageID)
	}
}

func TestRegistryAndInfo(t *testing.T) {
	f := newFixture(t, Options{})
	c := ctx(t)
	status, body, err := f.c.Do(c, http.MethodGet, "/registry", nil)
	if err != nil || status != http.StatusOK {
		t.Fatalf("status %d err %v: %s", status, err, body)
	}
	validate(t, mustSchema(t, "#/paths/~1registry/get/responses/200/content/application~1json/schema"), body)
	var reg struct {
		CommParticipants []struct {
			ID, Type, Status          string
			Key                       *struct{ Kty, N, E string }
			TransmitsUnsignedMessages bool
		}
	}
	if err := json.Unmarshal(body, &reg); err != nil {
		t.Fatal(err)
	}
	got := map[string]int{}
	for i, p := range reg.CommParticipants {
		got[p.ID] = i
	}
	if len(reg.CommParticipants) != 4 {
		t.Fatalf("registry %s", body)
	}
	a, cc, u := reg.CommParticipants[got[oidA]], reg.CommParticipants[got[oidC]], reg.CommParticipants[got[f.s.OID()]]
	if a.Key == nil || a.Key.Kty != "RSA" || a.TransmitsUnsignedMessages || a.Type != "client" || a.Status != "online" {
		t.Fatalf("entry of A: %+v", a)
	}
	n, _ := base64.RawURLEncoding.DecodeString(a.Key.N)
	e, _ := base64.RawURLEncoding.DecodeString(a.Key.E)
	if new(big.Int).SetBytes(n).Cmp(f.keyA.N) != 0 || new(big.Int).SetBytes(e).Int64() != int64(f.keyA.E) {
		t.Fatal("the key of A in the registry is not A's key")
	}
	if cc.Key != nil || !cc.TransmitsUnsignedMessages {
		t.Fatalf("entry of C: %+v", cc)
	}
	if u.Type != "ucrm" || !u.TransmitsUnsignedMessages {
		t.Fatalf("entry of the UCRM: %+v", u)
	}
	tests := []struct {
		name, path string
		want       int
		schema     string
	}{
		{"one participant", "/registry/" + oidB, http.StatusOK, "#/components/schemas/CommParticipant"},
		{"the UCRM", "/registry/" + f.s.OID(), http.StatusOK, "#/components/schemas/CommParticipant"},
		{"unknown", "/registry/9.9.9", http.StatusNotFound, "#/components/schemas/Error"},
		{"info", "/info", http.StatusOK, "#/components/schemas/Info"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, body, err := f.a.Do(ctx(t), http.MethodGet, tt.path, nil)
			if err != nil || status != tt.want {
				t.Fatalf("status %d err %v: %s", status, err, body)
			}
			validate(t, mustSchema(t, tt.schema), body)
		})
	}
}

func TestTestControls(t *testing.T) {
	f := newFixture(t, Options{})
	c := ctx(t)
	t.Run("Inject", func(t *testing.T) {
		seq := f.s.Inject(oidB, []byte(`{"source":"1.2.3","payload":{"appId":"x"},"sequenceId":99}`))
		msgs, err := f.b.Receive(c, 0)
		if err != nil || len(msgs) != 1 {
			t.Fatalf("%d messages, %v", len(msgs), err)
		}
		m := parse(t, msgs[0])
		if m.SequenceID != seq || m.Destination != oidB || m.Source != "1.2.3" || m.AppID != "x" {
			t.Fatalf("injected %d, received %s", seq, msgs[0])
		}
		if f.s.Committed(oidB) != seq {
			t.Fatal("commit of the injected message not recorded")
		}
	})
	t.Run("SetAvailability", func(t *testing.T) {
		f.s.SetAvailability(oidA, "offline")
		if f.s.Queue(oidA) != 0 {
			t.Fatal("the participant itself got its availability update")
		}
		for _, p := range []*Peer{f.b, f.c} {
			msgs, err := p.Receive(c, 0)
			if err != nil || len(msgs) != 1 {
				t.Fatalf("%s: %d messages, %v", p.OID(), len(msgs), err)
			}
			m := parse(t, msgs[0])
			if m.Source != f.s.OID() || m.SchemaID != "participant_availability_update" || string(m.Data) != `{"id":"`+oidA+`","status":"offline"}` {
				t.Fatalf("%s received %s", p.OID(), msgs[0])
			}
		}
		_, body, _ := f.b.Do(c, http.MethodGet, "/registry/"+oidA, nil)
		if !strings.Contains(string(body), `"status":"offline"`) {
			t.Fatalf("registry entry %s", body)
		}
	})
	t.Run("FailNext", func(t *testing.T) {
		f.s.FailNext("/messaging/send", 2, http.StatusServiceUnavailable)
		before := f.s.Requests("/messaging/send")
		for i := range 3 {
			_, err := f.a.Send(c, oidB, AppIncident, "acknowledgement", ack(), "")
			var e *Error
			switch {
			case i < 2 && (!errors.As(err, &e) || e.Status != http.StatusServiceUnavailable || e.Code != CodeInternal):
				t.Fatalf("send %d: %v", i, err)
			case i == 2 && err != nil:
				t.Fatalf("send after the faults: %v", err)
			}
		}
		if got := f.s.Requests("/messaging/send") - before; got != 3 {
			t.Fatalf("%d requests counted, want 3", got)
		}
	})
}
