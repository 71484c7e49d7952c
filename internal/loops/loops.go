// Package loops runs a module's background goroutines: they share a context that outlives
// the Start call that began them (its values, not its cancellation), and Stop ends them
// together within a deadline, leaving none running.
package loops

import (
	"context"
	"sync"
)

// Group is a set of background goroutines. Its zero value is ready; Start is called once
// before Go.
type Group struct {
	ctx    context.Context // set by Start; ends with Stop
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// Start makes the group's context from parent's values and returns it.
func (g *Group) Start(parent context.Context) context.Context {
	g.ctx, g.cancel = context.WithCancel(context.WithoutCancel(parent))
	return g.ctx
}

// Context is the group's context (the one Start returned).
func (g *Group) Context() context.Context { return g.ctx }

// Go runs fn in a goroutine of the group with the group's context.
func (g *Group) Go(fn func(ctx context.Context)) {
	g.wg.Add(1)
	go func() {
		defer g.wg.Done()
		fn(g.ctx)
	}()
}

// Stop cancels the group's context and waits for its goroutines until ctx ends, whose
// error it then returns. Stop before Start does nothing.
func (g *Group) Stop(ctx context.Context) error {
	if g.cancel == nil {
		return nil
	}
	g.cancel()
	done := make(chan struct{})
	go func() { g.wg.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
