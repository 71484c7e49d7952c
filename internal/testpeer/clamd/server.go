// Package clamd runs a real virus scanner, the Debian package's clamd (ClamAV 1.4), for
// Switchboard's integration tests and benchmarks. It is imported by tests only.
//
// No signature download is possible in a test, so Start writes a database of its own
// with one signature: the MD5 hash of the EICAR test file (EICAR), which clamd reports as
// Signature. It then runs one clamd in the foreground listening on a loopback TCP port
// and a Unix socket, with StreamMaxLength as configured (default 25 MiB). clamd runs as
// the user who starts it: the config has no User line, so a test's private temporary
// directory stays readable (Debian's own config switches to the user clamav, who could
// not read it). StartTest does the same for a test and stops the server at its end.
//
// With the one-signature database clamd answers 10 to 25 ms after it is launched (measured
// on a 2-core machine; readiness is polled every 10 ms), a restart takes as long.
//
//	srv := clamd.StartTest(t, clamd.Options{})
//	conn, err := net.Dial("unix", srv.SocketPath()) // or "tcp", srv.TCPAddr()
//	// zINSTREAM\0 with clamd.EICAR() → "stream: Switchboard.Test.EICAR.UNOFFICIAL FOUND\0"
//	err = srv.Halt()         // an outage: both listeners are gone
//	err = srv.Restart(ctx)   // back on the same port and socket
package clamd

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
	"testing"
	"time"

	"github.com/switchboard-matrix/switchboard/internal/testpeer/peerproc"
)

// DefaultStreamMaxLength is clamd's StreamMaxLength when Options.StreamMaxLength is 0.
const DefaultStreamMaxLength = 25 << 20

// Timeouts of the server's life cycle.
const (
	readyTimeout = 30 * time.Second
	// stopTimeout bounds clamd's clean stop, which waits for scans in progress.
	stopTimeout = 5 * time.Second
)

const loopback = "127.0.0.1"

// errAddrInUse marks a start that failed because the TCP port was taken.
var errAddrInUse = fmt.Errorf("clamd: %w", peerproc.ErrAddrInUse)

// Options configures Start. The zero value is a usable default.
type Options struct {
	// Dir holds config, signature database, temporary files and clamd's log. Default: a
	// new temporary directory that Stop removes. Created if missing.
	Dir string
	// TCPPort is listened on at 127.0.0.1; 0 picks a free one.
	TCPPort int
	// StreamMaxLength is the longest INSTREAM clamd accepts, in bytes (1 to 4 GiB-1);
	// default DefaultStreamMaxLength.
	StreamMaxLength int64
	// Logger receives clamd's stdout and stderr (start-up errors); default Dir/clamd.out.
	// clamd's own log is always Dir/clamd.log (clamd refuses to log to a pipe).
	Logger io.Writer
}

// Server is a running clamd. Its methods are safe for concurrent use.
type Server struct {
	// Dir holds config, database and log. Immutable.
	Dir string

	clamd      string         // path of the binary, immutable
	streamMax  int64          // immutable
	port       int            // immutable after the first successful start
	tcpAddr    string         // immutable after the first successful start
	socketPath string         // immutable
	sockDir    string         // immutable; a short directory of the socket outside Dir, or ""
	peer       *peerproc.Peer // directory, output and process; set by Start
}

// program is clamd's executable.
var program = peerproc.Program{Peer: "clamd", Name: "clamd", Dir: "/usr/sbin", Debian: "clamav-daemon"}

// Available reports why clamd cannot run here, or nil if it can.
func Available() error { return program.Available() }

// StartTest starts a clamd for t and stops it when t ends; Dir defaults to t.TempDir().
// It skips t when clamd is not installed, unless SWITCHBOARD_REQUIRE_PEERS=1 (set by
// scripts/test), in which case t fails instead. On failure of t the tails of clamd's
// output and log are logged.
func StartTest(t testing.TB, opts Options) *Server {
	t.Helper()
	srv := peerproc.StartForTest(t, "clamd", Available(), 2*readyTimeout, func(ctx context.Context) (*Server, error) {
		opts.Dir = peerproc.TestDir(t, opts.Dir)
		return Start(ctx, opts)
	})
	t.Cleanup(func() { // runs after the stop below: cleanups run last-in, first-out
		if t.Failed() {
			t.Logf("clamd log tail (%s):\n%s", srv.Dir, tailFile(srv.logPath(), 60))
		}
	})
	srv.peer.StopAtEndWith(t, srv.Stop)
	return srv
}

