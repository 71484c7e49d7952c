// Package synapse runs a real Matrix homeserver, the Synapse release pinned in
// tools/synapse/requirements.txt, for Switchboard's integration tests and the demo. It is
// imported by tests and tools only.
//
// Install installs Synapse with pip into a virtualenv in the cache once; Start runs one
// homeserver on a loopback port with SQLite, shared-secret registration, no rate limits,
// the given application service registrations and the experimental appservice features
// Switchboard uses (AppserviceConfigYAML); StartTest does the same for a test and stops
// the server at its end. StartWithAppservice adds a Switchboard registration with the
// MSC2409, MSC3202 and MSC4190 keys.
//
//	srv := synapse.StartTest(t, synapse.Options{RegistrationFiles: []string{regPath}})
//	alice, err := srv.RegisterUser(ctx, "alice", "secret")
package synapse

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/switchboard-matrix/switchboard/internal/testpeer/peerproc"
)

// Timeouts of the server's life cycle. Synapse needs a few seconds to start (more on a
// new database, which it creates at its first start), and a busy machine may need more.
const (
	readyTimeout = 120 * time.Second
	stopTimeout  = 15 * time.Second
)

// Files inside Server.Dir.
const (
	configFile     = "homeserver.yaml"
	signingKeyFile = "signing.key"
	logFile        = "synapse.log"
)

// errAddrInUse marks a start that failed because the port was taken.
var errAddrInUse = fmt.Errorf("synapse: %w", peerproc.ErrAddrInUse)

// Options configures Start. The zero value is a usable default.
type Options struct {
	// ServerName is the Matrix server name; default "localhost".
	ServerName string
	// RegistrationFiles are application service registration files for
	// app_service_config_files; may be empty.
	RegistrationFiles []string
	// Dir holds the config, keys, database, media and the default log. Default: a new
	// temporary directory that Stop removes. Created if missing; a Dir used before keeps
	// its keys, secrets and data.
	Dir string
	// Port to listen on at 127.0.0.1; 0 picks a free one.
	Port int
	// Logger receives Synapse's stdout and stderr; default Dir/synapse.log.
	Logger io.Writer
}

// Server is a running Synapse. Its methods are safe for concurrent use.
type Server struct {
	// URL is the client-server API base URL, http://127.0.0.1:PORT. Immutable.
	URL string
	// ServerName is the Matrix server name (the part after the colon). Immutable.
	ServerName string
	// Dir holds config, keys and data. Immutable.
	Dir string
	// RegistrationSharedSecret enables /_synapse/admin/v1/register, which RegisterUser and
	// RegisterAdmin use. Immutable; never log it.
	RegistrationSharedSecret string
	// StartupTime is how long the last start took until the client API answered.
	StartupTime time.Duration

	venv string         // immutable
	addr string         // host:port, immutable after the first successful start
	peer *peerproc.Peer // immutable; directory, log and process
}

// StartTest starts a Synapse for t and stops it when t ends; Dir defaults to t.TempDir().
// It skips t when Synapse cannot be installed here, unless SWITCHBOARD_REQUIRE_PEERS=1 (set
// by scripts/test), in which case t fails instead. On failure of t the log tail is logged.
func StartTest(t testing.TB, opts Options) *Server {
	t.Helper()
	// The ten minutes include a first install.
	srv := peerproc.StartForTest(t, "synapse", Available(), 10*time.Minute, func(ctx context.Context) (*Server, error) {
		opts.Dir = peerproc.TestDir(t, opts.Dir)
		return Start(ctx, opts)
	})
	srv.peer.StopAtEnd(t, stopTimeout)
	return srv
}

// Start installs Synapse if needed, writes its config into opts.Dir and starts it,
// returning once the client-server API answers. ctx bounds the install and the start
// only; the server runs until Stop.
func Start(ctx context.Context, opts Options) (*Server, error) {
	venv, err := Install(ctx)
	if err != nil {
		return nil, err
	}
	peer, err := peerproc.Open("synapse", opts.Dir, logFile, opts.Logger)
	if err != nil {
		return nil, err
	}
	s := &Server{ServerName: opts.ServerName, Dir: peer.Dir(), venv: venv, peer: peer}
	if s.ServerName == "" {
		s.ServerName = "localhost"
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
		secret, err := WriteConfig(s.Dir, s.ServerName, port, opts.RegistrationFiles)
		if err != nil {
			return err
		}
		s.RegistrationSharedSecret = secret
		return s.start(ctx)
	})
	if err != nil {
		_ = s.Stop()
		return nil, err
	}
	return s, nil
}

