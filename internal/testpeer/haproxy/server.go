// Package haproxy runs Debian's HAProxy 2.6 as the front of a Switchboard
// high-availability group in tests: the homeserver sends its appservice transactions to
// HAProxy, which forwards them to whichever Switchboard process is ready (GET /health/ready
// on its metrics port answers 200: the leader). It is imported by tests only.
//
// Start writes a haproxy.cfg (Server.Config, the front docs/high-availability.md
// recommends), checks it with haproxy -c and runs haproxy in the foreground, its request
// log and alerts going to Options.Logger or Dir/haproxy.log. It returns once the frontend
// accepts connections, 60 to 100 ms after it was called (haproxy -c included; measured on
// a 2-core machine). HAProxy's first checks of the backends follow within 250 ms; until
// then it counts every backend as up.
//
// What the config makes HAProxy do (haproxy_test.go shows each): a transaction goes to a
// ready backend only; when readiness moves to another backend, the transactions follow
// after its next check, within 0.25 s; a transaction that a backend refuses is sent to
// another backend at once, and so is one that a backend answers 503 (a standby whose failed
// check is not yet counted) if it is up to about 15 KiB, headers included; a larger one
// gets the 503. With no backend ready, HAProxy answers 503 itself.
//
//	front := haproxy.StartTest(t, haproxy.Options{
//		Listen:   "127.0.0.1:" + strconv.Itoa(port), // the registration's url
//		Backends: []haproxy.Backend{{Name: "a", Addr: "127.0.0.1:8001", CheckPort: 9001}, …},
//	})
//	t.Log(front.Config())
package haproxy

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/switchboard-matrix/switchboard/internal/testpeer/peerproc"
)

// Timeouts of the server's life cycle.
const (
	checkTimeout = 10 * time.Second // haproxy -c
	readyTimeout = 10 * time.Second
	stopTimeout  = 5 * time.Second
)

// errAddrInUse marks a start that failed because Listen was taken.
var errAddrInUse = fmt.Errorf("haproxy: %w", peerproc.ErrAddrInUse)

// Backend is one Switchboard process of the group.
type Backend struct {
	// Name names the server in HAProxy's config and log: letters, digits and _.:-, unique.
	Name string
	// Addr is 127.0.0.1:PORT of the process's transaction endpoint (appservice.listen).
	Addr string
	// CheckPort is the process's metrics port, which serves GET /health/ready.
	CheckPort int
}

// Options configures Start. Listen and Backends are required.
type Options struct {
	// Dir holds haproxy.cfg and the log. Default: a new temporary directory that Stop
	// removes. Created if missing.
	Dir string
	// Listen is 127.0.0.1:PORT of the frontend, the port the homeserver's registration
	// points at. Required.
	Listen string
	// Backends are the processes of the group, at least one.
	Backends []Backend
	// Logger receives HAProxy's output (its request log and alerts); default
	// Dir/haproxy.log.
	Logger io.Writer
}

// Server is a running HAProxy. Its methods are safe for concurrent use.
type Server struct {
	// Dir holds haproxy.cfg and the log. Immutable.
	Dir string

	haproxy string         // path of the binary, immutable
	listen  string         // immutable
	config  string         // the haproxy.cfg text, immutable
	peer    *peerproc.Peer // directory, output and process; set by Start
}

// program is HAProxy's executable.
var program = peerproc.Program{Peer: "haproxy", Name: "haproxy", Dir: "/usr/sbin", Debian: "haproxy"}

// Available reports why HAProxy cannot run here, or nil if it can.
func Available() error { return program.Available() }

// StartTest starts an HAProxy for t and stops it when t ends; Dir defaults to
// t.TempDir(). It skips t when HAProxy is not installed, unless
// SWITCHBOARD_REQUIRE_PEERS=1 (set by scripts/test), in which case t fails instead. On
// failure of t the tail of HAProxy's log is logged.
func StartTest(t testing.TB, opts Options) *Server {
	t.Helper()
	srv := peerproc.StartForTest(t, "haproxy", Available(), checkTimeout+readyTimeout, func(ctx context.Context) (*Server, error) {
		opts.Dir = peerproc.TestDir(t, opts.Dir)
		return Start(ctx, opts)
	})
	srv.peer.StopAtEndWith(t, srv.Stop)
	return srv
}

