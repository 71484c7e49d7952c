// Package dendrite runs a real Matrix homeserver, the Dendrite version pinned by the tool
// module tools/dendrite, for Switchboard's integration tests. It is imported by tests only.
//
// Build compiles Dendrite once into CacheDir(); Start runs one homeserver on a loopback port
// with a throw-away SQLite database, open registration and the given application service
// registrations; StartTest does the same for a test and stops the server at its end.
//
//	srv := dendrite.StartTest(t, dendrite.Options{RegistrationFiles: []string{regPath}})
//	alice, err := srv.RegisterUser(ctx, "alice", "secret")
package dendrite

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"github.com/switchboard-matrix/switchboard/internal/testpeer/peerproc"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"
)

// Timeouts of the server's life cycle.
const (
	readyTimeout = 60 * time.Second
	stopTimeout  = 10 * time.Second
)

// Files inside Server.Dir.
const (
	configFile = "dendrite.yaml"
	keyFile    = "matrix_key.pem"
	dataDir    = "data"
	logFile    = "dendrite.log"
)

// errAddrInUse marks a start that failed because the port was taken.
var errAddrInUse = fmt.Errorf("dendrite: %w", peerproc.ErrAddrInUse)

// Options configures Start. The zero value is a usable default.
type Options struct {
	// ServerName is the Matrix server name; default "localhost".
	ServerName string
	// RegistrationFiles are application service registration files for
	// app_service_api.config_files; may be empty.
	RegistrationFiles []string
	// Dir holds keys, config, databases and the default log. Default: a new temporary
	// directory that Stop removes. Created if missing; a Dir that already holds a config
	// is reused (same keys and data).
	Dir string
	// Port to listen on at 127.0.0.1; 0 picks a free one.
	Port int
	// Logger receives Dendrite's stdout and stderr; default Dir/dendrite.log.
	Logger io.Writer
	// LogLevel of Dendrite (trace, debug, info, warn, error); default "info".
	LogLevel string
}

// Server is a running Dendrite. Its methods are safe for concurrent use.
type Server struct {
	// URL is the client-server API base URL, http://127.0.0.1:PORT. Immutable.
	URL string
	// ServerName is the Matrix server name (the part after the colon). Immutable.
	ServerName string
	// Dir holds keys, config and data. Immutable.
	Dir string
	// RegistrationSharedSecret enables /_synapse/admin/v1/register (see RegisterAdmin).
	// Immutable; never log it.
	RegistrationSharedSecret string

	binDir string         // immutable
	addr   string         // host:port, immutable after the first successful start
	peer   *peerproc.Peer // immutable; directory, log and process
}

// StartTest starts a Dendrite for t and stops it when t ends; Dir defaults to t.TempDir().
// It skips t when Dendrite cannot be built here, unless SWITCHBOARD_REQUIRE_PEERS=1 (set by
// scripts/test), in which case t fails instead. On failure of t the log tail is logged.
func StartTest(t testing.TB, opts Options) *Server {
	t.Helper()
	// The ten minutes include a first build.
	srv := peerproc.StartForTest(t, "dendrite", Available(), 10*time.Minute, func(ctx context.Context) (*Server, error) {
		opts.Dir = peerproc.TestDir(t, opts.Dir)
		return Start(ctx, opts)
	})
	srv.peer.StopAtEnd(t, stopTimeout)
	return srv
}

// skipUnlessAvailable skips t when Dendrite cannot be built here, or fails it when
// SWITCHBOARD_REQUIRE_PEERS=1.
func skipUnlessAvailable(t testing.TB) {
	t.Helper()
	peerproc.RequireOrSkip(t, "dendrite", Available())
}

// Start builds Dendrite if needed, writes its keys and config into opts.Dir and starts it,
// returning once the client-server API answers (at most 60 s after the build). ctx bounds
// the build and the start only; the server runs until Stop.
func Start(ctx context.Context, opts Options) (*Server, error) {
	binDir, err := Build(ctx)
	if err != nil {
		return nil, err
	}
	peer, err := peerproc.Open("dendrite", opts.Dir, logFile, opts.Logger)
	if err != nil {
		return nil, err
	}
	s := &Server{ServerName: opts.ServerName, Dir: peer.Dir(), binDir: binDir, peer: peer}
	if s.ServerName == "" {
		s.ServerName = "localhost"
	}
	if err := s.configure(ctx, opts); err != nil {
		_ = peer.Stop(stopTimeout)
		return nil, err
	}

	err = peerproc.StartOnFreePorts(opts.Port != 0, func() error {
		port := opts.Port
		if port == 0 {
			var err error
			if port, err = peerproc.FreePort(); err != nil {
				return err
			}
		}
		s.addr = net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
		s.URL = "http://" + s.addr
		return s.start(ctx)
	})
	if err != nil {
		_ = s.Stop()
		return nil, err
	}
	return s, nil
}

