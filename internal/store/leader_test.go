package store_test

import (
	"context"
	"database/sql"
	"errors"
	"testing"
	"time"

	"github.com/switchboard-matrix/switchboard/internal/store"
	"github.com/switchboard-matrix/switchboard/internal/store/storetest"
)

// threeProcesses opens the database at uri three times, as three processes would.
func threeProcesses(t *testing.T, uri string) (a, b, c *store.Store) {
	t.Helper()
	var s [3]*store.Store
	for i := range s {
		var err error
		if s[i], err = store.Open(t.Context(), uri); err != nil {
			t.Fatal(err)
		}
		st := s[i]
		t.Cleanup(func() { st.Close() })
	}
	return s[0], s[1], s[2]
}

// Two processes on one database: the first leads; the second waits; when the first's lock
// session ends (here: terminated by the server, as when its connection is cut) the first
// learns it lost the lead and stops being valid, and the second leads with the next epoch.
func TestLeadership(t *testing.T) {
	uri, ctx := storetest.NewDatabaseURI(t, store.Postgres), t.Context()
	a, b, c := threeProcesses(t, uri)
	opts := store.LeaderOptions{Holder: "a", CheckInterval: 100 * time.Millisecond, CheckTimeout: 200 * time.Millisecond, Poll: 50 * time.Millisecond}
	la, err := a.AcquireLeadership(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	if la.Epoch != 1 || !la.Valid() {
		t.Fatalf("first leader: epoch %d, valid %v", la.Epoch, la.Valid())
	}
	if _, err := c.LockInstance(ctx, 0); !errors.Is(err, store.ErrInstanceRunning) {
		t.Errorf("a single instance beside the leader: %v, want ErrInstanceRunning", err)
	}
	got := make(chan *store.Leadership, 1)
	go func() {
		opts.Holder = "b"
		lb, err := b.AcquireLeadership(ctx, opts)
		if err != nil {
			t.Error(err)
		}
		got <- lb
	}()
	select {
	case <-got:
		t.Fatal("a second leader while the first holds the lock")
	case <-time.After(500 * time.Millisecond):
	}

	// The first leader's session ends on the server's side.
	db, err := sql.Open("pgx", uri)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.ExecContext(ctx, `SELECT pg_terminate_backend(pid) FROM pg_locks WHERE locktype = 'advisory' AND granted`); err != nil {
		t.Fatal(err)
	}
	select {
	case <-la.Lost():
	case <-time.After(10 * time.Second):
		t.Fatal("the first leader did not notice that its lock session ended")
	}
	if la.Valid() {
		t.Error("the first leader is still valid after losing its lock")
	}
	var lb *store.Leadership
	select {
	case lb = <-got:
	case <-time.After(10 * time.Second):
		t.Fatal("the second process did not take over")
	}
	if lb.Epoch != 2 || !lb.Valid() {
		t.Errorf("second leader: epoch %d, valid %v", lb.Epoch, lb.Valid())
	}
	lb.Release()
	la.Release() // after losing: harmless
	if lb.Valid() {
		t.Error("valid after Release")
	}
}

// The lease, and so the least fence delay, is a check's interval and timeout.
func TestLeaderLease(t *testing.T) {
	o := store.LeaderOptions{CheckInterval: time.Second, CheckTimeout: 2 * time.Second}
	if got := o.Lease(); got != 3*time.Second {
		t.Errorf("Lease = %v, want 3s", got)
	}
	if got := (store.LeaderOptions{}).Lease(); got != 2*time.Second {
		t.Errorf("default Lease = %v, want 2s", got)
	}
}

func TestLeadershipNeedsPostgres(t *testing.T) {
	s := storetest.Open(t, store.SQLite)
	if _, err := s.AcquireLeadership(context.Background(), store.LeaderOptions{}); !errors.Is(err, store.ErrNoLeadership) {
		t.Errorf("SQLite: %v, want ErrNoLeadership", err)
	}
}

// The epoch fence: once a new process leads, the writes of the one before it (its lock
// session gone, but the process still running) and of a process that never took the lock
// are refused; the new leader's go through.
func TestEpochFence(t *testing.T) {
	uri, ctx := storetest.NewDatabaseURI(t, store.Postgres), t.Context()
	a, b, c := threeProcesses(t, uri)
	if err := c.PutKV(ctx, "m:k", "before any lock"); err != nil {
		t.Fatalf("a write before anyone took the lock: %v", err)
	}
	release, err := a.LockInstance(ctx, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer release()
	if err := a.PutKV(ctx, "m:k", "a"); err != nil {
		t.Fatalf("the lock holder's write: %v", err)
	}
	if err := c.PutKV(ctx, "m:k", "c"); !store.IsFenced(err) {
		t.Errorf("a write of a process without the lock: %v, want fenced", err)
	}
	// a's lock session ends; b takes over.
	db, err := sql.Open("pgx", uri)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.ExecContext(ctx, `SELECT pg_terminate_backend(pid) FROM pg_locks WHERE locktype = 'advisory' AND granted`); err != nil {
		t.Fatal(err)
	}
	lb, err := b.AcquireLeadership(ctx, store.LeaderOptions{Poll: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer lb.Release()
	if err := a.PutKV(ctx, "m:k", "stale a"); !store.IsFenced(err) {
		t.Errorf("the old leader's write after the takeover: %v, want fenced", err)
	}
	if _, _, err := a.CommitTransaction(ctx, "scope", "t1", []store.InboxEvent{{EventID: "$x", Kind: "timeline", Payload: []byte(`{}`)}}); !store.IsFenced(err) {
		t.Errorf("the old leader's journal commit after the takeover: %v, want fenced", err)
	}
	if err := b.PutKV(ctx, "m:k", "b"); err != nil {
		t.Errorf("the new leader's write: %v", err)
	}
	if v, err := c.GetKV(ctx, "m:k"); err != nil || v != "b" {
		t.Errorf("the value = %q, %v; want the new leader's", v, err)
	}
}
