package case116117

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"

	"github.com/switchboard-matrix/switchboard/appservice"
	"github.com/switchboard-matrix/switchboard/bots/case116117/ucri"
	"github.com/switchboard-matrix/switchboard/config"
	"github.com/switchboard-matrix/switchboard/internal/testpeer/ucrm"
)

// memStore is the key-value part of appservice.ModuleStore in memory; the rest is not
// used by these tests.
type memStore struct {
	appservice.ModuleStore
	mu sync.Mutex
	kv map[string]string
}

func (s *memStore) GetKV(_ context.Context, key string) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	v, ok := s.kv[key]
	if !ok {
		return "", appservice.ErrNotFound
	}
	return v, nil
}

func (s *memStore) PutKV(_ context.Context, key, value string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.kv[key] = value
	return nil
}

func (s *memStore) DeleteKV(_ context.Context, key string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.kv, key)
	return nil
}

func (s *memStore) ListKV(_ context.Context, prefix string, limit int) ([]appservice.KV, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []appservice.KV
	for k, v := range s.kv {
		if strings.HasPrefix(k, prefix) {
			out = append(out, appservice.KV{Key: k, Value: v})
		}
	}
	slices.SortFunc(out, func(a, b appservice.KV) int { return strings.Compare(a.Key, b.Key) })
	if limit > 0 && len(out) > limit {
		out = out[:limit]
	}
	return out, nil
}

// memHost is an appservice.Host with only a store (and a domain); everything else panics.
type memHost struct {
	appservice.Host
	st *memStore
}

func (h *memHost) Store() appservice.ModuleStore { return h.st }
func (h *memHost) Domain() string                { return "example.org" }
func (h *memHost) BotUserID() id.UserID          { return "@bot:example.org" }

const (
	testOIDA = "1.2.276.0.76.3.1.1"
	testOIDB = "1.2.276.0.76.3.1.2"
)

// receiveFixture is a fake UCRM with centres A (a peer) and B (the link under test).
type receiveFixture struct {
	srv   *ucrm.Server
	peerA *ucrm.Peer
	st    *memStore
}

func newReceiveFixture(t *testing.T) *receiveFixture {
	t.Helper()
	keyA, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	srv := ucrm.New(ucrm.Options{Logf: t.Logf})
	srv.AddParticipant(ucrm.Participant{OID: testOIDA, Username: "a", Password: "pa", Key: &keyA.PublicKey})
	srv.AddParticipant(ucrm.Participant{OID: testOIDB, Username: "b", Password: "pb", Key: &keyA.PublicKey})
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Close)
	return &receiveFixture{srv: srv, peerA: srv.Peer(testOIDA, keyA), st: &memStore{kv: map[string]string{}}}
}

// link returns a new link of centre B on the fixture's store, as after a process start.
func (f *receiveFixture) link(t *testing.T) *link {
	t.Helper()
	cfg := &LinkConfig{Name: "b", OID: testOIDB, UCRM: UCRMConfig{URL: f.srv.URL(), Username: "b", Password: "pb"}}
	l := newLink(&Bot{host: &memHost{st: f.st}}, cfg)
	c, err := ucri.NewClient(ucri.ClientConfig{BaseURL: cfg.UCRM.URL, Username: "b", Password: "pb"})
	if err != nil {
		t.Fatal(err)
	}
	l.client = c
	return l
}

// sendAndReceive has A send an acknowledgement of caseID to B, and l receive and store it.
func (f *receiveFixture) sendAndReceive(t *testing.T, l *link, caseID string) {
	t.Helper()
	ctx := t.Context()
	ack := map[string]any{"sharedIncidentId": caseID, "acknowledgedByDispatcherAt": "2024-01-01T10:06:09Z", "status": "accepted"}
	if _, err := f.peerA.Send(ctx, testOIDB, ucri.AppIncidentWithPatient, ucri.SchemaAcknowledgement, ack, "NONE"); err != nil {
		t.Fatal(err)
	}
	zero := 0
	resp, bad, err := l.client.Receive(ctx, ucri.ReceiveRequest{Destinations: []string{testOIDB}, MaxDelay: &zero})
	if err != nil || len(bad) > 0 || len(resp.Messages) != 1 {
		t.Fatalf("Receive = %v, %v, %v", resp, bad, err)
	}
	if err := l.store(ctx, resp, bad); err != nil {
		t.Fatal(err)
	}
}