// configure writes keys and config into s.Dir; an existing config is patched, not replaced.
func (s *Server) configure(ctx context.Context, opts Options) error {
	keyPath := filepath.Join(s.Dir, keyFile)
	if _, err := os.Stat(keyPath); errors.Is(err, os.ErrNotExist) {
		if _, err := s.runTool(ctx, nil, binGenerateKeys, "--private-key", keyPath); err != nil {
			return err
		}
	}
	cfgPath := filepath.Join(s.Dir, configFile)
	if _, err := os.Stat(cfgPath); errors.Is(err, os.ErrNotExist) {
		out, err := s.runTool(ctx, nil, binGenerateConfig, "-ci", "-dir", filepath.Join(s.Dir, dataDir), "-server", s.ServerName)
		if err != nil {
			return err
		}
		if err := os.WriteFile(cfgPath, out, 0o600); err != nil {
			return fmt.Errorf("dendrite: failed to write config: %w", err)
		}
	}
	if err := os.MkdirAll(filepath.Join(s.Dir, dataDir), 0o755); err != nil {
		return fmt.Errorf("dendrite: failed to create data dir: %w", err)
	}

	secret := make([]byte, 24)
	if _, err := rand.Read(secret); err != nil {
		return fmt.Errorf("dendrite: failed to make a secret: %w", err)
	}
	s.RegistrationSharedSecret = hex.EncodeToString(secret)
	level := opts.LogLevel
	if level == "" {
		level = "info"
	}
	args := []string{
		"-private-key", keyPath,
		"-log-level", level,
		"-set", "app_service_api.disable_tls_validation=true",
	}
	if len(opts.RegistrationFiles) == 0 {
		args = append(args, "-set", "app_service_api.config_files=[]")
	}
	for _, f := range opts.RegistrationFiles {
		args = append(args, "-appservice", f)
	}
	args = append(args, cfgPath)
	env := []string{"DENDRITE_REGISTRATION_SHARED_SECRET=" + s.RegistrationSharedSecret}
	_, err := s.runTool(ctx, env, binDendriteConfig, args...)
	return err
}

// runTool runs one of the helper binaries and returns its stdout.
func (s *Server) runTool(ctx context.Context, env []string, name string, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, filepath.Join(s.binDir, name), args...)
	cmd.Dir = s.Dir
	cmd.Env = append(os.Environ(), env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout = &stdout
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("dendrite: %s failed: %w\n%s", name, err, peerproc.Tail(stderr.Bytes(), 20))
	}
	return stdout.Bytes(), nil
}

// start launches the dendrite process and waits until it answers.
func (s *Server) start(ctx context.Context) error {
	cmd := exec.Command(filepath.Join(s.binDir, binDendrite),
		"--config", filepath.Join(s.Dir, configFile),
		"--http-bind-address", s.addr,
		"--really-enable-open-registration")
	cmd.Dir = s.Dir
	s.peer.Note("starting dendrite on " + s.addr)
	p, err := s.peer.Launch(cmd)
	if err != nil {
		return err
	}
	if err := s.waitReady(ctx, p); err != nil {
		s.peer.Abandon(p, stopTimeout)
		return err
	}
	return nil
}

// waitReady polls GET /_matrix/client/versions until it answers 200.
func (s *Server) waitReady(ctx context.Context, p *peerproc.Process) error {
	ctx, cancel := context.WithTimeout(ctx, readyTimeout)
	defer cancel()
	client := &http.Client{Timeout: 2 * time.Second}
	url := s.URL + "/_matrix/client/versions"
	var lastErr error
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return fmt.Errorf("dendrite: %w", err)
		}
		resp, err := client.Do(req)
		if err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			err = fmt.Errorf("%s: %s", url, resp.Status)
		}
		lastErr = err
		select {
		case <-p.Done():
			log := s.LogTail(40)
			if bytes.Contains([]byte(log), []byte("address already in use")) {
				return fmt.Errorf("%w: %s (%v)\n%s", errAddrInUse, s.addr, p.Err(), log)
			}
			return fmt.Errorf("dendrite: exited during start (%v); log tail:\n%s", p.Err(), log)
		case <-ctx.Done():
			return fmt.Errorf("dendrite: not ready at %s: %w (last: %v); log tail:\n%s", s.URL, ctx.Err(), lastErr, s.LogTail(40))
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// Stop stops Dendrite (SIGTERM, then SIGKILL after 10 s) and removes Dir if Start created
// it. It reports an error if Dendrite had died on its own. Stop is final and idempotent.
func (s *Server) Stop() error { return s.peer.Stop(stopTimeout) }

// Restart stops Dendrite and starts it again with the same config, data and port.
func (s *Server) Restart(ctx context.Context) error {
	return errors.Join(s.peer.Halt(stopTimeout), s.start(ctx))
}

// LogTail returns the last n lines Dendrite wrote (at most 64 KiB).
func (s *Server) LogTail(n int) string { return s.peer.LogTail(n) }
