package cryptoe2e

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"maunium.net/go/mautrix"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"

	"github.com/switchboard-matrix/switchboard/internal/store"
	"github.com/switchboard-matrix/switchboard/internal/store/storetest"
	"github.com/switchboard-matrix/switchboard/internal/testmodule"
	"github.com/switchboard-matrix/switchboard/internal/testpeer/e2eeclient"
	"github.com/switchboard-matrix/switchboard/internal/testpeer/homeserver"
	"github.com/switchboard-matrix/switchboard/internal/testpeer/matrixtest"
	"github.com/switchboard-matrix/switchboard/internal/testpeer/peerproc"
	"github.com/switchboard-matrix/switchboard/internal/testpeer/sbproc"
)

// The load of TestCrashKill9Encrypted: issue 12's "kill -9 four times during encrypted
// traffic both ways (1000 events)".
const (
	encCrashEvents = 1000 // Matrix -> module: encrypted messages the user sends
	encCrashRemote = 1000 // remote -> Matrix: messages the feeder ghost sends, encrypted
	encCrashKills  = 4
	// encCrashDecryptTimeout is how long the core waits for a missing room key: short,
	// so that an event whose key never comes ends as failed (counted undecryptable)
	// within the test's time instead of blocking its room for the default 10 minutes.
	encCrashDecryptTimeout = "1m"
)

// sentMessage is one encrypted message the user sent.
type sentMessage struct {
	eventID id.EventID
	body    string
	at      time.Time
}

// TestCrashKill9Encrypted: in an encrypted room on Synapse, a user's encrypting client
// sends 1000 messages to the test module while the module's feeder ghost sends 1000
// remote messages to the room, and Switchboard (a separate process) is killed with
// SIGKILL four times during the traffic and restarted. Afterwards, on SQLite and
// PostgreSQL: every one of the user's events was handled once, with its plaintext, and
// none failed to decrypt; the client decrypted every remote message once, from one event.
// SWITCHBOARD_CRASH_LOG=debug runs Switchboard at that level and keeps its log on failure.
func TestCrashKill9Encrypted(t *testing.T) {
	if testing.Short() {
		t.Skip("crash test skipped in -short mode")
	}
	h := syn.Get(t)
	bin := sbproc.Build(t, workDir, "github.com/switchboard-matrix/switchboard/internal/testmodule/cmd/switchboard-test")
	for _, dialect := range []store.Dialect{store.SQLite, store.Postgres} {
		t.Run(string(dialect), func(t *testing.T) { testCrashKill9Encrypted(t, h, bin, dialect) })
	}
}

// encCrashRun is one run of the encrypted crash test: the process and what it counts.
type encCrashRun struct {
	t                *testing.T
	h                homeserver.HS
	bin, cfg         string
	metricsPort      int
	log              *os.File
	proc             *sbproc.Process
	user             *e2eeclient.Client
	room             id.RoomID
	check            *store.Store
	killedAt         []time.Time
	remoteSentAtKill []int
	heldBySynapse    int
	sendTime, settle time.Duration
	sink, feeder     id.UserID
}