// pendingCases returns the case IDs and UCRM sequenceIds of the stored, unprocessed
// messages, in processing order.
func pendingCases(t *testing.T, l *link) (cases []string, seqs []int64) {
	t.Helper()
	rows, err := l.pendingRx(t.Context(), 50)
	if err != nil {
		t.Fatal(err)
	}
	for _, row := range rows {
		var s stored
		var m ucri.ReceivedMessage
		if err := json.Unmarshal([]byte(row.Value), &s); err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(s.Message, &m); err != nil {
			t.Fatal(err)
		}
		var d struct{ SharedIncidentID string }
		_ = json.Unmarshal([]byte(m.Payload.Data), &d)
		cases = append(cases, d.SharedIncidentID)
		seqs = append(seqs, m.SequenceID)
	}
	return cases, seqs
}

// TestReceivedRowsSurviveUCRMRestart: a UCRM that restarts numbers sequenceIds from 1
// again; a message stored but not yet processed must not be overwritten by the next one
// with the same sequenceId, nor after a restart of Switchboard.
func TestReceivedRowsSurviveUCRMRestart(t *testing.T) {
	f := newReceiveFixture(t)
	l := f.link(t)
	caseA, caseB, caseC := ucri.NewMessageID(), ucri.NewMessageID(), ucri.NewMessageID()
	f.sendAndReceive(t, l, caseA)
	if err := f.srv.RestartFresh(); err != nil {
		t.Fatal(err)
	}
	f.sendAndReceive(t, l, caseB)
	if err := f.srv.RestartFresh(); err != nil {
		t.Fatal(err)
	}
	f.sendAndReceive(t, f.link(t), caseC) // Switchboard restarted too: the local sequence goes on
	cases, seqs := pendingCases(t, l)
	if !slices.Equal(cases, []string{caseA, caseB, caseC}) || !slices.Equal(seqs, []int64{1, 1, 1}) {
		t.Fatalf("stored cases %v with sequenceIds %v, want %v each with 1", cases, seqs, []string{caseA, caseB, caseC})
	}
	if f.srv.Queue(testOIDB) != 0 || f.srv.Committed(testOIDB) != 1 {
		t.Fatalf("queue %d, committed %d", f.srv.Queue(testOIDB), f.srv.Committed(testOIDB))
	}
}

// TestLegacyReceivedRowsFirst: rows stored by an earlier version under the UCRM's
// sequenceId (in:<link>:<seq>) are processed first, then the new rows; nothing is lost.
func TestLegacyReceivedRowsFirst(t *testing.T) {
	f := newReceiveFixture(t)
	l := f.link(t)
	old := ucri.NewMessageID()
	raw, _ := json.Marshal(ucri.ReceivedMessage{
		Envelope: ucri.Envelope{MessageID: ucri.NewMessageID(), Source: testOIDA, Payload: ucri.Payload{
			AppID: ucri.AppIncidentWithPatient, Data: `{"sharedIncidentId":"` + old + `"}`}},
		Destination: testOIDB, SequenceID: 7,
	})
	row, _ := json.Marshal(stored{Message: raw, At: time.Now()})
	if err := f.st.PutKV(t.Context(), "in:b:00000000000000000007", string(row)); err != nil {
		t.Fatal(err)
	}
	newer := ucri.NewMessageID()
	f.sendAndReceive(t, l, newer)
	cases, _ := pendingCases(t, l)
	if !slices.Equal(cases, []string{old, newer}) {
		t.Fatalf("pending %v, want the legacy row, then the new one", cases)
	}
	if rows, err := l.pendingRx(t.Context(), 1); err != nil || len(rows) != 1 || rows[0].Key != "in:b:00000000000000000007" {
		t.Fatalf("first of one: %v, %v", rows, err)
	}
	if err := f.st.DeleteKV(t.Context(), "in:b:00000000000000000007"); err != nil { // processed
		t.Fatal(err)
	}
	if cases, _ = pendingCases(t, l); !slices.Equal(cases, []string{newer}) {
		t.Fatalf("then %v, want the new row", cases)
	}
}

// notices records what a link posts through the host's outbox.
type notices struct {
	mu    sync.Mutex
	texts []string
}

func (n *notices) has(part string) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	for _, t := range n.texts {
		if strings.Contains(t, part) {
			return true
		}
	}
	return false
}

// postingHost is memHost that records the notices enqueued.
type postingHost struct {
	memHost
	n *notices
}

func (h *postingHost) Enqueue(_ context.Context, msg appservice.Message) error {
	if c, ok := msg.Content.(*event.MessageEventContent); ok {
		h.n.mu.Lock()
		h.n.texts = append(h.n.texts, c.Body)
		h.n.mu.Unlock()
	}
	return nil
}

