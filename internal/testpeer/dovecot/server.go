// Package dovecot runs a real IMAP server, the Debian package's Dovecot (2.3), for
// Switchboard's integration tests. It is imported by tests only.
//
// Start writes a throw-away config into a directory and runs one Dovecot in the
// foreground on loopback ports: IMAP without TLS (AUTH=PLAIN and LOGIN allowed, IDLE) and
// LMTP for delivery. Users live in a passwd-file (AddUser) and get a maildir home under
// the directory, owned by nobody:nogroup, so Dovecot must run as root. StartTest does the
// same for a test and stops the server at its end.
//
//	srv := dovecot.StartTest(t, dovecot.Options{})
//	err := srv.AddUser(ctx, "alice@example.test", "secret")
//	err = srv.Deliver(ctx, "alice@example.test", rawMessage)
//	conn, err := net.Dial("tcp", srv.IMAPAddr) // LOGIN alice@example.test secret
package dovecot

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/switchboard-matrix/switchboard/internal/testpeer/peerproc"
)

// Timeouts of the server's life cycle.
const (
	readyTimeout = 30 * time.Second
	// stopTimeout is short: Dovecot's master now and then waits seconds for a child
	// (anvil, or one forked just before SIGTERM) when stopped soon after a start, and a
	// test peer has nothing to save that Dovecot has not written when a command returned.
	stopTimeout = time.Second
)

// Files and directories inside Server.Dir.
const (
	configFile = "dovecot.conf"
	passwdFile = "passwd"
	homeDir    = "home"
	runDir     = "run"
	stateDir   = "state"
	logFile    = "dovecot.log"
)

const loopback = "127.0.0.1"

// errAddrInUse marks a start that failed because a port was taken.
var errAddrInUse = fmt.Errorf("dovecot: %w", peerproc.ErrAddrInUse)

// Options configures Start. The zero value is a usable default.
type Options struct {
	// Dir holds config, passwd-file, mail homes and the default log. Default: a new
	// temporary directory that Stop removes. Created if missing; its users and mail are
	// reused. Dir and its parents must be searchable by nobody (mode o+x), since mail is
	// stored as nobody; Start makes Dir itself so.
	Dir string
	// Logger receives Dovecot's log; default Dir/dovecot.log.
	Logger io.Writer
}

// Server is a running Dovecot. Its methods are safe for concurrent use.
type Server struct {
	// IMAPAddr and LMTPAddr are the IMAP and LMTP listeners, host:port. Immutable.
	IMAPAddr, LMTPAddr string
	// Dir holds config, passwd-file and mail homes (Dir/home/<address>). Immutable.
	Dir string

	dovecot string         // path of the dovecot binary, immutable
	baseDir string         // Dovecot's sockets, immutable; Dir/run unless that is too long
	ownBase bool           // immutable; Stop removes baseDir (it is outside Dir)
	ownDir  bool           // immutable; Dir is a temporary directory of Start's
	peer    *peerproc.Peer // directory, log and process; set by Start

	imapPort, lmtpPort int // immutable after the first successful start

	usersMu sync.Mutex // serialises AddUser
}

// program is Dovecot's executable.
var program = peerproc.Program{Peer: "dovecot", Name: "dovecot", Dir: "/usr/sbin", Debian: "dovecot-imapd dovecot-lmtpd"}

// Available reports why Dovecot cannot run here, or nil if it can.
func Available() error {
	if err := program.Available(); err != nil {
		return err
	}
	if os.Geteuid() != 0 {
		return errors.New("dovecot: the test peer must run as root (mail homes belong to nobody)")
	}
	return nil
}

// StartTest starts a Dovecot for t and stops it when t ends. It skips t when Dovecot is
// not installed, unless SWITCHBOARD_REQUIRE_PEERS=1 (set by scripts/test), in which case t
// fails instead. On failure of t the log tail is logged.
//
// Unlike other peers, Dir does not default to t.TempDir(): the test's temporary
// directories are private to root, and Dovecot reads mail as nobody. Start's own temporary
// directory is removed by Stop.
func StartTest(t testing.TB, opts Options) *Server {
	t.Helper()
	srv := peerproc.StartForTest(t, "dovecot", Available(), 2*readyTimeout, func(ctx context.Context) (*Server, error) {
		return Start(ctx, opts)
	})
	t.Cleanup(srv.removeBase) // after the stop below: cleanups run last-in, first-out
	srv.peer.StopAtEnd(t, stopTimeout)
	return srv
}

