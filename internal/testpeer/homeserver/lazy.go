package homeserver

import (
	"context"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/switchboard-matrix/switchboard/internal/testpeer/dendrite"
)

// Lazy is a package's homeserver of one kind that the first test needing it starts and that
// then serves the rest of the run; TestMain calls Stop. The zero value of the unexported
// fields is ready; set the exported ones in the package variable.
//
//	var syn = homeserver.Lazy{Kind: homeserver.Synapse, Dir: ..., Appservice: ...}
//	hs := syn.Get(t)
type Lazy struct {
	// Kind is the homeserver to start.
	Kind Kind
	// Dir returns the directory to start it in (created if missing); it is called once,
	// at the first Get, so it may read what TestMain set up.
	Dir func() string
	// Appservice returns the registration to start it with; called once, like Dir.
	Appservice func() (dendrite.Appservice, error)

	once sync.Once
	hs   HS // nil until started
	err  error
}

// Get returns the running homeserver, starting it on the first call (with ten minutes for
// the start). Where the homeserver cannot run it skips t, or fails it when
// SWITCHBOARD_REQUIRE_PEERS=1; it fails t when the start failed. When t fails, the
// homeserver's log tail is logged at t's end.
func (l *Lazy) Get(t *testing.T) HS {
	t.Helper()
	RequireOrSkip(t, l.Kind)
	l.once.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
		defer cancel()
		dir := l.Dir()
		if l.err = os.MkdirAll(dir, 0o755); l.err != nil {
			return
		}
		as, err := l.Appservice()
		if err != nil {
			l.err = err
			return
		}
		l.hs, l.err = Start(ctx, l.Kind, dir, as)
	})
	if l.err != nil {
		t.Fatalf("%s: %v", l.Kind, l.err)
	}
	hs := l.hs
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("%s log tail:\n%s", l.Kind, hs.LogTail(40))
		}
	})
	return hs
}

// Stop stops the homeserver if a test started it.
func (l *Lazy) Stop() {
	if l.hs != nil {
		_ = l.hs.Stop()
	}
}
