package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"hash/maphash"
	"math"
	"sync"
)

// recentWindow is how many of the newest inbox events the store deduplicates against by
// event ID. A homeserver repeats an event ID only when it sends a transaction
// again (Synapse: the same transaction, Dendrite: the same ID with more events), minutes or
// hours later; a million events is days of a busy deployment's traffic. It costs at most
// about 35 MB when the journal is that large.
const recentWindow = 1 << 20

// recentIDs is the inbox's deduplication window: the hashes of the event IDs of the
// newest recentWindow events with the seq of each, in memory. Matrix event IDs are random,
// so a unique index of them dirtied a page for every event (migrations 5 and 6 dropped it);
// a hash hit is confirmed against the journaled event it names, so a collision costs one
// lookup and never drops an event.
//
// The window follows the table: before a commit the store loads the events another
// writer may have committed since (seqs above last) — on SQLite always, inside the write
// transaction; on PostgreSQL unless it holds the instance lock (inbox_postgres.go) — and
// after it adds its own. It is guarded by mu, which the store holds across a commit (on
// SQLite commits are serial anyway: one connection).
type recentIDs struct {
	mu   sync.Mutex
	seed maphash.Seed
	seqs map[uint64]int64 // hash of an event ID → seq of the newest event with that hash
	ring []recentEntry    // in seq order from head, at most size
	head int
	size int   // recentWindow; smaller in tests
	last int64 // the largest seq known; -1 until loaded

	// PostgreSQL (inbox_postgres.go): owned while the store holds the instance lock, stale
	// after a commit whose outcome is unknown.
	owned, stale bool
}

type recentEntry struct {
	hash uint64
	seq  int64
}

func newRecentIDs() *recentIDs {
	return &recentIDs{seed: maphash.MakeSeed(), seqs: make(map[uint64]int64), last: -1, size: recentWindow}
}

func (r *recentIDs) hash(eventID string) uint64 { return maphash.String(r.seed, eventID) }

// add records that the event whose ID hashes to h has seq (seqs only grow), evicting the
// oldest entry when the window is full.
func (r *recentIDs) add(h uint64, seq int64) {
	e := recentEntry{h, seq}
	if len(r.ring) < r.size {
		r.ring = append(r.ring, e)
	} else {
		old := r.ring[r.head]
		if r.seqs[old.hash] == old.seq {
			delete(r.seqs, old.hash)
		}
		r.ring[r.head] = e
		r.head = (r.head + 1) % r.size
	}
	r.seqs[h] = seq
	r.last = max(r.last, seq)
}

// catchUp loads the events with seqs above r.last, up to newest (the largest seq handed
// out), through q: on first use the newest r.size of the journal.
func (r *recentIDs) catchUp(ctx context.Context, q querier, newest int64) error {
	if newest <= r.last {
		return nil
	}
	evs, err := eventsFrom(ctx, q, nil, max(r.last+1, newest-int64(r.size)+1), math.MaxInt)
	if err != nil {
		return fmt.Errorf("load the recent event IDs: %w", err)
	}
	for _, e := range evs {
		r.add(r.hash(e.EventID), e.Seq)
	}
	r.last = max(r.last, newest)
	return nil
}

// catchUpWith is catchUp to the largest seq handed out so far, read through q.
func (r *recentIDs) catchUpWith(ctx context.Context, q querier) error {
	var next int64
	if err := q.QueryRowContext(ctx, nextSeqSQL(0)).Scan(&next); err != nil {
		return fmt.Errorf("load the recent event IDs: %w", err)
	}
	return r.catchUp(ctx, q, next-1)
}

// seen reports whether the event ID that hashes to h is in the window: a hash hit whose
// journaled event (read through q) has that very ID. An event pruned meanwhile is not
// seen, as it was not when a unique index decided.
func (r *recentIDs) seen(ctx context.Context, q querier, h uint64, eventID string) (bool, error) {
	seq, ok := r.seqs[h]
	if !ok {
		return false, nil
	}
	e, err := eventAt(ctx, q, seq)
	switch {
	case errors.Is(err, ErrNotFound):
		return false, nil
	case err != nil:
		return false, fmt.Errorf("check event %s against the journal: %w", eventID, err)
	}
	return e.EventID == eventID, nil
}

// querier is what recentIDs reads through: the database or a transaction.
type querier interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// own marks the PostgreSQL window as the only writer's (the instance lock is held) once it
// has loaded everything committed so far; disown undoes it when the lock is given back.
func (s *Store) own(ctx context.Context) error {
	r := s.recent
	r.mu.Lock()
	defer r.mu.Unlock()
	if err := s.loadRecentLocked(ctx); err != nil {
		return err
	}
	r.owned, r.stale = true, false
	return nil
}

func (s *Store) disown() {
	s.recent.mu.Lock()
	s.recent.owned = false
	s.recent.mu.Unlock()
}

// loadRecent fills the window from the journal, so that the first commit after a start
// does not wait for it.
func (s *Store) loadRecent(ctx context.Context) error {
	s.recent.mu.Lock()
	defer s.recent.mu.Unlock()
	return s.loadRecentLocked(ctx)
}

func (s *Store) loadRecentLocked(ctx context.Context) error {
	if err := s.recent.catchUpWith(ctx, s.db); err != nil {
		return fmt.Errorf("store: %w", err)
	}
	return nil
}
