package casee2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/rs/zerolog"
	"maunium.net/go/mautrix"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"

	"github.com/switchboard-matrix/switchboard/appservice"
	"github.com/switchboard-matrix/switchboard/bots/case116117"
	"github.com/switchboard-matrix/switchboard/bots/case116117/ucri"
	"github.com/switchboard-matrix/switchboard/config"
	"github.com/switchboard-matrix/switchboard/internal/store"
	"github.com/switchboard-matrix/switchboard/internal/store/storetest"
	"github.com/switchboard-matrix/switchboard/internal/testpeer/matrixtest"
	"github.com/switchboard-matrix/switchboard/internal/testpeer/refucrm"
	"github.com/switchboard-matrix/switchboard/internal/testpeer/sbcore"
)

// The TestReference… tests run the bot against PMeV's reference UCRM (internal/testpeer/
// refucrm), one fresh reference per test, instead of the fake: the bot's centre B, and
// the centres A (which hands cases to B) and C (which B hands cases to), both driven from
// Go through the reference's Client API with their own keys. Every message the bot sends
// is checked with the reference's own signing code.

// refNet is one reference UCRM with the bot's link and the two other centres.
type refNet struct {
	srv  *refucrm.Server
	link case116117.LinkConfig
	a, c *refucrm.Centre
}

// startReference starts a reference UCRM serving B (the bot's link, worked by user), A
// and C, each with its key in the registry.
func startReference(t testing.TB, user id.UserID) *refNet {
	t.Helper()
	n := centres.Add(1)
	name := fmt.Sprintf("ref%d", n)
	srv := refucrm.StartTest(t, refucrm.Options{Participants: []refucrm.Participant{
		{OID: oidA, Username: "els-a", Password: "secret-a", OperatorName: "Leitstelle A", ShortName: "ELS A", Key: &keyA.PublicKey},
		{OID: oidB, Username: userB, Password: passB, OperatorName: "116117 B", ShortName: "KV B", Key: &keyB.PublicKey},
		{OID: oidC, Username: "els-c", Password: "secret-c", OperatorName: "Rettungsleitstelle C", ShortName: "ELS C", Key: &keyC.PublicKey},
	}})
	a, err := srv.Centre(oidA, "els-a", "secret-a", keyA)
	if err != nil {
		t.Fatal(err)
	}
	c, err := srv.Centre(oidC, "els-c", "secret-c", keyC)
	if err != nil {
		t.Fatal(err)
	}
	return &refNet{srv: srv, a: a, c: c, link: case116117.LinkConfig{
		Name: name, OID: oidB, SigningKey: keyBPath,
		UCRM:        case116117.UCRMConfig{URL: srv.URL, Username: userB, Password: passB},
		Dispatchers: []string{user.String()}, Admins: []string{user.String()},
		MaxDelay: config.Duration(2 * time.Second),
	}}
}

// sendCase sends an incident from A to the bot's centre.
func (n *refNet) sendCase(t testing.TB, caseID, ack string) *ucri.SendRequest {
	t.Helper()
	sent, err := n.a.Send(context.Background(), oidB, app, "incident", incident(caseID), ack)
	if err != nil {
		t.Fatal(err)
	}
	return sent
}

// wait polls the centre until a message of schemaID from source matches and returns it.
func (n *refNet) wait(t testing.TB, at *refucrm.Centre, source, schemaID string, match func(data map[string]any) bool) ucri.ReceivedMessage {
	t.Helper()
	var found ucri.ReceivedMessage
	matrixtest.WaitFor(t, 30*time.Second, at.OID+" to receive a "+schemaID+" from "+source, func() (bool, error) {
		if _, err := at.Poll(context.Background()); err != nil {
			return false, err
		}
		for _, m := range at.Received() {
			if m.Source != source || m.Payload.SchemaID != schemaID {
				continue
			}
			var data map[string]any
			if err := json.Unmarshal([]byte(m.Payload.Data), &data); err != nil {
				return false, err
			}
			if match == nil || match(data) {
				found = m
				return true, nil
			}
		}
		return false, nil
	})
	return found
}

// delivered waits until the reference reports to A that the bot's centre committed the
// message messageID.
func (n *refNet) delivered(t testing.TB, messageID string) {
	t.Helper()
	ds := n.wait(t, n.a, n.srv.OwnOID, ucri.SchemaDeliveryStatus, func(d map[string]any) bool { return d["refMessageId"] == messageID })
	var d map[string]any
	_ = json.Unmarshal([]byte(ds.Payload.Data), &d)
	if d["statusCode"] != 200.0 {
		t.Fatalf("delivery report for %s: %s", messageID, ds.Payload.Data)
	}
}

