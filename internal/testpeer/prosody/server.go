// Package prosody runs a real XMPP server, the Debian package's Prosody (0.12), for
// Switchboard's integration tests. It is imported by tests only.
//
// Start writes a throw-away config into a directory and runs one Prosody on loopback ports
// with a client-to-server listener (plain text, PLAIN auth allowed), a MUC component and an
// XEP-0114 external component for the bridge; StartTest does the same for a test and stops
// the server at its end.
//
//	srv := prosody.StartTest(t, prosody.Options{})
//	err := srv.Register(ctx, "alice", "secret")
//	conn, err := net.Dial("tcp", srv.ComponentAddr) // handshake with srv.ComponentSecret
package prosody

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
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Timeouts of the server's life cycle.
const (
	readyTimeout = 30 * time.Second
	stopTimeout  = 10 * time.Second
)

// Files inside Server.Dir.
const (
	configFile = "cfg.lua"
	pidFile    = "prosody.pid"
	certsDir   = "certs"
	logFile    = "prosody.log"
)

const loopback = "127.0.0.1"

// errAddrInUse marks a start that failed because a port was taken.
var errAddrInUse = fmt.Errorf("prosody: %w", peerproc.ErrAddrInUse)

// Options configures Start. The zero value is a usable default.
type Options struct {
	// Domain is the client VirtualHost; default "localhost".
	Domain string
	// MUCDomain is the multi-user chat component; default "conference." + Domain.
	MUCDomain string
	// ComponentDomain is the XEP-0114 external component; default "matrix." + Domain.
	ComponentDomain string
	// ComponentSecret is the external component's shared secret; default random.
	ComponentSecret string
	// Dir holds config, data and the default log. Default: a new temporary directory that
	// Stop removes. Created if missing; its data (accounts, archives) is reused.
	Dir string
	// C2SPort and ComponentPort are listened on at 127.0.0.1; 0 picks a free one.
	C2SPort, ComponentPort int
	// EnableUpload adds an XEP-0363 http_file_share component "upload." + Domain,
	// served over plain HTTP on 127.0.0.1:HTTPPort.
	EnableUpload bool
	// HTTPPort for EnableUpload; 0 picks a free one.
	HTTPPort int
	// Logger receives Prosody's stdout and stderr; default Dir/prosody.log.
	Logger io.Writer
}

// Server is a running Prosody. Its methods are safe for concurrent use.
type Server struct {
	// Domain, MUCDomain and ComponentDomain are the hosts served. Immutable.
	Domain, MUCDomain, ComponentDomain string
	// ComponentSecret authenticates the external component. Immutable; never log it.
	ComponentSecret string
	// C2SAddr and ComponentAddr are the client and component listeners, host:port.
	// Immutable.
	C2SAddr, ComponentAddr string
	// UploadDomain is the http_file_share component and UploadURL its HTTP base
	// (http://127.0.0.1:PORT); both empty unless Options.EnableUpload. Immutable.
	UploadDomain, UploadURL string
	// Dir holds config and data. Immutable.
	Dir string

	prosody    string         // path of the prosody binary, immutable
	prosodyctl string         // path of prosodyctl, immutable
	peer       *peerproc.Peer // directory, log and process; set by Start

	c2sPort, componentPort, httpPort int // immutable after the first successful start
}

// The executables Prosody is run and administered with.
var (
	prosodyProgram    = peerproc.Program{Peer: "prosody", Name: "prosody", Dir: "/usr/bin", Debian: "prosody"}
	prosodyctlProgram = peerproc.Program{Peer: "prosody", Name: "prosodyctl", Dir: "/usr/bin", Debian: "prosody"}
)

// Available reports why Prosody cannot run here, or nil if it can.
func Available() error {
	if err := prosodyProgram.Available(); err != nil {
		return err
	}
	_, err := prosodyctlProgram.Path()
	return err
}

// StartTest starts a Prosody for t and stops it when t ends; Dir defaults to t.TempDir().
// It skips t when Prosody is not installed, unless SWITCHBOARD_REQUIRE_PEERS=1 (set by
// scripts/test), in which case t fails instead. On failure of t the log tail is logged.
func StartTest(t testing.TB, opts Options) *Server {
	t.Helper()
	srv := peerproc.StartForTest(t, "prosody", Available(), 2*readyTimeout, func(ctx context.Context) (*Server, error) {
		opts.Dir = peerproc.TestDir(t, opts.Dir)
		return Start(ctx, opts)
	})
	srv.peer.StopAtEnd(t, stopTimeout)
	return srv
}

// Start writes a config into opts.Dir and starts Prosody, returning once every listener
// accepts TCP connections (at most 30 s). ctx bounds the start only; the server runs until
// Stop.
func Start(ctx context.Context, opts Options) (*Server, error) {
	if err := Available(); err != nil {
		return nil, err
	}
	s := &Server{
		Domain:          opts.Domain,
		MUCDomain:       opts.MUCDomain,
		ComponentDomain: opts.ComponentDomain,
		ComponentSecret: opts.ComponentSecret,
	}
	s.prosody, _ = prosodyProgram.Path()
	s.prosodyctl, _ = prosodyctlProgram.Path()
	if s.Domain == "" {
		s.Domain = "localhost"
	}
	if s.MUCDomain == "" {
		s.MUCDomain = "conference." + s.Domain
	}
	if s.ComponentDomain == "" {
		s.ComponentDomain = "matrix." + s.Domain
	}
	if opts.EnableUpload {
		s.UploadDomain = "upload." + s.Domain
	}
	if s.ComponentSecret == "" {
		secret := make([]byte, 24)
		if _, err := rand.Read(secret); err != nil {
			return nil, fmt.Errorf("prosody: failed to make a secret: %w", err)
		}
		s.ComponentSecret = hex.EncodeToString(secret)
	}
	peer, err := peerproc.Open("prosody", opts.Dir, logFile, opts.Logger)
	if err != nil {
		return nil, err
	}
	s.peer, s.Dir = peer, peer.Dir()

	fixed := opts.C2SPort != 0 && opts.ComponentPort != 0 && (!opts.EnableUpload || opts.HTTPPort != 0)
	err = peerproc.StartOnFreePorts(fixed, func() error {
		if err := s.pickPorts(opts); err != nil {
			return err
		}
		if err := s.writeConfig(); err != nil {
			return err
		}
		return s.start(ctx)
	})
	if err != nil {
		_ = s.Stop()
		return nil, err
	}
	return s, nil
}