func testCrashKill9Encrypted(t *testing.T, h homeserver.HS, bin string, dialect store.Dialect) {
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	dir := t.TempDir()
	dbURI := storetest.NewDatabaseURI(t, dialect)
	r := &encCrashRun{t: t, h: h, bin: bin,
		sink:   id.NewUserID(testmodule.GhostPrefix+"sink", domain),
		feeder: id.NewUserID(testmodule.GhostPrefix+"feeder", domain)}
	r.user = newCryptoUser(t, h, "crashenc")
	// The ghosts are invited once Switchboard runs: an invite that finds no one listening
	// sends Synapse into its retry backoff.
	room, err := r.user.CreateEncryptedRoom(ctx, &mautrix.ReqCreateRoom{})
	if err != nil {
		t.Fatal(err)
	}
	r.room = room
	feed := &testmodule.Feed{}
	feedSrv := httptest.NewServer(feed)
	defer feedSrv.Close()
	if r.metricsPort, err = peerproc.FreePort(); err != nil {
		t.Fatal(err)
	}
	level := "info"
	if l := os.Getenv("SWITCHBOARD_CRASH_LOG"); l != "" {
		level = l
	}
	r.cfg = sbproc.WriteConfig(t, dir, sbproc.Config{
		HomeserverURL: h.BaseURL(), Domain: domain, RegistrationID: h.Reg().ID, ASPort: h.AppservicePort(), MetricsPort: r.metricsPort,
		DatabaseURI: dbURI, LogLevel: level,
		Modules:    fmt.Sprintf("  testmod:\n    enabled: true\n    remote_url: %s\n    room: %q\n    ghost: feeder\n", feedSrv.URL, room),
		Encryption: "  enabled: true\n  default: true\n  decrypt_timeout: " + encCrashDecryptTimeout + "\n",
	})
	if r.log, err = os.Create(filepath.Join(dir, "switchboard.log")); err != nil {
		t.Fatal(err)
	}
	defer r.log.Close()
	defer func() {
		if t.Failed() {
			logSynapseAppserviceFailures(t)
			t.Logf("switchboard's warnings and errors:\n%s", sbproc.LogProblems(r.log.Name(), 60))
			// With SWITCHBOARD_CRASH_LOG set (diagnosis), the whole log outlives the test's
			// directory.
			if b, err := os.ReadFile(r.log.Name()); err == nil && os.Getenv("SWITCHBOARD_CRASH_LOG") != "" {
				keep := filepath.Join(os.TempDir(), fmt.Sprintf("crashenc-%s-%d.log", dialect, time.Now().Unix()))
				if os.WriteFile(keep, b, 0o600) == nil {
					t.Logf("switchboard's log: %s", keep)
				}
			}
		}
	}()
	failedTxnsBefore := synapseFailedTxns()
	r.proc = sbproc.Start(t, bin, r.cfg, h.RegPath(), r.metricsPort, r.log)
	defer func() { r.proc.Kill9() }()
	if r.check, err = store.Open(ctx, dbURI); err != nil {
		t.Fatal(err)
	}
	defer r.check.Close()
	for _, g := range []id.UserID{r.sink, r.feeder} {
		if _, err := r.user.Mautrix().InviteUser(ctx, room, &mautrix.ReqInviteUser{UserID: g}); err != nil {
			t.Fatal(err)
		}
		matrixtest.WaitFor(t, time.Minute, g.String()+" joins", func() (bool, error) {
			return matrixtest.IsJoined(ctx, r.user.Mautrix(), room, g)
		})
	}
	ready := time.Since(start)

	sent := r.sendWithKills(ctx, feed)
	feed.Released.Store(encCrashRemote)
	sent = r.awaitHandled(ctx, sent)
	r.awaitRemote(ctx)
	r.settle = time.Since(start) - ready - r.sendTime
	time.Sleep(2 * time.Second) // let any late duplicate show up before counting

	toModule := r.countToModule(ctx, sent)
	toMatrix := r.countToMatrix(ctx)
	logText, _ := os.ReadFile(r.log.Name())
	t.Logf("%s on synapse encrypted: Synapse failed %d transactions to the killed Switchboard (it drops their to-device events, room keys among them); the core requested %d missing room keys",
		dialect, synapseFailedTxns()-failedTxnsBefore, strings.Count(string(logText), "Requested the missing room key"))
	t.Logf("%s on synapse encrypted: set-up %s, sending %d messages took %s, everything handled, sent and decrypted %s later (kills at %d/%d/%d/%d remote messages sent)",
		dialect, ready.Round(100*time.Millisecond), encCrashEvents, r.sendTime.Round(100*time.Millisecond), r.settle.Round(100*time.Millisecond),
		r.remoteSentAtKill[0], r.remoteSentAtKill[1], r.remoteSentAtKill[2], r.remoteSentAtKill[3])
	t.Logf("%s on synapse encrypted: %d kills; Matrix->module: %d events, %d lost, %d doubled, %d undecryptable (%d redelivered after a kill, deduplicated by event ID; %d held by the homeserver until a failed transaction); remote->Matrix: %d messages, %d lost, %d doubled, %d undecryptable (%d first undecryptable, decrypted when the key arrived)",
		dialect, len(r.killedAt), len(sent), toModule.lost, toModule.doubled, toModule.undecryptable, toModule.redelivered, r.heldBySynapse,
		encCrashRemote, toMatrix.lost, toMatrix.doubled, toMatrix.undecryptable, toMatrix.late)
	if toModule.lost+toModule.doubled+toModule.undecryptable+toMatrix.lost+toMatrix.doubled+toMatrix.undecryptable != 0 {
		t.Fatalf("Matrix->module: lost %d doubled %d undecryptable %d; remote->Matrix: lost %d doubled %d undecryptable %d",
			toModule.lost, toModule.doubled, toModule.undecryptable, toMatrix.lost, toMatrix.doubled, toMatrix.undecryptable)
	}
}