// checkSigned verifies a message the bot's centre sent, as its receiver got it, with the
// reference's own code and B's registry key, and checks its data against the official
// schema.
func (n *refNet) checkSigned(t testing.TB, m ucri.ReceivedMessage) {
	t.Helper()
	if m.Source != oidB {
		t.Fatalf("message %s comes from %s", m.MessageID, m.Source)
	}
	if _, err := n.srv.Verify(context.Background(), m.Envelope, []string{m.Destination}, &keyB.PublicKey); err != nil {
		t.Errorf("the reference's signing code refuses the bot's %s %s: %v", m.Payload.SchemaID, m.MessageID, err)
	}
	if err := ucri.ValidateData(m.Payload.AppID, m.Payload.AppVersion, m.Payload.SchemaID, []byte(m.Payload.Data), true); err != nil {
		t.Errorf("the bot's %s %s is not schema-valid: %v", m.Payload.SchemaID, m.MessageID, err)
	}
}

// noWarnings fails t if the room holds a warning (a refused message, a failed delivery, a
// signature problem).
// uuidPattern matches a UUID in a room message.
var uuidPattern = regexp.MustCompile(`[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}`)

func noWarnings(t testing.TB, cli *mautrix.Client, room id.RoomID) {
	t.Helper()
	evts, err := matrixtest.RoomEvents(context.Background(), cli, room, event.EventMessage)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range evts {
		body, _ := e.Content.Raw["body"].(string)
		// Case and message IDs are random UUIDs: one may contain "479" (the refusal's status).
		body = uuidPattern.ReplaceAllString(body, "<id>")
		for _, bad := range []string{"⚠️", "nicht übernommen", "NICHT zugestellt", "Signatur", "signature", "479"} {
			if strings.Contains(body, bad) {
				t.Errorf("room %s: %q", room, body)
				break
			}
		}
	}
}

// TestReferenceIncomingCase: a case A sends through the reference UCRM appears once in a
// case room, its signature taken (no refusal, no warning); the reference reports the
// commit to A; the dispatcher's !accept reaches A through the reference, signed so that
// the reference's own code verifies it; the reference's delivery report of the answer
// shows as "zugestellt". A case signed with a key that is not A's is still refused.
func TestReferenceIncomingCase(t *testing.T) {
	alice := newMatrixUser(t, "alice")
	n := startReference(t, alice.UserID)
	startBot(t, nil, n.link)
	admin := adminRoom(t, alice, n.link)

	caseID := uuid.NewString()
	sent := n.sendCase(t, caseID, ucri.AckAll)
	room := caseRoom(t, alice, n.link, caseID)
	waitNotice(t, alice, room, "Neuer Fall", "Musterstrasse 15b", "Hans Mustermann")
	n.delivered(t, sent.MessageID)

	say(t, alice, room, "!accept Wir übernehmen")
	ack := n.wait(t, n.a, oidB, ucri.SchemaAcknowledgement, func(d map[string]any) bool { return d["sharedIncidentId"] == caseID })
	var data map[string]any
	_ = json.Unmarshal([]byte(ack.Payload.Data), &data)
	if data["status"] != "accepted" || data["cause"] != "Wir übernehmen" {
		t.Errorf("acknowledgement %s", ack.Payload.Data)
	}
	n.checkSigned(t, ack)
	waitNotice(t, alice, room, "zugestellt")

	say(t, alice, room, "!complete Patient versorgt")
	done := n.wait(t, n.a, oidB, ucri.SchemaCompletion, func(d map[string]any) bool { return d["sharedIncidentId"] == caseID })
	n.checkSigned(t, done)

	if c := countBodies(t, alice, room, "Neuer Fall"); c != 1 {
		t.Errorf("the case is shown %d times", c)
	}
	noWarnings(t, alice, room)
	noWarnings(t, alice, admin)

	// A case whose signature A's registry key did not make is still refused: a warning,
	// no room, a signed rejection to A.
	forged, err := n.srv.Centre(oidA, "els-a", "secret-a", keyC)
	if err != nil {
		t.Fatal(err)
	}
	badID := uuid.NewString()
	bad, err := forged.Send(context.Background(), oidB, app, "incident", incident(badID), ucri.AckNone)
	if err != nil {
		t.Fatal(err)
	}
	waitNotice(t, alice, admin, "nicht übernommen", bad.MessageID)
	rej := n.wait(t, n.a, oidB, ucri.SchemaAcknowledgement, func(d map[string]any) bool { return d["sharedIncidentId"] == badID })
	_ = json.Unmarshal([]byte(rej.Payload.Data), &data)
	if data["status"] != ucri.AckRejected {
		t.Errorf("answer to the forged case: %s", rej.Payload.Data)
	}
	n.checkSigned(t, rej)
	if _, err := alice.ResolveAlias(context.Background(), id.RoomAlias("#"+case116117.DefaultPrefix+n.link.Name+"_"+badID+":"+domain)); err == nil {
		t.Error("the forged case got a room")
	}
}

