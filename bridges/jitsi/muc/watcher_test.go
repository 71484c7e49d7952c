package muc

import (
	"context"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/switchboard-matrix/switchboard/internal/testpeer/peerproc"
	"github.com/switchboard-matrix/switchboard/internal/testpeer/prosody"
)

// snapshot is one Handler call.
type snapshot struct {
	room      string
	occupants []Occupant
}

// recorder is a Handler that queues what it is given.
type recorder chan snapshot

func (r recorder) Occupants(_ context.Context, room string, occupants []Occupant) {
	r <- snapshot{room, occupants}
}

// next returns the next snapshot, failing t after a generous time without one.
func (r recorder) next(t *testing.T) snapshot {
	t.Helper()
	select {
	case s := <-r:
		return s
	case <-time.After(60 * time.Second):
		t.Fatal("no occupant list reported")
		return snapshot{}
	}
}

// expect checks that the next snapshot is want for room.
func (r recorder) expect(t *testing.T, room string, want ...Occupant) {
	t.Helper()
	if want == nil {
		want = []Occupant{}
	}
	got := r.next(t)
	if got.room != room || !reflect.DeepEqual(got.occupants, want) {
		t.Fatalf("reported %s: %+v\nwant        %s: %+v", got.room, got.occupants, room, want)
	}
}

const password = "secret-pw"

// startWatcher starts Prosody with the given accounts and a running Watcher on it.
func startWatcher(t *testing.T, users ...string) (*prosody.Server, *Watcher, recorder, context.Context) {
	t.Helper()
	srv := prosody.StartTest(t, prosody.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	t.Cleanup(cancel)
	for _, u := range append([]string{"watcher"}, users...) {
		if err := srv.Register(ctx, u, password); err != nil {
			t.Fatal(err)
		}
	}
	rec := make(recorder, 64)
	w, err := New(Config{Address: srv.C2SAddr, JID: "watcher@" + srv.Domain, Password: password, TLS: TLSNone}, srv.MUCDomain, rec)
	if err != nil {
		t.Fatal(err)
	}
	w.minBackoff, w.maxBackoff, w.rejoinDelay = 50*time.Millisecond, 500*time.Millisecond, 200*time.Millisecond
	log := zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.DebugLevel)
	rctx, rcancel := context.WithCancel(log.WithContext(ctx))
	done := make(chan error, 1)
	go func() { done <- w.Run(rctx) }()
	t.Cleanup(func() {
		rcancel()
		if err := <-done; !errors.Is(err, context.Canceled) {
			t.Errorf("Run returned %v", err)
		}
	})
	return srv, w, rec, ctx
}

func join(ctx context.Context, t *testing.T, srv *prosody.Server, user, room, nick string, opts prosody.JoinOptions) *prosody.Occupant {
	t.Helper()
	occ, err := srv.JoinMUC(ctx, user, password, room, nick, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { occ.Close() })
	return occ
}

func TestWatcherOccupants(t *testing.T) {
	srv, w, rec, ctx := startWatcher(t, "alice", "bob", "jicofo")
	w.Watch("conf1")
	w.Watch("Conf1") // the same room
	rec.expect(t, "conf1")
	if ok, err := w.Connected(); !ok || err != nil {
		t.Fatalf("Connected() = %v, %v", ok, err)
	}

	alice := join(ctx, t, srv, "alice", "conf1", "a1b2", prosody.JoinOptions{
		DisplayName: "Alice", IdentityID: "@alice:example.org", IdentityName: "Alice A."})
	wantAlice := Occupant{Nick: "a1b2", DisplayName: "Alice", UserID: "@alice:example.org", RealJID: alice.Sess.LocalAddr().String()}
	rec.expect(t, "conf1", wantAlice)

	// Jicofo's nick is ignored: the next list is Bob's arrival alone.
	join(ctx, t, srv, "jicofo", "conf1", "Focus", prosody.JoinOptions{})
	bob := join(ctx, t, srv, "bob", "conf1", "c3d4", prosody.JoinOptions{IdentityName: "Bob B."})
	wantBob := Occupant{Nick: "c3d4", DisplayName: "Bob B.", RealJID: bob.Sess.LocalAddr().String()}
	rec.expect(t, "conf1", wantAlice, wantBob)

	if err := alice.Leave(ctx); err != nil {
		t.Fatal(err)
	}
	rec.expect(t, "conf1", wantBob)
	if err := bob.WaitPresent(ctx, "switchboard"); err != nil {
		t.Fatal(err)
	}

	// Unwatch leaves the room; lists of it are no longer reported.
	w.Unwatch("conf1")
	w.Unwatch("conf1")
	if err := bob.WaitAbsent(ctx, "switchboard"); err != nil {
		t.Fatal(err)
	}
	if err := bob.Leave(ctx); err != nil {
		t.Fatal(err)
	}
	w.Watch("conf2")
	rec.expect(t, "conf2")
}