// Start writes a config into opts.Dir and starts Dovecot, returning once it listens on both
// ports (at most 30 s). ctx bounds the start only; the server runs until
// Stop.
func Start(ctx context.Context, opts Options) (*Server, error) {
	if err := Available(); err != nil {
		return nil, err
	}
	s := &Server{ownDir: opts.Dir == ""}
	s.dovecot, _ = program.Path()
	peer, err := peerproc.Open("dovecot", opts.Dir, logFile, opts.Logger)
	if err != nil {
		return nil, err
	}
	s.peer, s.Dir = peer, peer.Dir()
	if err := s.prepareDirs(); err != nil {
		_ = s.Stop()
		return nil, err
	}
	err = peerproc.StartOnFreePorts(false, func() error {
		if err := s.pickPorts(); err != nil {
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

// pickPorts picks free loopback ports and sets the addresses.
func (s *Server) pickPorts() error {
	var err error
	if s.imapPort, err = peerproc.FreePort(); err != nil {
		return err
	}
	if s.lmtpPort, err = peerproc.FreePort(); err != nil {
		return err
	}
	s.IMAPAddr = net.JoinHostPort(loopback, strconv.Itoa(s.imapPort))
	s.LMTPAddr = net.JoinHostPort(loopback, strconv.Itoa(s.lmtpPort))
	return nil
}

// start launches dovecot and waits until it listens.
func (s *Server) start(ctx context.Context) error {
	cmd := exec.Command(s.dovecot, "-F", "-c", filepath.Join(s.Dir, configFile))
	cmd.Dir = s.Dir
	return s.peer.LaunchReady(cmd, fmt.Sprintf("starting dovecot (imap %s, lmtp %s)", s.IMAPAddr, s.LMTPAddr), stopTimeout, func(p *peerproc.Process, mark int64) error {
		return s.waitReady(ctx, p, mark)
	})
}

// waitReady waits until Dovecot has logged its start-up, which it does once it listens on
// every port (it exits when it cannot bind one). It does not dial: a connection makes
// Dovecot fork a process, and one forked just as a stop begins delays that stop by seconds.
// mark is the tail position at the start of this run.
func (s *Server) waitReady(ctx context.Context, p *peerproc.Process, mark int64) error {
	ctx, cancel := context.WithTimeout(ctx, readyTimeout)
	defer cancel()
	for {
		log := string(s.peer.Tail().Since(mark))
		if strings.Contains(log, "Address already in use") {
			return fmt.Errorf("%w: %s, %s\n%s", errAddrInUse, s.IMAPAddr, s.LMTPAddr, peerproc.Tail([]byte(log), 40))
		}
		if strings.Contains(log, " starting up for ") {
			return nil
		}
		select {
		case <-p.Done():
			if strings.Contains(string(s.peer.Tail().Since(mark)), "Address already in use") {
				continue // reported above, with the log
			}
			return fmt.Errorf("dovecot: exited during start (%v); log tail:\n%s", p.Err(), s.LogTail(40))
		case <-ctx.Done():
			return fmt.Errorf("dovecot: not ready: %w; log tail:\n%s", ctx.Err(), s.LogTail(40))
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// Stop stops Dovecot (SIGTERM, then SIGKILL after 1 s) and removes Dir if Start created
// it. It reports an error if Dovecot had died on its own. Stop is final and idempotent.
func (s *Server) Stop() error {
	err := s.peer.Stop(stopTimeout)
	s.removeBase()
	return err
}

// removeBase removes a socket directory that Start made outside Dir, and Dir if it is
// Start's and still there: a Dovecot child killed last may have written into it after
// the peer removed it.
func (s *Server) removeBase() {
	if s.ownBase {
		_ = os.RemoveAll(s.baseDir)
	}
	for i := 0; s.ownDir && i < 10; i++ {
		if _, err := os.Stat(s.Dir); errors.Is(err, os.ErrNotExist) {
			break
		}
		time.Sleep(50 * time.Millisecond)
		_ = os.RemoveAll(s.Dir)
	}
}

// Restart stops Dovecot and starts it again with the same config, users, mail and ports.
// Open IMAP and LMTP connections are closed by the stop.
func (s *Server) Restart(ctx context.Context) error {
	return errors.Join(s.peer.Halt(stopTimeout), s.start(ctx))
}

// LogTail returns the last n lines Dovecot wrote (at most 64 KiB).
func (s *Server) LogTail(n int) string { return s.peer.LogTail(n) }
