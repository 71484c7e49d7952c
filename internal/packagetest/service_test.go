package packagetest

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/switchboard-matrix/switchboard/internal/syncbuf"

	"maunium.net/go/mautrix"
	"maunium.net/go/mautrix/id"

	"github.com/switchboard-matrix/switchboard/internal/testpeer/dendrite"
	"github.com/switchboard-matrix/switchboard/internal/testpeer/matrixtest"
	"github.com/switchboard-matrix/switchboard/internal/testpeer/synapse"
)

// readyTimeout bounds the wait for the service's database, or for it to be ready: it tries
// to register its bot at the homeserver for a minute.
const readyTimeout = 90 * time.Second

// service is the installed binary run as the unit runs it.
type service struct {
	cmd    *exec.Cmd
	output *syncBuffer
	exited chan error // receives cmd.Wait's result once
	done   bool       // exited was received
}

// startService runs the unit's ExecStart as the user switchboard in the state directory.
func startService(t *testing.T) *service {
	t.Helper()
	u, err := user.Lookup("switchboard")
	if err != nil {
		t.Fatal(err)
	}
	uid, _ := strconv.ParseUint(u.Uid, 10, 32)
	gid, _ := strconv.ParseUint(u.Gid, 10, 32)
	s := &service{output: &syncBuffer{}, exited: make(chan error, 1)}
	s.cmd = exec.Command(binPath, "-c", configPath, "-r", regPath)
	s.cmd.Dir = stateDir
	s.cmd.Env = []string{"PATH=/usr/bin:/bin", "HOME=" + stateDir}
	s.cmd.Stdout, s.cmd.Stderr = s.output, s.output
	s.cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{
		Uid: uint32(uid), Gid: uint32(gid), Groups: []uint32{uint32(gid)},
	}}
	if err := s.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { s.exited <- s.cmd.Wait() }()
	t.Cleanup(s.stop)
	return s
}

// stop ends the service with SIGTERM (SIGKILL after 30 s); idempotent.
func (s *service) stop() {
	if s.done {
		return
	}
	s.done = true
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.exited:
	case <-time.After(30 * time.Second):
		_ = s.cmd.Process.Kill()
		<-s.exited
	}
}

// waitReady polls the readiness answer on opsPort until done says so; it fails t when the
// service exits first or readyTimeout passes.
func (s *service) waitReady(t *testing.T, opsPort int, what string, done func(readiness) bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), readyTimeout)
	defer cancel()
	url := fmt.Sprintf("http://127.0.0.1:%d/health/ready", opsPort)
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	var last readiness
	for {
		select {
		case err := <-s.exited:
			s.done = true
			t.Fatalf("switchboard as user switchboard exited (%v) before %s:\n%s", err, what, s.output.String())
		case <-ctx.Done():
			s.stop()
			t.Fatalf("switchboard as user switchboard: not %s at %s (last %+v):\n%s", what, url, last, s.output.String())
		case <-tick.C:
			if r, ok := getReadiness(ctx, url); ok {
				if last = r; done(r) {
					return
				}
			}
		}
	}
}

// readiness is the answer of /health/ready.
type readiness struct {
	Ready   bool              `json:"ready"`
	Checks  map[string]string `json:"checks"`
	Modules map[string]string `json:"modules"`
}

// getReadiness fetches url; ok is false while nothing answers.
func getReadiness(ctx context.Context, url string) (r readiness, ok bool) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return r, false
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return r, false
	}
	defer resp.Body.Close()
	return r, json.NewDecoder(resp.Body).Decode(&r) == nil
}

// runAsService runs the installed binary as the unit does, without a homeserver, until its
// database is open: the user switchboard can read the config and the registration and
// write the state directory.
func runAsService(t *testing.T, opsPort int) {
	t.Helper()
	s := startService(t)
	s.waitReady(t, opsPort, "with an open database", func(r readiness) bool { return r.Checks["database"] == "ok" })
	s.stop()
	checkFiles(t, []fileWant{{databasePath, 0o600, "switchboard", "switchboard"}})
}

// runOnHomeserver is the rest of docs/operations.md on one homeserver: the registration is
// copied to the homeserver and listed in its config, the homeserver (re)started, and the
// service started; it is ready, and the management bot answers "version" with the
// package's version.
func runOnHomeserver(t *testing.T, kind, version string, hsPort, opsPort int) {
	dir := t.TempDir()
	reg := filepath.Join(dir, "switchboard-registration.yaml")
	copyFile(t, regPath, reg)
	var newUser func(testing.TB, string) *mautrix.Client
	switch kind {
	case "dendrite":
		hs := dendrite.StartTest(t, dendrite.Options{RegistrationFiles: []string{reg}, Port: hsPort, Dir: filepath.Join(dir, kind)})
		newUser = hs.NewUser
	case "synapse":
		hs := synapse.StartTest(t, synapse.Options{RegistrationFiles: []string{reg}, Port: hsPort, Dir: filepath.Join(dir, kind)})
		newUser = hs.NewUser
	}
	// A new database for each homeserver: the rooms of the last one are not on this one.
	old, _ := filepath.Glob(databasePath + "*")
	for _, f := range old {
		if err := os.Remove(f); err != nil {
			t.Fatal(err)
		}
	}

	s := startService(t)
	s.waitReady(t, opsPort, "ready", func(r readiness) bool { return r.Ready })
	alice := newUser(t, "admin")
	bot := id.NewUserID("switchboard", "localhost")
	dm := matrixtest.BotDM(t, alice, bot)
	if reply := matrixtest.BotCommand(t, alice, dm, bot, "version"); !strings.Contains(reply, version) {
		t.Errorf("the bot answers \"version\" with %q, want the package's version %s", reply, version)
	}
	s.stop()
}

// copyFile copies src to dst with mode 0600.
func copyFile(t *testing.T, src, dst string) {
	t.Helper()
	data, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dst, data, 0o600); err != nil {
		t.Fatal(err)
	}
}

type syncBuffer = syncbuf.Buffer

var _ io.Writer = (*syncBuffer)(nil)
