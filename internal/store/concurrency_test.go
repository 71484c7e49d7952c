package store_test

import (
	"fmt"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/switchboard-matrix/switchboard/internal/store"
	"github.com/switchboard-matrix/switchboard/internal/store/storetest"
)

// TestConcurrentCommits commits transactions from several goroutines at once, with event
// ids shared between them, while a reader follows the inbox with a Seq cursor the way the
// dispatcher does: no commit fails, every event is stored once, and the cursor sees every
// event (a row committed with a smaller Seq after a larger one was read would be missed).
func TestConcurrentCommits(t *testing.T) {
	const (
		writers      = 8
		txnsPerWrite = 15
		shared       = 5 // events of each round that every writer sends
	)
	storetest.Dialects(t, func(t *testing.T, s *store.Store) {
		ctx := t.Context()
		var (
			wg         sync.WaitGroup
			inserted   atomic.Int64
			notDup     atomic.Int64
			writersEnd = make(chan struct{})
		)
		for w := range writers {
			wg.Go(func() {
				for i := range txnsPerWrite {
					ids := []string{fmt.Sprintf("$own-%d-%d", w, i)}
					for k := range shared {
						ids = append(ids, fmt.Sprintf("$shared-%d-%d", i, k))
					}
					dup, n, err := s.CommitTransaction(ctx, "as", fmt.Sprintf("w%d-t%d", w, i), events(ids...))
					if err != nil || dup {
						t.Errorf("writer %d txn %d: duplicate %v, %v", w, i, dup, err)
						return
					}
					inserted.Add(int64(n))
				}
				// Every writer also replays one transaction id: exactly one wins.
				dup, _, err := s.CommitTransaction(ctx, "as", "replayed", events("$replayed"))
				if err != nil {
					t.Errorf("writer %d replay: %v", w, err)
				}
				if !dup {
					notDup.Add(1)
				}
			})
		}
		seen := map[string]int{}
		readerDone := make(chan struct{})
		go func() {
			defer close(readerDone)
			var last int64
			for {
				end := false
				select {
				case <-writersEnd:
					end = true
				default:
				}
				evs, err := s.PendingEvents(ctx, last, 50)
				if err != nil {
					t.Errorf("PendingEvents: %v", err)
					return
				}
				for _, e := range evs {
					seen[e.EventID]++
					last = e.Seq
				}
				if end && len(evs) == 0 {
					return
				}
			}
		}()
		wg.Wait()
		close(writersEnd)
		<-readerDone

		want := writers*txnsPerWrite + txnsPerWrite*shared + 1
		if got := inserted.Load() + 1; got != int64(want) { // +1: $replayed
			t.Errorf("inserted %d events, want %d", got, want)
		}
		if n := notDup.Load(); n != 1 {
			t.Errorf("replayed transaction committed %d times, want 1", n)
		}
		if depth, err := s.InboxDepth(ctx); err != nil || depth != want {
			t.Errorf("InboxDepth = %d, %v; want %d", depth, err, want)
		}
		if len(seen) != want {
			t.Errorf("cursor reader saw %d events, want %d", len(seen), want)
		}
		for id, n := range seen {
			if n != 1 {
				t.Errorf("reader saw %s %d times", id, n)
			}
		}
	})
}

// TestConcurrentEnqueue enqueues the same and different messages from several goroutines.
func TestConcurrentEnqueue(t *testing.T) {
	const workers, perWorker = 6, 20
	storetest.Dialects(t, func(t *testing.T, s *store.Store) {
		ctx := t.Context()
		var wg sync.WaitGroup
		var created atomic.Int64
		for w := range workers {
			wg.Go(func() {
				for i := range perWorker {
					// Half the remote ids are shared by all workers.
					remote := fmt.Sprintf("w%d-%d", w, i)
					if i%2 == 0 {
						remote = fmt.Sprintf("shared-%d", i)
					}
					m, existing, err := s.EnqueueOutbox(ctx, message("xmpp", remote))
					if err != nil {
						t.Errorf("EnqueueOutbox(%s): %v", remote, err)
						return
					}
					if m.RemoteID != remote || m.Seq <= 0 {
						t.Errorf("EnqueueOutbox(%s) = %+v", remote, m)
					}
					if !existing {
						created.Add(1)
					}
				}
			})
		}
		wg.Wait()
		want := workers*perWorker/2 + perWorker/2
		if n := created.Load(); n != int64(want) {
			t.Errorf("%d rows created, want %d", n, want)
		}
		if n, err := s.OutboxDepth(ctx); err != nil || n != want {
			t.Errorf("OutboxDepth = %d, %v; want %d", n, err, want)
		}
	})
}
