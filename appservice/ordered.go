package appservice

import (
	"context"
	"sync"
	"time"

	"github.com/rs/zerolog"
)

// keyedQueue runs items in order per key (a room) and keys in parallel, with at most
// `workers` items running at once. It is the scheduling shared by the inbox dispatcher and
// the outbox: both load rows from the store in sequence order and push them here.
type keyedQueue[T any] struct {
	handle  func(ctx context.Context, item T) // called for each item, in order per key
	sem     chan struct{}                     // bounds the items running at once
	closing chan struct{}                     // closed by close

	mu      sync.Mutex
	queues  map[string][]T  // guarded by mu; waiting items per key
	running map[string]bool // guarded by mu
	// idle holds, for a key whose runner waits for more items (for runnerLinger before it
	// returns), the channel push closes to wake it.
	idle   map[string]chan struct{} // guarded by mu
	closed bool                     // guarded by mu; runners take no new items
	wg     sync.WaitGroup
}

func newKeyedQueue[T any](workers int, handle func(ctx context.Context, item T)) *keyedQueue[T] {
	if workers < 1 {
		workers = 1
	}
	return &keyedQueue[T]{
		handle:  handle,
		sem:     make(chan struct{}, workers),
		closing: make(chan struct{}),
		queues:  make(map[string][]T),
		running: make(map[string]bool),
		idle:    make(map[string]chan struct{}),
	}
}

// runnerLinger is how long a key's runner waits for more items before it returns. A room
// that gets a message every few hundred milliseconds keeps its goroutine, whose stack has
// grown to what decoding needs, instead of starting a new one each time (about 5% of the
// dispatcher's CPU under load went to growing new stacks).
const runnerLinger = time.Second

// push appends item to key's queue and starts a runner for the key if none runs. ctx is
// handed to the handler; cancelling it aborts work in flight.
func (q *keyedQueue[T]) push(ctx context.Context, key string, item T) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.queues[key] = append(q.queues[key], item)
	if wake := q.idle[key]; wake != nil {
		delete(q.idle, key)
		close(wake)
	}
	if !q.running[key] {
		q.running[key] = true
		q.wg.Add(1)
		go q.run(ctx, key)
	}
}

func (q *keyedQueue[T]) run(ctx context.Context, key string) {
	defer q.wg.Done()
	for {
		q.mu.Lock()
		items := q.queues[key]
		if len(items) == 0 && !q.closed && ctx.Err() == nil {
			if q.linger(ctx, key) {
				continue
			}
			return
		}
		if len(items) == 0 || q.closed || ctx.Err() != nil {
			q.exit(key)
			return
		}
		item := items[0]
		var zero T
		items[0] = zero
		q.queues[key] = items[1:]
		q.mu.Unlock()

		select {
		case q.sem <- struct{}{}:
		case <-ctx.Done():
			continue
		}
		if ctx.Err() != nil || q.stopping() {
			<-q.sem
			continue
		}
		q.handle(ctx, item)
		<-q.sem
	}
}

// linger waits, with q.mu held on entry and released, for an item for key; it reports
// whether one came (the runner goes on) or the runner has returned its key (it stops).
func (q *keyedQueue[T]) linger(ctx context.Context, key string) bool {
	wake := make(chan struct{})
	q.idle[key] = wake
	q.mu.Unlock()
	t := time.NewTimer(runnerLinger)
	defer t.Stop()
	select {
	case <-wake:
		return true
	case <-t.C:
	case <-ctx.Done():
	case <-q.closing:
	}
	q.mu.Lock()
	if q.idle[key] != wake { // woken as it timed out: an item is queued
		q.mu.Unlock()
		return true
	}
	q.exit(key)
	return false
}

// exit ends key's runner; q.mu is held and released.
func (q *keyedQueue[T]) exit(key string) {
	delete(q.idle, key)
	delete(q.queues, key)
	delete(q.running, key)
	q.mu.Unlock()
}

// pause is for a handler that waits before retrying: it gives its worker slot to other
// keys for d (its own key stays blocked, which keeps the order), then takes a slot again.
// It returns false, without waiting out d, when ctx ends or the queue is closing; the
// handler should then leave its item for the next start.
func (q *keyedQueue[T]) pause(ctx context.Context, d time.Duration) bool {
	<-q.sem
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	case <-q.closing:
	}
	q.sem <- struct{}{} // the runner releases it after the handler returns
	return ctx.Err() == nil && !q.stopping()
}

// pauseUntil is pause that also ends when wake is closed.
func (q *keyedQueue[T]) pauseUntil(ctx context.Context, d time.Duration, wake <-chan struct{}) bool {
	<-q.sem
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-wake:
	case <-ctx.Done():
	case <-q.closing:
	}
	q.sem <- struct{}{}
	return ctx.Err() == nil && !q.stopping()
}

func (q *keyedQueue[T]) stopping() bool {
	select {
	case <-q.closing:
		return true
	default:
		return false
	}
}

// close makes the runners stop after the item each is handling, and wakes handlers that
// pause; queued items are dropped (they are still pending in the store and are loaded again
// after a restart).
func (q *keyedQueue[T]) close() {
	q.mu.Lock()
	defer q.mu.Unlock()
	if !q.closed {
		q.closed = true
		close(q.closing)
	}
}

// wait blocks until every runner has returned.
func (q *keyedQueue[T]) wait() { q.wg.Wait() }

// pump moves pending journal rows into q, in sequence order, until stop ends; then it closes
// q and waits for its runners (which work with work, cancelled only at the shutdown
// deadline). It loads when woken and every few seconds, at most room() rows at a time;
// admit records a loaded row as in flight and returns its sequence number and queue key.
// The dispatcher and the outbox both run on it.
func pump[T any](stop, work context.Context, q *keyedQueue[T], wake <-chan struct{}, what string,
	room func() int, fetch func(ctx context.Context, afterSeq int64, limit int) ([]T, error),
	admit func(T) (seq int64, key string)) {
	log := zerolog.Ctx(work)
	var lastSeq int64
	tick := time.NewTicker(5 * time.Second)
	defer tick.Stop()
	for {
		for n := room(); n > 0; n = room() {
			rows, err := fetch(work, lastSeq, n)
			if err != nil {
				log.Error().Err(err).Msg("Failed to load " + what)
				break
			}
			for _, r := range rows {
				seq, key := admit(r)
				lastSeq = seq
				q.push(work, key, r)
			}
			if len(rows) == 0 {
				break
			}
		}
		select {
		case <-stop.Done():
			q.close()
			q.wait()
			return
		case <-wake:
		case <-tick.C:
		}
	}
}
