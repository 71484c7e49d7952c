package loops

import (
	"context"
	"errors"
	"testing"
	"time"
)

type ctxKey struct{}

func TestGroup(t *testing.T) {
	var g Group
	if err := g.Stop(context.Background()); err != nil {
		t.Fatalf("Stop before Start: %v", err)
	}
	parent, cancelParent := context.WithCancel(context.WithValue(context.Background(), ctxKey{}, "v"))
	run := g.Start(parent)
	cancelParent() // the group outlives the Start call's context
	got := make(chan any, 1)
	g.Go(func(ctx context.Context) {
		got <- ctx.Value(ctxKey{})
		<-ctx.Done()
	})
	if v := <-got; v != "v" || run.Err() != nil {
		t.Fatalf("value %v, err %v", v, run.Err())
	}
	if err := g.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
}

func TestGroupStopDeadline(t *testing.T) {
	var g Group
	g.Start(context.Background())
	release := make(chan struct{})
	g.Go(func(context.Context) { <-release }) // ignores its context
	defer close(release)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
	defer cancel()
	if err := g.Stop(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Stop = %v; want the deadline", err)
	}
}