func TestWatcherReconnects(t *testing.T) {
	srv, w, rec, ctx := startWatcher(t, "bob")
	w.Watch("conf1")
	rec.expect(t, "conf1")
	bob := join(ctx, t, srv, "bob", "conf1", "bob", prosody.JoinOptions{DisplayName: "Bob"})
	rec.expect(t, "conf1", Occupant{Nick: "bob", DisplayName: "Bob", RealJID: bob.Sess.LocalAddr().String()})

	if err := srv.Restart(ctx); err != nil {
		t.Fatal(err)
	}
	// Bob's session died with the server; he comes back. The watcher, reconnected,
	// reports the room afresh: empty if it rejoined before Bob, then with Bob. (Before
	// the restart, the room may have reported Bob's leave.)
	bob2 := join(ctx, t, srv, "bob", "conf1", "bob", prosody.JoinOptions{DisplayName: "Bob"})
	want := []Occupant{{Nick: "bob", DisplayName: "Bob", RealJID: bob2.Sess.LocalAddr().String()}}
	for {
		s := rec.next(t)
		if s.room != "conf1" {
			t.Fatalf("reported room %q", s.room)
		}
		if reflect.DeepEqual(s.occupants, want) {
			break
		}
		if len(s.occupants) != 0 {
			t.Fatalf("reported %+v, want none or %+v", s.occupants, want)
		}
	}
	if err := bob2.WaitPresent(ctx, "switchboard"); err != nil {
		t.Fatal(err)
	}
	if ok, err := w.Connected(); !ok || err != nil {
		t.Fatalf("Connected() = %v, %v", ok, err)
	}
}

func TestWatcherNickTaken(t *testing.T) {
	srv, w, rec, ctx := startWatcher(t, "mallory")
	// Someone holds the watcher's nick: the watcher joins as switchboard-2 and reports
	// the other one.
	m := join(ctx, t, srv, "mallory", "conf3", "switchboard", prosody.JoinOptions{})
	w.Watch("conf3")
	rec.expect(t, "conf3", Occupant{Nick: "switchboard", DisplayName: "switchboard", RealJID: m.Sess.LocalAddr().String()})
	if err := m.WaitPresent(ctx, "switchboard-2"); err != nil {
		t.Fatal(err)
	}
}

func TestWatcherWrongPassword(t *testing.T) {
	srv := prosody.StartTest(t, prosody.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := srv.Register(ctx, "watcher", password); err != nil {
		t.Fatal(err)
	}
	w, err := New(Config{Address: srv.C2SAddr, JID: "watcher@" + srv.Domain, Password: "wrong-" + password, TLS: TLSNone}, srv.MUCDomain, make(recorder, 1))
	if err != nil {
		t.Fatal(err)
	}
	_, _, err = w.dial(ctx)
	if !errors.Is(err, ErrAuth) {
		t.Fatalf("dial with a wrong password: %v, want ErrAuth", err)
	}
}

// TestWatcherSlixmppOccupant runs the Prosody test peer's slixmpp occupant
// (internal/testpeer/prosody/slix_occupant.py) against the watcher.
func TestWatcherSlixmppOccupant(t *testing.T) {
	peerproc.RequireOrSkip(t, "slixmpp", prosody.SlixmppAvailable())
	srv, w, rec, ctx := startWatcher(t, "carol")
	w.Watch("conf4")
	rec.expect(t, "conf4")

	occ := srv.StartSlixOccupant(ctx, t, "carol", password, "conf4", "c4", "Carol C.")
	got := rec.next(t)
	if got.room != "conf4" || len(got.occupants) != 1 || got.occupants[0].Nick != "c4" || got.occupants[0].DisplayName != "Carol C." ||
		!strings.HasPrefix(got.occupants[0].RealJID, "carol@"+srv.Domain+"/") {
		t.Fatalf("reported %+v\n%s", got, occ.Stderr())
	}
	occ.Leave(t)
	rec.expect(t, "conf4")
	occ.Wait(t)
}
