package peerproc

import (
	"context"
	"os"
	"testing"
	"time"
)

// RequireOrSkip skips t when err says the peer called name cannot run here, or fails t
// instead when SWITCHBOARD_REQUIRE_PEERS=1 (scripts/test sets it, so CI never skips).
func RequireOrSkip(t testing.TB, name string, err error) {
	t.Helper()
	if err == nil {
		return
	}
	if os.Getenv("SWITCHBOARD_REQUIRE_PEERS") == "1" {
		t.Fatalf("%s unavailable and SWITCHBOARD_REQUIRE_PEERS=1: %v", name, err)
	}
	t.Skipf("%s unavailable: %v", name, err)
}

// StartForTest is the common part of a peer's StartTest: it skips or fails t when
// available is an error (see RequireOrSkip), calls start with a context that ends after
// timeout, and fails t with "failed to start NAME" when start does. Stopping the peer at
// the end of t is left to the caller (Peer.StopAtEnd), and so is a default for the
// peer's directory (TestDir, inside start: only a test that runs needs one).
//
//	srv := peerproc.StartForTest(t, "kamailio", Available(), time.Minute, func(ctx context.Context) (*Server, error) {
//		opts.Dir = peerproc.TestDir(t, opts.Dir)
//		return Start(ctx, opts)
//	})
//	srv.peer.StopAtEnd(t, stopTimeout)
func StartForTest[P any](t testing.TB, name string, available error, timeout time.Duration, start func(ctx context.Context) (P, error)) P {
	t.Helper()
	RequireOrSkip(t, name, available)
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	p, err := start(ctx)
	if err != nil {
		t.Fatalf("failed to start %s: %v", name, err)
	}
	return p
}

// TestDir returns dir, or when it is empty a new directory that t removes when it ends.
func TestDir(t testing.TB, dir string) string {
	if dir == "" {
		return t.TempDir()
	}
	return dir
}

// StopAtEnd stops the peer when t ends and, if t failed, logs the peer's log tail.
func (p *Peer) StopAtEnd(t testing.TB, timeout time.Duration) {
	p.StopAtEndWith(t, func() error { return p.Stop(timeout) })
}

// StopAtEndWith is StopAtEnd for a peer whose own Stop does more than Peer.Stop (such as
// closing its connections to the process): stop is called when t ends, t fails if it
// returns an error, and then, if t failed, the peer's log tail is logged.
func (p *Peer) StopAtEndWith(t testing.TB, stop func() error) {
	t.Cleanup(func() {
		if err := stop(); err != nil {
			t.Errorf("failed to stop %s: %v", p.name, err)
		}
		if t.Failed() {
			t.Logf("%s log tail (%s):\n%s", p.name, p.dir, p.LogTail(60))
		}
	})
}