// pickPorts sets the ports and addresses from opts, picking free ones for zeros.
func (s *Server) pickPorts(opts Options) error {
	pick := func(want int) (int, error) {
		if want != 0 {
			return want, nil
		}
		return peerproc.FreePort()
	}
	var err error
	if s.c2sPort, err = pick(opts.C2SPort); err != nil {
		return err
	}
	if s.componentPort, err = pick(opts.ComponentPort); err != nil {
		return err
	}
	s.C2SAddr = net.JoinHostPort(loopback, strconv.Itoa(s.c2sPort))
	s.ComponentAddr = net.JoinHostPort(loopback, strconv.Itoa(s.componentPort))
	if s.UploadDomain != "" {
		if s.httpPort, err = pick(opts.HTTPPort); err != nil {
			return err
		}
		s.UploadURL = "http://" + net.JoinHostPort(loopback, strconv.Itoa(s.httpPort))
	}
	return nil
}

// listeners are the addresses waitReady waits for.
func (s *Server) listeners() []string {
	addrs := []string{s.C2SAddr, s.ComponentAddr}
	if s.UploadDomain != "" {
		addrs = append(addrs, strings.TrimPrefix(s.UploadURL, "http://"))
	}
	return addrs
}

// Register creates the account user@Domain with password. It works while Prosody runs.
func (s *Server) Register(ctx context.Context, user, password string) error {
	cmd := exec.CommandContext(ctx, s.prosodyctl, "--config", filepath.Join(s.Dir, configFile),
		"register", user, s.Domain, password)
	cmd.Dir = s.Dir
	var out bytes.Buffer
	cmd.Stdout = &out
	cmd.Stderr = &out
	if err := cmd.Run(); err != nil {
		// prosodyctl does not echo the password; its output is safe to show.
		return fmt.Errorf("prosody: failed to register %s@%s: %w\n%s", user, s.Domain, err, peerproc.Tail(out.Bytes(), 20))
	}
	return nil
}

// start launches prosody and waits until it listens.
func (s *Server) start(ctx context.Context) error {
	cmd := exec.Command(s.prosody, "--config", filepath.Join(s.Dir, configFile), "-F")
	cmd.Dir = s.Dir
	return s.peer.LaunchReady(cmd, fmt.Sprintf("starting prosody (c2s %s, component %s)", s.C2SAddr, s.ComponentAddr), stopTimeout, func(p *peerproc.Process, mark int64) error {
		return s.waitReady(ctx, p, mark)
	})
}

// waitReady waits until Prosody has logged that it listens on each of our ports (it keeps
// running when it cannot bind one, and a dial alone could reach another program) and each
// accepts TCP connections. mark is the tail position at the start of this run.
func (s *Server) waitReady(ctx context.Context, p *peerproc.Process, mark int64) error {
	ctx, cancel := context.WithTimeout(ctx, readyTimeout)
	defer cancel()
	var d net.Dialer
	var lastErr error
	for {
		lastErr = nil
		log := string(s.peer.Tail().Since(mark))
		if strings.Contains(log, "Failed to open server port") {
			return fmt.Errorf("%w: %v\n%s", errAddrInUse, s.listeners(), peerproc.Tail([]byte(log), 40))
		}
		for _, addr := range s.listeners() {
			if !strings.Contains(log, "on ["+loopback+"]:"+addr[strings.LastIndexByte(addr, ':')+1:]) {
				lastErr = fmt.Errorf("%s: not yet listed as activated in the log", addr)
				break
			}
			dctx, dcancel := context.WithTimeout(ctx, time.Second)
			conn, err := d.DialContext(dctx, "tcp", addr)
			dcancel()
			if err != nil {
				lastErr = err
				break
			}
			conn.Close()
		}
		if lastErr == nil {
			return nil
		}
		select {
		case <-p.Done():
			return fmt.Errorf("prosody: exited during start (%v); log tail:\n%s", p.Err(), s.LogTail(40))
		case <-ctx.Done():
			return fmt.Errorf("prosody: not ready: %w (last: %v); log tail:\n%s", ctx.Err(), lastErr, s.LogTail(40))
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// Stop stops Prosody (SIGTERM, then SIGKILL after 10 s) and removes Dir if Start created
// it. It reports an error if Prosody had died on its own. Stop is final and idempotent.
func (s *Server) Stop() error { return s.peer.Stop(stopTimeout) }

// Restart stops Prosody and starts it again with the same config, data and ports. Open
// client and component streams are closed by the stop.
func (s *Server) Restart(ctx context.Context) error {
	return errors.Join(s.peer.Halt(stopTimeout), s.start(ctx))
}

// LogTail returns the last n lines Prosody wrote (at most 64 KiB).
func (s *Server) LogTail(n int) string { return s.peer.LogTail(n) }
