package peerproc

import (
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

// StopAtEnd stops the peer when t ends and, if t failed, logs the peer's log tail.
func (p *Peer) StopAtEnd(t testing.TB, timeout time.Duration) {
	t.Cleanup(func() {
		if err := p.Stop(timeout); err != nil {
			t.Errorf("failed to stop %s: %v", p.name, err)
		}
		if t.Failed() {
			t.Logf("%s log tail (%s):\n%s", p.name, p.dir, p.LogTail(60))
		}
	})
}