// sendWithKills sends the user's messages as fast as the client can while the feed
// releases the remote messages in step, and kills Switchboard after each fifth of them.
// Each kill then falls where the user's client starts a new Megolm session (mautrix
// rotates after 100 messages), so the new room key's to-device event is on its way while
// Switchboard is down or starting: the case a restart must not lose.
func (r *encCrashRun) sendWithKills(ctx context.Context, feed *testmodule.Feed) []sentMessage {
	t := r.t
	var (
		mu      sync.Mutex
		sent    = make([]sentMessage, 0, encCrashEvents)
		count   atomic.Int64
		sendErr error
	)
	sendDone := make(chan struct{})
	sendStart := time.Now()
	go func() {
		defer close(sendDone)
		for i := 0; i < encCrashEvents; i++ {
			body := "m-" + strconv.Itoa(i)
			eid, err := r.user.Send(ctx, r.room, event.EventMessage, &event.MessageEventContent{MsgType: event.MsgText, Body: body})
			if err != nil {
				sendErr = err
				return
			}
			mu.Lock()
			sent = append(sent, sentMessage{eventID: eid, body: body, at: time.Now()})
			mu.Unlock()
			count.Add(1)
			feed.Released.Store(int64((i + 1) * encCrashRemote / encCrashEvents))
		}
	}()
	for k := 1; k <= encCrashKills; k++ {
	wait:
		for count.Load() < int64(k*encCrashEvents/(encCrashKills+1)) {
			select {
			case <-sendDone:
				break wait
			case <-time.After(50 * time.Millisecond):
			}
		}
		r.proc.Kill9()
		r.killedAt = append(r.killedAt, time.Now())
		r.remoteSentAtKill = append(r.remoteSentAtKill, r.outboxSent(ctx))
		r.proc = sbproc.Start(t, r.bin, r.cfg, r.h.RegPath(), r.metricsPort, r.log)
	}
	<-sendDone
	r.sendTime = time.Since(sendStart)
	if sendErr != nil {
		t.Fatalf("sending as the user after %d messages: %v", count.Load(), sendErr)
	}
	if count.Load() < encCrashEvents/(encCrashKills+1) {
		t.Fatalf("only %d messages sent", count.Load())
	}
	return sent
}

// outboxSent counts the remote messages Switchboard has sent.
func (r *encCrashRun) outboxSent(ctx context.Context) int {
	var n int
	_ = r.check.DB().QueryRowContext(ctx, `SELECT COUNT(*) FROM outbox WHERE module = $1 AND state = 'sent'`, testmodule.ID).Scan(&n)
	return n
}

// awaitHandled waits until the module handled every sent event. Synapse can hold a
// transaction unsent after a recovery (see internal/e2e's testCrashKill9): then a kick —
// a failed transaction — makes its recoverer send the held one. The kicks are sent too.
func (r *encCrashRun) awaitHandled(ctx context.Context, sent []sentMessage) []sentMessage {
	t := r.t
	for kicks := 0; ; kicks++ {
		var effects map[string]int
		// Progress is the number of unfinished events; an undecryptable one finishes only
		// after the decrypt timeout, so a stall must last longer than that.
		last, lastAt, start := -1, time.Now(), time.Now()
		for time.Since(start) < 5*time.Minute && time.Since(lastAt) < 2*time.Minute {
			var err error
			effects, err = testmodule.Effects(ctx, r.check)
			n := len(r.unfinished(ctx, missingSent(sent, effects)))
			if err == nil && n == 0 {
				return sent
			}
			if n != last {
				last, lastAt = n, time.Now()
			}
			time.Sleep(200 * time.Millisecond)
		}
		missing := r.unfinished(ctx, missingSent(sent, effects))
		if len(missing) == 0 {
			return sent
		}
		held := r.synapseHeld(ctx, missing)
		if held == 0 || kicks == 3 {
			r.reportUnhandled(ctx, sent, missing)
			t.Fatalf("%d of %d events never handled", len(missing), len(sent))
		}
		r.heldBySynapse += held
		t.Logf("Synapse holds %d unhandled events in unsent appservice transactions; making a transaction fail so that its recoverer sends them", held)
		r.proc.Kill9()
		body := "kick-" + strconv.Itoa(kicks)
		eid, err := r.user.Send(ctx, r.room, event.EventMessage, &event.MessageEventContent{MsgType: event.MsgText, Body: body})
		if err != nil {
			t.Fatal(err)
		}
		sent = append(sent, sentMessage{eventID: eid, body: body, at: time.Now()})
		time.Sleep(time.Second) // Synapse's attempt fails and starts its recoverer
		r.proc = sbproc.Start(t, r.bin, r.cfg, r.h.RegPath(), r.metricsPort, r.log)
	}
}

