package xmppe2e

import (
	"context"
	"strings"
	"testing"
	"time"
)

// TestProsodyRestart streams messages both ways through a DM while Prosody is restarted
// twice: the bridge reconnects and resends what was not confirmed, the XMPP user logs in
// again and resends what got no receipt; every message arrives once.
func TestProsodyRestart(t *testing.T) {
	startBridge(t, nil)
	bob := newXClient(t, "bob")
	bob.tolerant = true
	user := strings.SplitN(bob.bare().String(), "@", 2)[0]
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	s, done := startStream(ctx, t, bob, streamMessages)

	for k := 0; k < 2; k++ {
		time.Sleep(1200 * time.Millisecond)
		if err := xs.Restart(ctx); err != nil {
			t.Fatal(err)
		}
		t.Logf("prosody restarted (#%d)", k+1)
		c := loginXClient(t, user)
		c.tolerant = true
		s.addSession(c)
	}
	<-done
	s.verify(ctx, 3*time.Minute)
}
