package appservice

import (
	"context"
	"sync"
)

// keyedQueue runs items in order per key (a room) and keys in parallel, with at most
// `workers` items running at once. It is the scheduling shared by the inbox dispatcher and
// the outbox: both load rows from the store in sequence order and push them here.
type keyedQueue[T any] struct {
	handle func(ctx context.Context, item T) // called for each item, in order per key
	sem    chan struct{}                     // bounds the items running at once

	mu      sync.Mutex
	queues  map[string][]T // guarded by mu; waiting items per key
	running map[string]bool
	closed  bool // guarded by mu; runners take no new items
	wg      sync.WaitGroup
}

func newKeyedQueue[T any](workers int, handle func(ctx context.Context, item T)) *keyedQueue[T] {
	if workers < 1 {
		workers = 1
	}
	q := &keyedQueue[T]{
		handle:  handle,
		sem:     make(chan struct{}, workers),
		queues:  make(map[string][]T),
		running: make(map[string]bool),
	}
	return q
}

// push appends item to key's queue and starts a runner for the key if none runs. ctx is
// handed to the handler; cancelling it aborts work in flight.
func (q *keyedQueue[T]) push(ctx context.Context, key string, item T) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.queues[key] = append(q.queues[key], item)
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
		if len(items) == 0 || q.closed || ctx.Err() != nil {
			delete(q.queues, key)
			delete(q.running, key)
			q.mu.Unlock()
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
		q.handle(ctx, item)
		<-q.sem
	}
}

// close makes the runners stop after the item each is handling; queued items are dropped
// (they are still pending in the store and are loaded again after a restart).
func (q *keyedQueue[T]) close() {
	q.mu.Lock()
	q.closed = true
	q.mu.Unlock()
}

// wait blocks until every runner has returned.
func (q *keyedQueue[T]) wait() { q.wg.Wait() }