// unfinished returns the events of missing the core has not given up on (failed in the
// journal, e.g. undecryptable): those are finished, and counted as undecryptable.
func (r *encCrashRun) unfinished(ctx context.Context, missing map[id.EventID]bool) map[id.EventID]bool {
	if len(missing) == 0 {
		return missing
	}
	recs, err := r.check.InboxRecords(ctx, "")
	if err != nil {
		return missing
	}
	out := make(map[id.EventID]bool, len(missing))
	for eid := range missing {
		out[eid] = true
	}
	for _, rec := range recs {
		if rec.State == "failed" {
			delete(out, id.EventID(rec.EventID))
		}
	}
	return out
}

// missingSent returns the sent events the module has not handled.
func missingSent(sent []sentMessage, effects map[string]int) map[id.EventID]bool {
	out := map[id.EventID]bool{}
	for _, s := range sent {
		if effects[s.eventID.String()] == 0 {
			out[s.eventID] = true
		}
	}
	return out
}

// synapseHeld counts the events of missing that Synapse keeps in unsent appservice
// transactions (its table application_services_txns).
func (r *encCrashRun) synapseHeld(ctx context.Context, missing map[id.EventID]bool) int {
	db, err := sql.Open("sqlite", "file:"+filepath.Join(workDir, "synapse", "synapse", "homeserver.db")+"?_pragma=busy_timeout(5000)")
	if err != nil {
		r.t.Logf("synapse database: %v", err)
		return 0
	}
	defer db.Close()
	rows, err := db.QueryContext(ctx, `SELECT event_ids FROM application_services_txns WHERE as_id = ?`, r.h.Reg().ID)
	if err != nil {
		r.t.Logf("synapse database: %v", err)
		return 0
	}
	defer rows.Close()
	held := 0
	for rows.Next() {
		var raw string
		var ids []id.EventID
		if rows.Scan(&raw) != nil || json.Unmarshal([]byte(raw), &ids) != nil {
			continue
		}
		for _, eid := range ids {
			if missing[eid] {
				held++
			}
		}
	}
	return held
}

// reportUnhandled logs what the core's journal knows of the first unhandled events.
func (r *encCrashRun) reportUnhandled(ctx context.Context, sent []sentMessage, missing map[id.EventID]bool) {
	n := 0
	for i, s := range sent {
		if !missing[s.eventID] {
			continue
		}
		if n++; n > 10 {
			break
		}
		var state, kind, lastError string
		var attempts int
		recs, err := r.check.InboxRecords(ctx, s.eventID.String())
		if len(recs) > 0 {
			state, kind, attempts, lastError = recs[0].State, recs[0].Kind, recs[0].Attempts, recs[0].LastError
		}
		var sinceKill []string
		for _, k := range r.killedAt {
			sinceKill = append(sinceKill, s.at.Sub(k).Round(time.Millisecond).String())
		}
		r.t.Logf("unhandled: message %d %s sent at %s (relative to the kills %v): journal state %q kind %q attempts %d error %q (%v)",
			i, s.eventID, s.at.Format("15:04:05.000"), sinceKill, state, kind, attempts, lastError, err)
	}
}

