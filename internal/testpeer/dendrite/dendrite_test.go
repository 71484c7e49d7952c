//go:build linux

package dendrite

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"maunium.net/go/mautrix"
	"maunium.net/go/mautrix/id"
)

// writeRegistration writes a minimal application service registration and returns its path
// and as_token.
func writeRegistration(t *testing.T) (path, asToken string) {
	t.Helper()
	asToken, hsToken := randomToken(t), randomToken(t)
	reg := fmt.Sprintf(`id: switchboard-test
url: http://127.0.0.1:1
as_token: %q
hs_token: %q
sender_localpart: sbbot
rate_limited: false
namespaces:
  users:
    - exclusive: true
      regex: '@_test_.*:localhost'
  aliases: []
  rooms: []
`, asToken, hsToken)
	path = filepath.Join(t.TempDir(), "registration.yaml")
	if err := os.WriteFile(path, []byte(reg), 0o600); err != nil {
		t.Fatal(err)
	}
	return path, asToken
}

func randomToken(t *testing.T) string {
	t.Helper()
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

// TestBuild builds Dendrite into the cache; scripts/test and scripts/demo run it alone to
// build with the same freshness check and lock as the other tests.
func TestBuild(t *testing.T) {
	skipUnlessAvailable(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	dir, err := Build(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !fresh(dir, time.Time{}) {
		t.Fatalf("Build returned %s, which lacks some binaries", dir)
	}
}

func TestServer(t *testing.T) {
	t.Parallel()
	regPath, asToken := writeRegistration(t)
	srv := StartTest(t, Options{RegistrationFiles: []string{regPath}})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	alice, err := srv.RegisterUser(ctx, "alice", "wonderland-rabbit")
	if err != nil {
		t.Fatal(err)
	}
	if want := id.UserID("@alice:localhost"); alice.UserID != want {
		t.Fatalf("registered %s, want %s", alice.UserID, want)
	}
	if who, err := alice.Whoami(ctx); err != nil || who.UserID != alice.UserID {
		t.Fatalf("whoami = %+v, %v; want %s", who, err, alice.UserID)
	}

	as, err := mautrix.NewClient(srv.URL, "", asToken)
	if err != nil {
		t.Fatal(err)
	}
	asRegister := func(localpart string, inhibitLogin bool) (*mautrix.RespRegister, error) {
		resp, _, err := as.Register(ctx, &mautrix.ReqRegister[any]{
			Username:     localpart,
			Type:         mautrix.AuthTypeAppservice,
			InhibitLogin: inhibitLogin,
		})
		return resp, err
	}

	t.Run("ghost", func(t *testing.T) {
		resp, err := asRegister("_test_ghost", false)
		if err != nil {
			t.Fatal(err)
		}
		if resp.UserID != "@_test_ghost:localhost" || resp.AccessToken == "" {
			t.Fatalf("register = %+v, want @_test_ghost:localhost with an access token", resp)
		}
	})
	t.Run("ghost with inhibit_login", func(t *testing.T) {
		resp, err := asRegister("_test_quiet", true)
		if err != nil {
			t.Fatal(err)
		}
		if resp.UserID != "@_test_quiet:localhost" || resp.AccessToken != "" {
			t.Fatalf("register = %+v, want @_test_quiet:localhost without an access token", resp)
		}
	})
	t.Run("ghost outside the namespace", func(t *testing.T) {
		if _, err := asRegister("bob", true); !errors.Is(err, mautrix.MExclusive) {
			t.Fatalf("err = %v, want M_EXCLUSIVE", err)
		}
	})
	t.Run("user inside the exclusive namespace", func(t *testing.T) {
		_, err := srv.RegisterUser(ctx, "_test_impostor", "impostor-password")
		// Dendrite refuses a leading underscore before it looks at namespaces.
		if !errors.Is(err, mautrix.MExclusive) && !errors.Is(err, mautrix.MInvalidUsername) {
			t.Fatalf("err = %v, want M_EXCLUSIVE or M_INVALID_USERNAME", err)
		}
	})
	t.Run("admin", func(t *testing.T) {
		admin, err := srv.RegisterAdmin(ctx, "root", "correct horse battery")
		if err != nil {
			t.Fatal(err)
		}
		if who, err := admin.Whoami(ctx); err != nil || who.UserID != "@root:localhost" {
			t.Fatalf("whoami = %+v, %v; want @root:localhost", who, err)
		}
	})

	t.Run("restart", func(t *testing.T) {
		oldPID := srv.pid()
		if err := srv.Restart(ctx); err != nil {
			t.Fatal(err)
		}
		if processAlive(oldPID) {
			t.Errorf("old dendrite (pid %d) still alive after Restart", oldPID)
		}
		if who, err := alice.Whoami(ctx); err != nil || who.UserID != alice.UserID {
			t.Fatalf("after restart: whoami = %+v, %v; want %s", who, err, alice.UserID)
		}
		if _, err := asRegister("_test_ghost", true); !errors.Is(err, mautrix.MUserInUse) {
			t.Fatalf("after restart: re-registering the ghost: err = %v, want M_USER_IN_USE", err)
		}
	})
}

func TestStopLeavesNothing(t *testing.T) {
	t.Parallel()
	skipUnlessAvailable(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	srv, err := Start(ctx, Options{})
	if err != nil {
		t.Fatal(err)
	}
	pid, dir := srv.pid(), srv.Dir
	start := time.Now()
	if err := srv.Stop(); err != nil {
		t.Fatal(err)
	}
	t.Logf("stopped in %v", time.Since(start).Round(time.Millisecond))
	if processAlive(pid) {
		t.Errorf("dendrite (pid %d) still alive after Stop", pid)
	}
	if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Stop left %s behind (stat: %v)", dir, err)
	}
	if err := srv.Stop(); err != nil {
		t.Errorf("second Stop: %v", err)
	}
	if err := srv.Restart(ctx); err == nil {
		t.Error("Restart after Stop succeeded, want an error")
	}
}

func TestCacheDir(t *testing.T) {
	t.Setenv("SWITCHBOARD_CACHE", "")
	t.Setenv("XDG_CACHE_HOME", "/xdg")
	if got := CacheDir(); got != "/xdg/switchboard" {
		t.Errorf("CacheDir() = %q with XDG_CACHE_HOME, want /xdg/switchboard", got)
	}
	t.Setenv("SWITCHBOARD_CACHE", "/sb")
	if got := CacheDir(); got != "/sb" {
		t.Errorf("CacheDir() = %q with SWITCHBOARD_CACHE, want /sb", got)
	}
	if v := Version(); !strings.HasPrefix(v, "v0.") && !strings.HasPrefix(v, "v1.") {
		t.Errorf("Version() = %q, want a pinned version", v)
	}
}

// pid returns the pid of the running dendrite, or 0.
func (s *Server) pid() int { return s.peer.Pid() }

func processAlive(pid int) bool {
	return pid > 0 && syscall.Kill(pid, 0) == nil
}

func TestStartOnTakenPort(t *testing.T) {
	t.Parallel()
	skipUnlessAvailable(t)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	srv, err := Start(ctx, Options{Dir: filepath.Join(t.TempDir(), "not-yet-there"), Port: l.Addr().(*net.TCPAddr).Port})
	if err == nil {
		srv.Stop()
		t.Fatal("Start on a taken port succeeded")
	}
	if !errors.Is(err, errAddrInUse) {
		t.Errorf("err = %v, want errAddrInUse", err)
	}
}