// WriteConfig writes dir/homeserver.yaml for a Synapse named serverName listening on
// 127.0.0.1:port, with the given appservice registration files, and creates the signing
// key and the secrets unless dir has them already (kept across calls). It returns the
// registration shared secret. Start calls it; scripts/demo calls it through synapsectl.
func WriteConfig(dir, serverName string, port int, registrationFiles []string) (sharedSecret string, err error) {
	if dir, err = filepath.Abs(dir); err != nil {
		return "", fmt.Errorf("synapse: %w", err)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", fmt.Errorf("synapse: %w", err)
	}
	macaroon, form, secret, err := loadSecrets(dir)
	if err != nil {
		return "", err
	}
	if err := writeSigningKey(filepath.Join(dir, signingKeyFile)); err != nil {
		return "", err
	}
	regFiles := make([]string, len(registrationFiles))
	for i, f := range registrationFiles {
		if regFiles[i], err = filepath.Abs(f); err != nil {
			return "", fmt.Errorf("synapse: %w", err)
		}
	}
	url := "http://" + net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	cfg, err := renderConfig(configData{
		ServerName: serverName, URL: url, Dir: dir, Port: port,
		MacaroonSecret: macaroon, FormSecret: form, RegistrationSharedSecret: secret,
		RegistrationFiles: regFiles,
	})
	if err != nil {
		return "", err
	}
	if err := os.WriteFile(filepath.Join(dir, configFile), cfg, 0o600); err != nil {
		return "", fmt.Errorf("synapse: failed to write config: %w", err)
	}
	return secret, nil
}

// start launches the Synapse process and waits until it answers.
func (s *Server) start(ctx context.Context) error {
	cmd := exec.Command(python(s.venv), "-m", "synapse.app.homeserver",
		"--config-path", filepath.Join(s.Dir, configFile))
	cmd.Dir = s.Dir
	cmd.Env = append(os.Environ(), "PYTHONUNBUFFERED=1")
	s.peer.Note("starting synapse on " + s.addr)
	begin := time.Now()
	p, err := s.peer.Launch(cmd)
	if err != nil {
		return err
	}
	if err := s.waitReady(ctx, p); err != nil {
		s.peer.Abandon(p, stopTimeout)
		return err
	}
	s.StartupTime = time.Since(begin)
	s.peer.Note("synapse ready after " + s.StartupTime.Round(time.Millisecond).String())
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
			return fmt.Errorf("synapse: %w", err)
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
			if strings.Contains(log, "Address already in use") || strings.Contains(log, "address already in use") {
				return fmt.Errorf("%w: %s (%v)\n%s", errAddrInUse, s.addr, p.Err(), log)
			}
			return fmt.Errorf("synapse: exited during start (%v); log tail:\n%s", p.Err(), log)
		case <-ctx.Done():
			return fmt.Errorf("synapse: not ready at %s: %w (last: %v); log tail:\n%s", s.URL, ctx.Err(), lastErr, s.LogTail(40))
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// Stop stops Synapse (SIGTERM, then SIGKILL after 15 s) and removes Dir if Start created
// it. It reports an error if Synapse had died on its own. Stop is final and idempotent.
func (s *Server) Stop() error { return s.peer.Stop(stopTimeout) }

// Restart stops Synapse and starts it again with the same config, data and port.
func (s *Server) Restart(ctx context.Context) error {
	return errors.Join(s.peer.Halt(stopTimeout), s.start(ctx))
}

// Kill stops Synapse without waiting for a clean shutdown (SIGKILL right after SIGTERM);
// Restart starts it again.
func (s *Server) Kill() error { return s.peer.Halt(0) }

// LogTail returns the last n lines Synapse wrote (at most 64 KiB).
func (s *Server) LogTail(n int) string { return s.peer.LogTail(n) }

// SharedSecret returns the registration shared secret WriteConfig keeps in dir.
func SharedSecret(dir string) (string, error) {
	_, _, secret, err := loadSecrets(dir)
	return secret, err
}
