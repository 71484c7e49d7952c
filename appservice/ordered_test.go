package appservice

import (
	"context"
	"sync"
	"testing"
	"time"
)

// TestKeyedQueueLinger: a runner waiting for more items of its key takes one pushed
// meanwhile, in order, on the same goroutine; close ends waiting runners at once, and a
// context's end does too.
func TestKeyedQueueLinger(t *testing.T) {
	for _, tc := range []struct {
		name string
		stop func(q *keyedQueue[int], cancel context.CancelFunc)
	}{
		{"close", func(q *keyedQueue[int], _ context.CancelFunc) { q.close() }},
		{"context", func(_ *keyedQueue[int], cancel context.CancelFunc) { cancel() }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var mu sync.Mutex
			var got []int
			handled := make(chan struct{}, 10)
			q := newKeyedQueue(2, func(_ context.Context, item int) {
				mu.Lock()
				got = append(got, item)
				mu.Unlock()
				handled <- struct{}{}
			})
			ctx, cancel := context.WithCancel(t.Context())
			defer cancel()
			q.push(ctx, "!room", 1)
			<-handled
			time.Sleep(10 * time.Millisecond) // the runner now waits for more
			q.mu.Lock()
			idle := q.idle["!room"] != nil
			q.mu.Unlock()
			if !idle {
				t.Error("the runner returned instead of waiting for more items")
			}
			q.push(ctx, "!room", 2)
			q.push(ctx, "!room", 3)
			<-handled
			<-handled
			mu.Lock()
			if len(got) != 3 || got[0] != 1 || got[1] != 2 || got[2] != 3 {
				t.Errorf("handled %v, want [1 2 3]", got)
			}
			mu.Unlock()
			tc.stop(q, cancel)
			done := make(chan struct{})
			go func() { q.wait(); close(done) }()
			select {
			case <-done:
			case <-time.After(runnerLinger / 2):
				t.Fatal("a waiting runner did not return when stopped")
			}
		})
	}
}