func waitUntil(t *testing.T, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("not within %v: %s", within, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestReceiveBackoffCapped(t *testing.T) {
	for attempt := range 20 {
		for range 20 {
			if d := receiveBackoff(attempt); d <= 0 || d > receiveBackoffMax {
				t.Fatalf("receiveBackoff(%d) = %v", attempt, d)
			}
		}
	}
}

// TestUCRMReturnAnnouncedAtOnce: when the UCRM comes back, its return is announced and its
// queue read within seconds, not after a long poll (30 s here) or a backoff of up to a
// minute.
func TestUCRMReturnAnnouncedAtOnce(t *testing.T) {
	f := newReceiveFixture(t)
	l := f.link(t)
	n := &notices{}
	l.b.host = &postingHost{memHost: memHost{st: f.st}, n: n}
	l.cfg.MaxDelay = config.Duration(30 * time.Second)
	l.adminRoom = "!admin:example.org"
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	defer func() { cancel(); <-done }()
	f.srv.Stop()
	go func() { defer close(done); l.receiveLoop(ctx) }()
	waitUntil(t, 5*time.Second, "the outage to be reported", func() bool { return n.has("nicht erreichbar") })
	time.Sleep(4 * time.Second) // several failed attempts
	if err := f.srv.Start(); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, receiveBackoffMax+2*time.Second, "the return to be announced", func() bool { return n.has("wieder erreichbar") })
	caseID := ucri.NewMessageID()
	ack := map[string]any{"sharedIncidentId": caseID, "acknowledgedByDispatcherAt": "2024-01-01T10:06:09Z", "status": "accepted"}
	if _, err := f.peerA.Send(ctx, testOIDB, ucri.AppIncidentWithPatient, ucri.SchemaAcknowledgement, ack, "NONE"); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, 3*time.Second, "the message to be stored", func() bool {
		cases, _ := pendingCases(t, l)
		return slices.Contains(cases, caseID)
	})
}

// TestNoPatientDataInLog: refused incidents with patient data (invalid, badly signed) are
// logged below trace without any of it (issue 10 item 4).
func TestNoPatientDataInLog(t *testing.T) {
	f := newReceiveFixture(t)
	l := f.link(t)
	n := &notices{}
	l.b.host = &postingHost{memHost: memHost{st: f.st}, n: n}
	l.adminRoom = "!admin:example.org"
	var buf bytes.Buffer
	ctx := zerolog.New(&buf).Level(zerolog.DebugLevel).WithContext(t.Context())
	patient := map[string]any{
		"sharedIncidentId": ucri.NewMessageID(),
		"patients": []any{map[string]any{
			"name": "Mustermann", "surname": "Hans", "dateOfBirth": "1980-12-30", "phone": "+49 30 123456",
			"healthInsurance": map[string]any{"insuranceNumber": "A123456789"},
		}},
	}
	inject := func(edit func(env map[string]any)) {
		env, err := f.peerA.Envelope(testOIDB, ucri.AppIncidentWithPatient, ucri.SchemaIncident, patient, "NONE")
		if err != nil {
			t.Fatal(err)
		}
		env["sentDate"], env["timeout"] = time.Now().UTC().Format(time.RFC3339), 3600
		delete(env, "destinations")
		if edit != nil {
			edit(env)
		}
		raw, _ := json.Marshal(env)
		f.srv.Inject(testOIDB, raw)
	}
	inject(nil) // invalid: required fields missing
	inject(func(env map[string]any) { env["payload"].(map[string]any)["data"] = `{"name":"Mustermann"}` })
	zero := 0
	resp, bad, err := l.client.Receive(ctx, ucri.ReceiveRequest{Destinations: []string{testOIDB}, MaxDelay: &zero})
	if err != nil {
		t.Fatal(err)
	}
	if err := l.store(ctx, resp, bad); err != nil {
		t.Fatal(err)
	}
	rows, err := l.pendingRx(ctx, 50)
	if err != nil || len(rows) != 2 {
		t.Fatalf("%d rows, %v", len(rows), err)
	}
	for _, row := range rows {
		if err := l.processStored(ctx, row.Value); err != nil {
			t.Fatal(err)
		}
	}
	if !n.has("nicht übernommen") || !strings.Contains(buf.String(), "Rejected a received message") {
		t.Fatalf("the incidents were not refused; log:\n%s", buf.String())
	}
	for _, secret := range []string{"Mustermann", "Hans", "1980-12-30", "123456"} {
		if strings.Contains(buf.String(), secret) {
			t.Errorf("the log holds %q:\n%s", secret, buf.String())
		}
	}
}