// Start writes a config and the signature database into opts.Dir and starts clamd,
// returning once it answers PING on both listeners (at most 30 s). ctx bounds the start
// only; the server runs until Stop.
func Start(ctx context.Context, opts Options) (*Server, error) {
	if err := Available(); err != nil {
		return nil, err
	}
	s := &Server{streamMax: opts.StreamMaxLength}
	if s.streamMax == 0 {
		s.streamMax = DefaultStreamMaxLength
	}
	if s.streamMax < 1 || s.streamMax >= 4<<30 {
		return nil, fmt.Errorf("clamd: StreamMaxLength %d is not between 1 and 4 GiB-1", s.streamMax)
	}
	s.clamd, _ = program.Path()
	peer, err := peerproc.Open("clamd", opts.Dir, outFile, opts.Logger)
	if err != nil {
		return nil, err
	}
	s.peer, s.Dir = peer, peer.Dir()
	if err := s.prepare(); err != nil {
		_ = s.Stop()
		return nil, err
	}
	err = peerproc.StartOnFreePorts(opts.TCPPort != 0, func() error {
		if s.port = opts.TCPPort; s.port == 0 {
			if s.port, err = peerproc.FreePort(); err != nil {
				return err
			}
		}
		s.tcpAddr = net.JoinHostPort(loopback, strconv.Itoa(s.port))
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

// TCPAddr is clamd's TCP listener, 127.0.0.1:PORT. It stays the same across Restart.
func (s *Server) TCPAddr() string { return s.tcpAddr }

// SocketPath is clamd's Unix socket. It stays the same across Restart.
func (s *Server) SocketPath() string { return s.socketPath }

// StreamMaxLength is the longest INSTREAM clamd accepts, in bytes.
func (s *Server) StreamMaxLength() int64 { return s.streamMax }

// start launches clamd and waits until it answers on both listeners.
func (s *Server) start(ctx context.Context) error {
	cmd := exec.Command(s.clamd, "--config-file="+filepath.Join(s.Dir, configFile))
	cmd.Dir = s.Dir
	mark := fileSize(s.logPath())
	note := fmt.Sprintf("starting clamd (tcp %s, unix %s)", s.tcpAddr, s.socketPath)
	return s.peer.LaunchReady(cmd, note, stopTimeout, func(p *peerproc.Process, _ int64) error {
		return s.waitReady(ctx, p, mark)
	})
}

// waitReady waits until clamd answers PING on the Unix socket, has logged that it bound
// our TCP port (it keeps running when it cannot, serving the socket only, and a PING
// alone could reach another clamd) and answers PING there too. mark is the size of the
// log file before this run.
func (s *Server) waitReady(ctx context.Context, p *peerproc.Process, mark int64) error {
	ctx, cancel := context.WithTimeout(ctx, readyTimeout)
	defer cancel()
	bound := fmt.Sprintf("TCP: Bound to [%s]:%d", loopback, s.port)
	var lastErr error
	for {
		lastErr = ping(ctx, "unix", s.socketPath)
		if lastErr == nil {
			log := readFrom(s.logPath(), mark)
			switch {
			case strings.Contains(log, "Address already in use"):
				return fmt.Errorf("%w: %s\n%s", errAddrInUse, s.tcpAddr, peerproc.Tail([]byte(log), 20))
			case !strings.Contains(log, bound):
				lastErr = fmt.Errorf("%s: not yet logged as bound", s.tcpAddr)
			default:
				if lastErr = ping(ctx, "tcp", s.tcpAddr); lastErr == nil {
					return nil
				}
			}
		}
		select {
		case <-p.Done():
			return fmt.Errorf("clamd: exited during start (%v); output and log tail:\n%s", p.Err(), s.LogTail(40))
		case <-ctx.Done():
			return fmt.Errorf("clamd: not ready: %w (last: %v); output and log tail:\n%s", ctx.Err(), lastErr, s.LogTail(40))
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// ping sends clamd a PING and expects PONG, within a second.
func ping(ctx context.Context, network, addr string) error {
	ctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	var d net.Dialer
	conn, err := d.DialContext(ctx, network, addr)
	if err != nil {
		return err
	}
	defer conn.Close()
	deadline, _ := ctx.Deadline()
	_ = conn.SetDeadline(deadline)
	if _, err := conn.Write([]byte("zPING\x00")); err != nil {
		return err
	}
	reply, err := io.ReadAll(io.LimitReader(conn, 64))
	if err != nil {
		return err
	}
	if string(reply) != "PONG\x00" {
		return fmt.Errorf("%s %s: PING answered %q", network, addr, reply)
	}
	return nil
}

// Stop stops clamd (SIGTERM, then SIGKILL after 5 s) and removes Dir if Start created it.
// It reports an error if clamd had died on its own. Stop is final and idempotent.
func (s *Server) Stop() error {
	err := s.peer.Stop(stopTimeout)
	if s.sockDir != "" {
		_ = os.RemoveAll(s.sockDir)
	}
	return err
}

// Halt stops clamd without starting it again (an outage: dialing either listener is
// refused); Restart ends it. It reports an error if clamd had died on its own.
func (s *Server) Halt() error { return s.peer.Halt(stopTimeout) }

// Restart stops clamd if it runs and starts it again with the same config, database,
// port and socket.
func (s *Server) Restart(ctx context.Context) error {
	return errors.Join(s.peer.Halt(stopTimeout), s.start(ctx))
}

// LogTail returns the last n lines of clamd's output and of its log.
func (s *Server) LogTail(n int) string {
	return "output:\n" + s.peer.LogTail(n) + "\nlog (" + s.logPath() + "):\n" + tailFile(s.logPath(), n)
}