// Start validates opts, writes haproxy.cfg into opts.Dir, checks it with haproxy -c and
// starts HAProxy, returning once the frontend accepts TCP connections. An error wraps
// peerproc.ErrAddrInUse when Listen is taken. ctx bounds the start only; HAProxy runs
// until Stop.
func Start(ctx context.Context, opts Options) (*Server, error) {
	if err := opts.validate(); err != nil {
		return nil, err
	}
	if err := Available(); err != nil {
		return nil, err
	}
	s := &Server{listen: opts.Listen}
	s.haproxy, _ = program.Path()
	var err error
	if s.config, err = opts.config(); err != nil {
		return nil, err
	}
	peer, err := peerproc.Open("haproxy", opts.Dir, logFile, opts.Logger)
	if err != nil {
		return nil, err
	}
	s.peer, s.Dir = peer, peer.Dir()
	if err := s.writeConfig(ctx); err != nil {
		_ = s.Stop()
		return nil, err
	}
	if err := s.start(ctx); err != nil {
		_ = s.Stop()
		return nil, err
	}
	return s, nil
}

// Config is the haproxy.cfg that HAProxy runs.
func (s *Server) Config() string { return s.config }

// Addr is the frontend's address, Options.Listen.
func (s *Server) Addr() string { return s.listen }

// writeConfig writes haproxy.cfg and has haproxy -c check it.
func (s *Server) writeConfig(ctx context.Context) error {
	path := filepath.Join(s.Dir, configFile)
	if err := os.WriteFile(path, []byte(s.config), 0o644); err != nil {
		return fmt.Errorf("haproxy: failed to write config: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, checkTimeout)
	defer cancel()
	out, err := exec.CommandContext(ctx, s.haproxy, "-c", "-f", path).CombinedOutput()
	if err != nil {
		return fmt.Errorf("haproxy: haproxy -c rejected %s: %w\n%s", path, err, out)
	}
	return nil
}

// start launches HAProxy in the foreground and waits until the frontend accepts
// connections.
func (s *Server) start(ctx context.Context) error {
	// HAProxy binds with SO_REUSEPORT, so it would share a port that another HAProxy
	// holds; a listener without that option finds out first.
	ln, err := net.Listen("tcp", s.listen)
	if err != nil {
		return fmt.Errorf("%w: %s: %v", errAddrInUse, s.listen, err)
	}
	ln.Close()
	cmd := exec.Command(s.haproxy, "-db", "-f", filepath.Join(s.Dir, configFile))
	cmd.Dir = s.Dir
	note := fmt.Sprintf("starting haproxy (frontend %s)", s.listen)
	return s.peer.LaunchReady(cmd, note, stopTimeout, func(p *peerproc.Process, mark int64) error {
		return s.waitReady(ctx, p, mark)
	})
}

// waitReady waits until the frontend accepts a TCP connection. mark is the log's tail
// position before the launch.
func (s *Server) waitReady(ctx context.Context, p *peerproc.Process, mark int64) error {
	ctx, cancel := context.WithTimeout(ctx, readyTimeout)
	defer cancel()
	var lastErr error
	for {
		select {
		case <-p.Done():
			out := s.peer.Tail().Since(mark)
			if strings.Contains(string(out), "Address already in use") {
				return fmt.Errorf("%w: %s\n%s", errAddrInUse, s.listen, peerproc.Tail(out, 20))
			}
			return fmt.Errorf("haproxy: exited during start (%v); log tail:\n%s", p.Err(), peerproc.Tail(out, 40))
		default:
		}
		var d net.Dialer
		dialCtx, cancelDial := context.WithTimeout(ctx, time.Second)
		conn, err := d.DialContext(dialCtx, "tcp", s.listen)
		cancelDial()
		if err == nil {
			conn.Close()
			return nil
		}
		lastErr = err
		select {
		case <-p.Done(): // reported above
		case <-ctx.Done():
			return fmt.Errorf("haproxy: frontend %s not accepting: %w (last: %v); log tail:\n%s", s.listen, ctx.Err(), lastErr, s.LogTail(40))
		case <-time.After(5 * time.Millisecond):
		}
	}
}

// Stop stops HAProxy (SIGTERM, then SIGKILL after 5 s) and removes Dir if Start created
// it. It reports an error if HAProxy had died on its own. Stop is final and idempotent.
func (s *Server) Stop() error { return s.peer.Stop(stopTimeout) }

// Halt stops HAProxy without starting it again (an outage of the front: connections to
// Listen are refused); Restart ends it. It reports an error if HAProxy had died on its
// own.
func (s *Server) Halt() error { return s.peer.Halt(stopTimeout) }

// Restart stops HAProxy if it runs and starts it again with the same config.
func (s *Server) Restart(ctx context.Context) error {
	return errors.Join(s.peer.Halt(stopTimeout), s.start(ctx))
}

// LogTail returns the last n lines of HAProxy's output: the request log, one line per
// request with the server that answered, and alerts such as servers going up and down.
func (s *Server) LogTail(n int) string { return s.peer.LogTail(n) }