// awaitRemote waits until the outbox has sent every remote message and the client has
// decrypted every one of them (or nothing changed for a minute).
func (r *encCrashRun) awaitRemote(ctx context.Context) {
	matrixtest.WaitFor(r.t, 4*time.Minute, "every remote message to be sent", func() (bool, error) {
		n, err := r.check.OutboxDepth(ctx)
		if err != nil {
			return false, err
		}
		return n == 0 && r.outboxSent(ctx) >= encCrashRemote, nil
	})
	last, lastAt := -1, time.Now()
	for time.Since(lastAt) < time.Minute {
		n := len(decryptedRemote(r.user.Received(r.room), r.feeder))
		if n >= encCrashRemote {
			return
		}
		if n != last {
			last, lastAt = n, time.Now()
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// decryptedRemote returns body -> the distinct event IDs the client decrypted it from,
// for the messages of sender.
func decryptedRemote(received []e2eeclient.Message, sender id.UserID) map[string]map[id.EventID]bool {
	out := map[string]map[id.EventID]bool{}
	for _, m := range received {
		if m.Event.Sender != sender || m.DecryptError != nil || m.Event.Type != event.EventMessage {
			continue
		}
		b := m.Event.Content.AsMessage().Body
		if out[b] == nil {
			out[b] = map[id.EventID]bool{}
		}
		out[b][m.Event.ID] = true
	}
	return out
}

// counts are one direction's results.
type counts struct{ lost, doubled, undecryptable, redelivered, late int }

// countToModule counts the user's messages as the module handled them: each event ID
// once, with its plaintext, and none failed in the journal.
func (r *encCrashRun) countToModule(ctx context.Context, sent []sentMessage) counts {
	t := r.t
	var c counts
	effects, err := testmodule.Effects(ctx, r.check)
	if err != nil {
		t.Fatal(err)
	}
	bodies := bodiesHandled(t, r.check, r.room)
	failedIDs := map[id.EventID]bool{}
	for _, s := range sent {
		failedIDs[s.eventID] = true
	}
	failedIDs = r.unfinished(ctx, failedIDs) // the sent events not failed in the journal
	ids := map[string]bool{}
	for _, s := range sent {
		ids[s.eventID.String()] = true
		switch n := effects[s.eventID.String()]; {
		case n == 0 && failedIDs[s.eventID]:
			c.lost++
		case n > 1:
			c.redelivered++
		}
		if effects[s.eventID.String()] > 0 && bodies[s.body] == 0 {
			c.undecryptable++ // handled, but not with its plaintext
			t.Logf("event %s handled without its plaintext %q", s.eventID, s.body)
		}
	}
	for eid := range effects {
		if !ids[eid] {
			c.doubled++ // a row for an event nobody sent
			t.Logf("effect for an event not sent: %s", eid)
		}
	}
	// A body handled under more than one event ID is a message handled twice.
	rows, err := r.check.DB().QueryContext(ctx, `SELECT body, COUNT(*) FROM testmod_effects WHERE room_id = $1 GROUP BY body HAVING COUNT(*) > 1`, r.room.String())
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	for rows.Next() {
		var b string
		var n int
		if err := rows.Scan(&b, &n); err != nil {
			t.Fatal(err)
		}
		c.doubled += n - 1
		t.Logf("body %q handled under %d event IDs", b, n)
	}
	r.logUndecryptableRuns(sent, effects, failedIDs)
	recs, err := r.check.InboxRecords(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	failed := 0
	for _, rec := range recs {
		if rec.State != "failed" {
			continue
		}
		if failed++; failed <= 10 {
			t.Logf("failed in the journal: %s (%s): %s", rec.EventID, rec.Kind, rec.LastError)
		}
	}
	c.undecryptable += failed
	return c
}

// logUndecryptableRuns logs the runs of consecutive messages the module never got
// although the core finished them (failed in the journal), each with the time its first
// message was sent after the last kill before it: a run that starts with the first message
// of a new Megolm session (every 100th) just after a kill is a room key lost in the kill.
func (r *encCrashRun) logUndecryptableRuns(sent []sentMessage, effects map[string]int, notFailed map[id.EventID]bool) {
	for i := 0; i < len(sent); i++ {
		if effects[sent[i].eventID.String()] > 0 || notFailed[sent[i].eventID] {
			continue
		}
		j := i
		for j+1 < len(sent) && effects[sent[j+1].eventID.String()] == 0 && !notFailed[sent[j+1].eventID] {
			j++
		}
		after := "before the first kill"
		for k := len(r.killedAt) - 1; k >= 0; k-- {
			if !sent[i].at.Before(r.killedAt[k]) {
				after = fmt.Sprintf("%s after kill %d", sent[i].at.Sub(r.killedAt[k]).Round(time.Millisecond), k+1)
				break
			}
		}
		r.t.Logf("undecryptable for the module: messages %d-%d (%d), the first sent %s", i, j, j-i+1, after)
		i = j
	}
}

// countToMatrix counts the remote messages as the user's client received them: each
// decrypted exactly once, from one event; an event first undecryptable must end decrypted.
func (r *encCrashRun) countToMatrix(ctx context.Context) counts {
	t := r.t
	var c counts
	received := r.user.Received(r.room)
	dec := decryptedRemote(received, r.feeder)
	decryptedIDs := map[id.EventID]int{}
	failedFirst := map[id.EventID]bool{}
	others := map[string]int{}
	for _, m := range received {
		switch {
		case m.Event.Sender != r.feeder:
			if m.Event.Sender != r.user.UserID() {
				others[m.Event.Sender.String()+" "+m.Event.Type.Type]++
			}
		case m.DecryptError != nil:
			failedFirst[m.Event.ID] = true
		default:
			decryptedIDs[m.Event.ID]++
		}
	}
	for eid, n := range decryptedIDs {
		if n > 1 {
			c.doubled += n - 1
			t.Logf("event %s recorded decrypted %d times", eid, n)
		}
	}
	for eid := range failedFirst {
		if decryptedIDs[eid] == 0 {
			c.undecryptable++
		} else {
			c.late++
		}
	}
	for i := 1; i <= encCrashRemote; i++ {
		rid := "remote-" + strconv.Itoa(i)
		switch n := len(dec[rid]); {
		case n == 0:
			c.lost++
			row, err := r.check.GetOutbox(ctx, testmodule.ID, rid)
			t.Logf("not decrypted: %s: outbox state %s event %s attempts %d (%v)", rid, row.State, row.EventID, row.Attempts, err)
		case n > 1:
			c.doubled += n - 1
			t.Logf("doubled %s: events %v", rid, dec[rid])
		}
	}
	if c.undecryptable > 0 {
		c.lost -= min(c.lost, c.undecryptable) // an undecryptable message is counted once, as undecryptable
		for _, m := range received {
			if m.Event.Sender == r.feeder && m.DecryptError != nil && decryptedIDs[m.Event.ID] == 0 {
				t.Logf("undecryptable: %s: %v", m.Event.ID, m.DecryptError)
			}
		}
	}
	// The homeserver's view: one event of the feeder's per remote message.
	evts, err := matrixtest.RoomEvents(ctx, r.user.Mautrix(), r.room, event.EventEncrypted, event.EventMessage)
	if err != nil {
		t.Fatal(err)
	}
	fromFeeder := 0
	for _, e := range evts {
		if e.Sender == r.feeder {
			fromFeeder++
		}
	}
	// The core's notices about undecryptable events come from the feeder too (the room's
	// failure sender); they are not remote messages.
	notices := 0
	for b, ids := range dec {
		if !strings.HasPrefix(b, "remote-") {
			notices += len(ids)
		}
	}
	if notices > 0 {
		t.Logf("the feeder also sent %d notices (e.g. about undecryptable events)", notices)
	}
	if fromFeeder != encCrashRemote+notices {
		t.Logf("the room has %d events from the feeder, want %d remote messages and %d notices", fromFeeder, encCrashRemote, notices)
		if extra := fromFeeder - encCrashRemote - notices; extra > 0 && c.doubled == 0 {
			c.doubled = extra
		}
	}
	if len(others) > 0 {
		var s []string
		for k, n := range others {
			s = append(s, fmt.Sprintf("%s: %d", k, n))
		}
		t.Logf("other messages in the room (notices?): %s", strings.Join(s, ", "))
	}
	return c
}

// synapseFailedTxns counts the appservice transactions Synapse could not deliver so far.
func synapseFailedTxns() int {
	raw, _ := os.ReadFile(filepath.Join(workDir, "synapse", "synapse", "synapse.log"))
	n := 0
	for _, line := range strings.Split(string(raw), "\n") {
		if strings.Contains(line, "Error sending request to") && strings.Contains(line, "/_matrix/app/v1/transactions/") {
			n++
		}
	}
	return n
}

// logSynapseAppserviceFailures logs Synapse's lines about failed appservice transactions
// and its recoverer: to-device events (room keys) of a failed transaction are not sent
// again (synapse/storage/databases/main/appservice.py, get_oldest_unsent_txn).
func logSynapseAppserviceFailures(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join(workDir, "synapse", "synapse", "synapse.log"))
	if err != nil {
		t.Logf("synapse log: %v", err)
		return
	}
	var out []string
	for _, line := range strings.Split(string(raw), "\n") {
		if strings.Contains(line, "Starting recoverer") || strings.Contains(line, "Successfully recovered") ||
			strings.Contains(line, "AS request failed") || strings.Contains(line, "Error sending request to") {
			out = append(out, line)
		}
	}
	t.Logf("synapse's failed appservice transactions and recoveries (last 40):\n%s", strings.Join(out[max(0, len(out)-40):], "\n"))
}
