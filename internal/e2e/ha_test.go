package e2e

import (
	"context"
	"database/sql"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"maunium.net/go/mautrix"
	"maunium.net/go/mautrix/id"

	"github.com/switchboard-matrix/switchboard/internal/store"
	"github.com/switchboard-matrix/switchboard/internal/store/storetest"
	"github.com/switchboard-matrix/switchboard/internal/testmodule"
	"github.com/switchboard-matrix/switchboard/internal/testpeer/haproxy"
	"github.com/switchboard-matrix/switchboard/internal/testpeer/homeserver"
	"github.com/switchboard-matrix/switchboard/internal/testpeer/peerproc"
	"github.com/switchboard-matrix/switchboard/internal/testpeer/sbproc"
)

const testBinary = "github.com/switchboard-matrix/switchboard/internal/testmodule/cmd/switchboard-test"

// putTxn sends a one-event transaction straight to a node's transaction endpoint.
func putTxn(t *testing.T, h homeserver.HS, n *haNode, txnID string) *http.Response {
	t.Helper()
	body := `{"events":[{"event_id":"$` + txnID + `","room_id":"!ha:localhost","type":"m.room.message","sender":"@x:localhost","origin_server_ts":1,"content":{"msgtype":"m.text","body":"x"}}]}`
	req, _ := http.NewRequest(http.MethodPut, fmt.Sprintf("http://127.0.0.1:%d/_matrix/app/v1/transactions/%s", n.as, txnID), strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+h.Reg().ServerToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp
}

// leaderEpoch reads ha_leader's epoch.
func leaderEpoch(t *testing.T, dbURI string) int64 {
	t.Helper()
	db, err := sql.Open("pgx", dbURI)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var epoch int64
	if err := db.QueryRowContext(ctx, `SELECT epoch FROM ha_leader WHERE id = 1`).Scan(&epoch); err != nil {
		t.Fatal(err)
	}
	return epoch
}

// TestHATakeover: two real processes with high_availability on one PostgreSQL database.
// The first leads; the second waits as a standby (readiness 503 "standby", its
// transaction endpoint 503 with Retry-After). When the leader is killed with SIGKILL the
// standby takes over: it is ready after the fence delay, leads with the next epoch and
// journals a transaction.
func TestHATakeover(t *testing.T) {
	h := onHS(t, homeserver.Dendrite)
	bin := sbproc.Build(t, workDir, testBinary)
	dbURI := storetest.NewDatabaseURI(t, store.Postgres)
	bPort, err := peerproc.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	alice := newUser(t, h, "ops")
	ops, err := alice.CreateRoom(ctx, &mautrix.ReqCreateRoom{Invite: []id.UserID{id.NewUserID("switchboard", domain)}})
	if err != nil {
		t.Fatal(err)
	}
	announce := fmt.Sprintf("  announce_room: %q\n", ops.RoomID)
	a := newHANode(t, h, bin, "a", dbURI, h.AppservicePort(), "", announce)
	b := newHANode(t, h, bin, "b", dbURI, bPort, "", announce)
	a.start(t)
	a.proc.WaitReady(t, a.metrics, time.Minute)
	b.start(t)
	b.waitStandby(t)
	if page := b.get(t, "/status"); !strings.Contains(page, "standby: another Switchboard instance leads") {
		t.Errorf("the standby's status page does not say it is a standby:\n%s", page)
	}
	if m := b.get(t, "/metrics"); !strings.Contains(m, "switchboard_leader 0") {
		t.Error("the standby's metrics lack switchboard_leader 0")
	}
	if resp := putTxn(t, h, b, "ha1"); resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" {
		t.Errorf("a transaction to the standby: %d, Retry-After %q; want 503 with Retry-After", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
	killedAt := time.Now()
	a.kill9()
	b.proc.WaitReady(t, b.metrics, time.Minute)
	t.Logf("takeover: the standby was ready %s after the leader's kill (fence delay 2s)", time.Since(killedAt).Round(time.Millisecond))
	if resp := putTxn(t, h, b, "ha2"); resp.StatusCode != http.StatusOK {
		t.Errorf("a transaction to the new leader: %d, want 200", resp.StatusCode)
	}
	if m := b.get(t, "/metrics"); !strings.Contains(m, "switchboard_leader 1") {
		t.Error("the new leader's metrics lack switchboard_leader 1")
	}
	if epoch := leaderEpoch(t, dbURI); epoch != 2 {
		t.Errorf("epoch = %d, want 2", epoch)
	}
	// The first leader's notice is in the room if the bot had joined by then; the second's
	// must be (the bot joined while the first led).
	waitFor(t, 30*time.Second, "the takeover notice", func() (bool, error) {
		msgs, err := roomMessages(ctx, alice, ops.RoomID)
		if err != nil {
			return false, err
		}
		for _, e := range msgs {
			if strings.Contains(e.Content.AsMessage().Body, "leads now (epoch 2)") {
				return true, nil
			}
		}
		return false, nil
	})
}

// haLoad is the load of TestHAKill9Load.
var haLoad = struct{ events, remote, kills int }{events: 2000, remote: 2000, kills: 10}

// TestHAKill9Load: two processes on one PostgreSQL database behind HAProxy, which the
// homeserver's registration points at and which sends to whichever is ready. Under load
// both ways (2000 events from a Matrix user to the test module, 2000 messages from the
// fake remote network to Matrix) the leader is killed with SIGKILL ten times, each time
// the other one; the killed one starts again as a standby. Every event is handled, and
// every remote message is in the room, exactly once; the takeover times (kill to the first
// event handled by the new leader) are printed.
func TestHAKill9Load(t *testing.T) {
	if testing.Short() {
		t.Skip("HA load test skipped in -short mode")
	}
	h := onHS(t, homeserver.Dendrite)
	bin := sbproc.Build(t, workDir, testBinary)
	dbURI := storetest.NewDatabaseURI(t, store.Postgres)
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	alice := newUser(t, h, "ha")
	sink := id.NewUserID(testmodule.GhostPrefix+"sink", domain)
	feeder := id.NewUserID(testmodule.GhostPrefix+"feeder", domain)
	room, err := alice.CreateRoom(ctx, &mautrix.ReqCreateRoom{Preset: "public_chat"})
	if err != nil {
		t.Fatal(err)
	}
	feed, effects := &testmodule.Feed{}, &testmodule.EffectLog{}
	mux := http.NewServeMux()
	mux.Handle("/feed", feed)
	mux.Handle("/effect", effects)
	remote := httptest.NewServer(mux)
	defer remote.Close()
	modules := fmt.Sprintf("  testmod:\n    enabled: true\n    remote_url: %s/feed\n    effect_url: %s/effect\n    room: %q\n    ghost: feeder\n",
		remote.URL, remote.URL, room.RoomID)
	var nodes [2]*haNode
	for i, name := range []string{"a", "b"} {
		port, err := peerproc.FreePort()
		if err != nil {
			t.Fatal(err)
		}
		nodes[i] = newHANode(t, h, bin, name, dbURI, port, modules, "")
	}
	front := haproxy.StartTest(t, haproxy.Options{
		Listen: fmt.Sprintf("127.0.0.1:%d", h.AppservicePort()),
		Backends: []haproxy.Backend{
			{Name: "a", Addr: fmt.Sprintf("127.0.0.1:%d", nodes[0].as), CheckPort: nodes[0].metrics},
			{Name: "b", Addr: fmt.Sprintf("127.0.0.1:%d", nodes[1].as), CheckPort: nodes[1].metrics},
		},
	})
	_ = front
	nodes[0].start(t)
	nodes[0].proc.WaitReady(t, nodes[0].metrics, time.Minute)
	nodes[1].start(t)
	nodes[1].waitStandby(t)
	if _, err := alice.InviteUser(ctx, room.RoomID, &mautrix.ReqInviteUser{UserID: sink}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 60*time.Second, "the test ghost to join", func() (bool, error) { return isJoined(ctx, alice, room.RoomID, sink) })

	sent := make([]id.EventID, 0, haLoad.events)
	var sendErr error
	sendDone := make(chan struct{})
	sendStart := time.Now()
	go func() {
		defer close(sendDone)
		for i := 0; i < haLoad.events; i++ {
			resp, err := alice.SendText(ctx, room.RoomID, "m-"+strconv.Itoa(i))
			if err != nil {
				sendErr = err
				return
			}
			sent = append(sent, resp.EventID)
			feed.Released.Store(int64((i + 1) * haLoad.remote / haLoad.events))
		}
	}()
	leader := 0
	var takeovers []time.Duration
	for k := 0; k < haLoad.kills; k++ {
		time.Sleep(1500 * time.Millisecond)
		old, next := nodes[leader], nodes[1-leader]
		killedAt := time.Now()
		old.kill9()
		next.proc.WaitReady(t, next.metrics, time.Minute)
		pid := next.proc.Pid()
		// The first event the new leader handles marks the takeover; when no event is
		// left to handle, its readiness does.
		var took time.Duration
		deadline := time.Now().Add(30 * time.Second)
		for took == 0 && time.Now().Before(deadline) {
			for _, e := range effects.Effects() {
				if e.PID == pid && e.At.After(killedAt) {
					took = e.At.Sub(killedAt)
					break
				}
			}
			select {
			case <-sendDone:
				if took == 0 {
					took = time.Since(killedAt)
				}
			case <-time.After(50 * time.Millisecond):
			}
		}
		takeovers = append(takeovers, took)
		old.start(t)
		old.waitStandby(t)
		leader = 1 - leader
	}
	<-sendDone
	sendTime := time.Since(sendStart)
	if sendErr != nil {
		t.Fatalf("sending as the user: %v", sendErr)
	}
	feed.Released.Store(int64(haLoad.remote))

	check, err := store.Open(ctx, dbURI)
	if err != nil {
		t.Fatal(err)
	}
	defer check.Close()
	var handled map[string]int
	if !waitForProgress(4*time.Minute, time.Minute, func() (bool, int, error) {
		handled, err = testmodule.Effects(ctx, check)
		return len(handled) >= len(sent), len(handled), err
	}) {
		t.Fatalf("%d of %d events never handled", len(missingEvents(sent, handled)), len(sent))
	}
	waitFor(t, 4*time.Minute, "every remote message to be sent", func() (bool, error) {
		n, err := check.OutboxDepth(ctx)
		if err != nil {
			return false, err
		}
		var done int
		err = check.DB().QueryRowContext(ctx, `SELECT COUNT(*) FROM outbox WHERE module = $1 AND state = 'sent'`, testmodule.ID).Scan(&done)
		return n == 0 && done >= haLoad.remote, err
	})
	time.Sleep(2 * time.Second) // let any late duplicate show up before counting

	lost, redelivered := 0, 0
	for _, eid := range sent {
		n, ok := handled[eid.String()]
		if !ok {
			lost++
		}
		if n > 1 {
			redelivered++
		}
	}
	doubled := len(handled) - (len(sent) - lost)
	evts, err := roomMessages(ctx, alice, room.RoomID)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]int{}
	for _, e := range evts {
		if e.Sender == feeder {
			seen[e.Content.AsMessage().Body]++
		}
	}
	remoteLost, remoteDoubled := 0, 0
	for i := 1; i <= haLoad.remote; i++ {
		rid := "remote-" + strconv.Itoa(i)
		if seen[rid] == 0 {
			// Dendrite's /messages pagination can skip an event at a page boundary.
			if _, eid, err := check.MessageByRemote(ctx, testmodule.ID, rid); err == nil {
				if evt, err := alice.GetEvent(ctx, room.RoomID, id.EventID(eid)); err == nil && evt.Sender == feeder {
					seen[rid] = 1
				}
			}
		}
		switch n := seen[rid]; {
		case n == 0:
			remoteLost++
		case n > 1:
			remoteDoubled += n - 1
		}
	}
	sorted := slices.Clone(takeovers)
	slices.Sort(sorted)
	t.Logf("HA behind HAProxy on %s: %d kills of the leader, sending took %s", h.Kind(), haLoad.kills, sendTime.Round(100*time.Millisecond))
	t.Logf("takeover (kill to the first event handled by the new leader): median %s, max %s, all %v",
		sorted[len(sorted)/2].Round(time.Millisecond), sorted[len(sorted)-1].Round(time.Millisecond), roundAll(takeovers))
	t.Logf("Matrix->module: %d events, %d lost, %d doubled (%d redelivered after a kill, deduplicated by event ID); remote->Matrix: %d messages, %d lost, %d doubled",
		len(sent), lost, doubled, redelivered, haLoad.remote, remoteLost, remoteDoubled)
	if lost != 0 || doubled != 0 || remoteLost != 0 || remoteDoubled != 0 {
		t.Fatalf("lost or doubled: events lost %d doubled %d; remote lost %d doubled %d", lost, doubled, remoteLost, remoteDoubled)
	}
}

func roundAll(ds []time.Duration) []time.Duration {
	out := make([]time.Duration, len(ds))
	for i, d := range ds {
		out[i] = d.Round(10 * time.Millisecond)
	}
	return out
}

// TestHAPartition: the leader's connections to PostgreSQL go through a TCP proxy that the
// test cuts while events flow. The leader stops (its lock session is gone: it exits with
// status 75) and the standby takes over; every side effect of the old leader (a request
// to the fake remote network per event) comes before the new leader's first, and every
// event is handled.
func TestHAPartition(t *testing.T) {
	if testing.Short() {
		t.Skip("HA partition test skipped in -short mode")
	}
	h := onHS(t, homeserver.Dendrite)
	bin := sbproc.Build(t, workDir, testBinary)
	dbURI := storetest.NewDatabaseURI(t, store.Postgres)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	u, err := url.Parse(dbURI)
	if err != nil {
		t.Fatal(err)
	}
	proxy := newTCPProxy(t, u.Host)
	viaProxy := *u
	viaProxy.Host = proxy.addr()

	alice := newUser(t, h, "part")
	sink := id.NewUserID(testmodule.GhostPrefix+"sink", domain)
	room, err := alice.CreateRoom(ctx, &mautrix.ReqCreateRoom{Preset: "public_chat"})
	if err != nil {
		t.Fatal(err)
	}
	effects := &testmodule.EffectLog{}
	remote := httptest.NewServer(effects)
	defer remote.Close()
	modules := fmt.Sprintf("  testmod:\n    enabled: true\n    effect_url: %s\n    room: %q\n    ghost: feeder\n", remote.URL, room.RoomID)
	bPort, err := peerproc.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	aPort, err := peerproc.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	a := newHANode(t, h, bin, "a", viaProxy.String(), aPort, modules, "")
	b := newHANode(t, h, bin, "b", dbURI, bPort, modules, "")
	haproxy.StartTest(t, haproxy.Options{
		Listen: fmt.Sprintf("127.0.0.1:%d", h.AppservicePort()),
		Backends: []haproxy.Backend{
			{Name: "a", Addr: fmt.Sprintf("127.0.0.1:%d", a.as), CheckPort: a.metrics},
			{Name: "b", Addr: fmt.Sprintf("127.0.0.1:%d", b.as), CheckPort: b.metrics},
		},
	})
	a.start(t)
	a.proc.WaitReady(t, a.metrics, time.Minute)
	b.start(t)
	b.waitStandby(t)
	if _, err := alice.InviteUser(ctx, room.RoomID, &mautrix.ReqInviteUser{UserID: sink}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 60*time.Second, "the test ghost to join", func() (bool, error) { return isJoined(ctx, alice, room.RoomID, sink) })

	const events = 300
	sent := make([]id.EventID, 0, events)
	sendDone := make(chan error, 1)
	go func() {
		for i := 0; i < events; i++ {
			resp, err := alice.SendText(ctx, room.RoomID, "p-"+strconv.Itoa(i))
			if err != nil {
				sendDone <- err
				return
			}
			sent = append(sent, resp.EventID)
			time.Sleep(10 * time.Millisecond)
		}
		sendDone <- nil
	}()
	time.Sleep(time.Second)
	cutAt := time.Now()
	proxy.Cut()
	status, exited := a.proc.Exited(30 * time.Second)
	if !exited || status != 75 {
		t.Errorf("the partitioned leader: exited %v with status %d, want exit status 75", exited, status)
	}
	if exited {
		a.proc = nil
	}
	b.proc.WaitReady(t, b.metrics, time.Minute)
	if err := <-sendDone; err != nil {
		t.Fatalf("sending as the user: %v", err)
	}
	check, err := store.Open(ctx, dbURI)
	if err != nil {
		t.Fatal(err)
	}
	defer check.Close()
	var handled map[string]int
	if !waitForProgress(3*time.Minute, time.Minute, func() (bool, int, error) {
		handled, err = testmodule.Effects(ctx, check)
		return len(handled) >= len(sent), len(handled), err
	}) {
		t.Fatalf("%d of %d events never handled", len(missingEvents(sent, handled)), len(sent))
	}
	aPid, bPid := 0, b.proc.Pid()
	var lastA, firstB time.Time
	nA, nB := 0, 0
	for _, e := range effects.Effects() {
		switch {
		case e.PID == bPid:
			nB++
			if firstB.IsZero() {
				firstB = e.At
			}
		default:
			nA++
			aPid = e.PID
			lastA = e.At
		}
	}
	t.Logf("partition: cut at 0; the old leader (pid %d) made %d effects, its last at %s; the new leader (pid %d) made %d, its first at %s",
		aPid, nA, lastA.Sub(cutAt).Round(time.Millisecond), bPid, nB, firstB.Sub(cutAt).Round(time.Millisecond))
	if nB == 0 {
		t.Fatal("the new leader handled nothing")
	}
	if !lastA.Before(firstB) {
		t.Errorf("the old leader acted at %s, after the new leader's first effect at %s", lastA.Sub(cutAt), firstB.Sub(cutAt))
	}
}