// TestReferenceHandover: a case handed over from Matrix reaches C through the reference,
// signed so that the reference's own code verifies it; C's commit shows as "zugestellt";
// C's signed answers appear in the case room.
func TestReferenceHandover(t *testing.T) {
	alice := newMatrixUser(t, "alice")
	n := startReference(t, alice.UserID)
	startBot(t, nil, n.link)
	admin := adminRoom(t, alice, n.link)

	say(t, alice, admin, "!registry")
	waitNotice(t, alice, admin, oidA, "Leitstelle A", oidC, "Rettungsleitstelle C")
	say(t, alice, admin, "!handover "+oidC+"\nstichwort: B2\nanlass: Sturz\nstrasse: Hauptstraße\nhausnummer: 1\nplz: 54321\nort: Beispielstadt\n"+
		"patient: Muster, Erika\ngeschlecht: w\ngeburtsdatum: 31.12.1950\ntelefon: +49 40 555\nersteinschaetzung: Sturz, ansprechbar")
	inc := n.wait(t, n.c, oidB, ucri.SchemaIncident, nil)
	n.checkSigned(t, inc)
	var data map[string]any
	_ = json.Unmarshal([]byte(inc.Payload.Data), &data)
	caseID, _ := data["sharedIncidentId"].(string)
	room := caseRoom(t, alice, n.link, caseID)
	waitNotice(t, alice, room, "Fall zur Übergabe", "Erika Muster", "Beispielstadt")
	waitNotice(t, alice, room, "zugestellt")

	ctx := context.Background()
	if _, err := n.c.Send(ctx, oidB, app, "acknowledgement", map[string]any{
		"sharedIncidentId": caseID, "acknowledgedByDispatcherAt": "2026-01-01T10:00:00Z", "status": "accepted", "cause": "Team unterwegs",
	}, ucri.AckAll); err != nil {
		t.Fatal(err)
	}
	waitNotice(t, alice, room, "angenommen", "Team unterwegs")
	if _, err := n.c.Send(ctx, oidB, app, "completion", map[string]any{
		"sharedIncidentId": caseID, "completedAt": "2026-01-01T11:00:00Z", "status": "aborted", "additionalInformation": "Niemand angetroffen",
	}, ucri.AckNone); err != nil {
		t.Fatal(err)
	}
	waitNotice(t, alice, room, "abgebrochen", "Niemand angetroffen")
	noWarnings(t, alice, room)
	noWarnings(t, alice, admin)
}

// gate is a reverse proxy to the homeserver that can be closed: while closed, every
// request of the bot to Matrix fails with 503, so that received messages stay stored and
// unprocessed.
type gate struct {
	closed atomic.Bool
	srv    *httptest.Server
}

func newGate(t testing.TB, target string) *gate {
	t.Helper()
	u, err := url.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	g := &gate{}
	proxy := httputil.NewSingleHostReverseProxy(u)
	g.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if g.closed.Load() {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = w.Write([]byte(`{"errcode":"M_UNKNOWN","error":"closed by the test"}`))
			return
		}
		proxy.ServeHTTP(w, r)
	}))
	t.Cleanup(g.srv.Close)
	return g
}

// startBotVia starts Switchboard with the bot like startBot, but reaching the homeserver
// at hsURL.
func startBotVia(t testing.TB, hsURL string, links ...case116117.LinkConfig) {
	t.Helper()
	bot, err := case116117.New(case116117.Config{Links: links})
	if err != nil {
		t.Fatal(err)
	}
	level, _ := zerolog.ParseLevel(getenv("SWITCHBOARD_CASEE2E_LOG", "info"))
	sbcore.Start(t, sbcore.Options{
		Registration: reg, HomeserverURL: hsURL, Domain: domain, ASPort: asPort, Store: storetest.Open(t, store.SQLite),
		Modules: []appservice.Module{bot}, Version: "casee2e", LogLevel: level,
	})
}

// TestReferenceRestartBetweenReceiveAndProcessing: the bot receives and commits a case
// while Matrix is unreachable (stored, not processed); the reference UCRM restarts, so it
// numbers sequenceId from 1 again, and delivers a second case with the sequenceId the
// first had. Once Matrix is back, both cases are in their rooms, each once: a stored
// message is not overwritten or dropped because a sequenceId came again.
func TestReferenceRestartBetweenReceiveAndProcessing(t *testing.T) {
	alice := newMatrixUser(t, "alice")
	n := startReference(t, alice.UserID)
	g := newGate(t, hs.URL)
	startBotVia(t, g.srv.URL, n.link)
	adminRoom(t, alice, n.link)

	g.closed.Store(true)
	first, second := uuid.NewString(), uuid.NewString()
	n.delivered(t, n.sendCase(t, first, ucri.AckAll).MessageID) // stored and committed by the bot
	if err := n.srv.Restart(context.Background()); err != nil {
		t.Fatal(err)
	}
	n.delivered(t, n.sendCase(t, second, ucri.AckAll).MessageID) // sequenceId 1 again
	g.closed.Store(false)

	for _, caseID := range []string{first, second} {
		room := caseRoom(t, alice, n.link, caseID)
		waitNotice(t, alice, room, "Neuer Fall")
		if c := countBodies(t, alice, room, "Neuer Fall"); c != 1 {
			t.Errorf("case %s is shown %d times", caseID, c)
		}
	}
}
