package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/switchboard-matrix/switchboard/bots/management"
	"github.com/switchboard-matrix/switchboard/internal/testmodule"
	"github.com/switchboard-matrix/switchboard/internal/testpeer/dendrite"
	"github.com/switchboard-matrix/switchboard/internal/testpeer/homeserver"
	"github.com/switchboard-matrix/switchboard/registration"
)

// homeservers is the table of the package's homeservers: Dendrite is started by TestMain,
// Synapse lazily (sync.Once) by the first test that runs on it, so that a run of Dendrite
// tests only never pays for Synapse. The Synapse tests are in
// synapse_test.go, the last file of the package, so they run after every Dendrite test:
// a homeserver whose transactions fail backs off (Synapse up to 8.5 minutes), and no
// Dendrite test leaves Synapse's appservice port unserved in between.
type homeservers struct {
	mu      sync.Mutex
	running map[homeserver.Kind]homeserver.HS
	errs    map[homeserver.Kind]error
	once    map[homeserver.Kind]*sync.Once
}

var servers = &homeservers{
	running: map[homeserver.Kind]homeserver.HS{},
	errs:    map[homeserver.Kind]error{},
	once:    map[homeserver.Kind]*sync.Once{homeserver.Dendrite: {}, homeserver.Synapse: {}},
}

func (s *homeservers) set(kind homeserver.Kind, h homeserver.HS, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err != nil {
		s.errs[kind] = err
		return
	}
	s.running[kind] = h
}

func (s *homeservers) get(kind homeserver.Kind) (homeserver.HS, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if h, ok := s.running[kind]; ok {
		return h, nil
	}
	if err := s.errs[kind]; err != nil {
		return nil, err
	}
	return nil, fmt.Errorf("%s is not started", kind)
}

// stopAll stops every started homeserver, printing its log tail when the run failed.
func (s *homeservers) stopAll(failed bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for kind, h := range s.running {
		if failed {
			fmt.Fprintf(os.Stderr, "%s log tail:\n%s\n", kind, h.LogTail(40))
		}
		_ = h.Stop()
	}
}

// onHS returns the package's homeserver of kind, starting Synapse on first use. A
// homeserver that cannot run skips the test, or fails it under SWITCHBOARD_REQUIRE_PEERS=1.
func onHS(t *testing.T, kind homeserver.Kind) homeserver.HS {
	t.Helper()
	servers.once[kind].Do(func() {
		if _, err := servers.get(kind); err == nil {
			return // started by TestMain
		}
		if err := homeserver.Available(kind); err != nil {
			servers.set(kind, nil, err)
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
		defer cancel()
		start := time.Now()
		h, err := startHomeserver(ctx, kind)
		servers.set(kind, h, err)
		if err == nil {
			t.Logf("%s started in %s", kind, time.Since(start).Round(100*time.Millisecond))
		}
	})
	h, err := servers.get(kind)
	if err != nil {
		if os.Getenv("SWITCHBOARD_REQUIRE_PEERS") == "1" {
			t.Fatalf("%s unavailable and SWITCHBOARD_REQUIRE_PEERS=1: %v", kind, err)
		}
		t.Skipf("%s unavailable: %v", kind, err)
	}
	return h
}

// startHomeserver starts a homeserver of kind with the package's registration in its own
// directory under workDir.
func startHomeserver(ctx context.Context, kind homeserver.Kind) (homeserver.HS, error) {
	dir := filepath.Join(workDir, string(kind))
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	return homeserver.Start(ctx, kind, dir, dendrite.Appservice{
		ID: "switchboard-e2e", Ephemeral: true,
		Namespaces: map[string]registration.Namespaces{
			management.ID: {}, testmodule.ID: testmodule.New(testmodule.Config{}, nil).Namespaces(),
		},
	})
}
