// Package kamailio runs a real SIP proxy, the Debian package's Kamailio (5.6), for the
// end-to-end tests of Switchboard's SIP bridge. It is imported by tests only.
//
// Start renders the routing script kamailio.cfg.tmpl (ConfigTemplate) into a throw-away
// directory and runs one Kamailio on 127.0.0.1 as the organisation's registrar, proxy and
// presence server for a SIP domain (default "sip.test"), listening on UDP, TCP and TLS
// ports. Users and their passwords are given at start (digest auth against a db_text
// subscriber table); registrations live in memory; PUBLISH/SUBSCRIBE/NOTIFY for
// Event: presence are served by the presence and presence_xml modules. The TLS
// certificate is issued by a CA that Start generates; its file is Server.CAFile.
//
// With a bridge configured (Options.BridgeDomain and BridgeAddr), requests whose
// Request-URI is in the bridge domain are forwarded to the bridge, and requests whose
// From is in the bridge domain are accepted without authentication when they come from
// the bridge's IP address — on loopback that is every local process, see the trust model
// at the top of kamailio.cfg.tmpl.
//
//	srv := kamailio.StartTest(t, kamailio.Options{
//		Users:        map[string]string{"alice": "secret"},
//		BridgeDomain: "matrix.test", BridgeAddr: "127.0.0.1:5070", BridgeTransport: "udp",
//	})
//	proxy := srv.ProxyURI("tcp") // "sip:127.0.0.1:PORT;transport=tcp"
package kamailio

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

// DefaultDomain is the SIP domain served when Options.Domain is empty.
const DefaultDomain = "sip.test"

// Timeouts of the server's life cycle.
const (
	readyTimeout = 30 * time.Second
	stopTimeout  = 5 * time.Second
)

// Files and directories inside Server.Dir.
const (
	configFile = "kamailio.cfg"
	pidFile    = "kamailio.pid"
	runDir     = "run"
	dbDir      = "db"
	caFile     = "ca.pem"
	certFile   = "server.pem"
	keyFile    = "server.key"
	logFile    = "kamailio.log"
)

const (
	loopback   = "127.0.0.1"
	modulesDir = "/usr/lib/x86_64-linux-gnu/kamailio/modules"
)

// errAddrInUse marks a start that failed because a port was taken.
var errAddrInUse = fmt.Errorf("kamailio: %w", peerproc.ErrAddrInUse)

// Options configures Start. The zero value is a usable default: domain sip.test, no
// users, no bridge.
type Options struct {
	// Domain is the SIP domain served (the digest realm too); default DefaultDomain.
	Domain string
	// Users maps user names (RFC 3261 unreserved characters) to passwords. Only their
	// HA1 is written to disk.
	Users map[string]string
	// BridgeDomain is the bridge's SIP domain, e.g. "matrix.test"; empty: no bridge.
	BridgeDomain string
	// BridgeAddr is where the bridge listens, IPv4 "host:port". Its host is also the
	// trusted source address of requests from BridgeDomain.
	BridgeAddr string
	// BridgeTransport is how the proxy reaches the bridge: "udp" (default), "tcp" or "tls".
	BridgeTransport string
	// Dir holds config, certificates, db_text tables and the default log. Default: a new
	// temporary directory that Stop removes.
	Dir string
	// Logger receives Kamailio's log; default Dir/kamailio.log.
	Logger io.Writer
}

// Server is a running Kamailio. Its methods are safe for concurrent use.
type Server struct {
	// Domain is the SIP domain served. Immutable.
	Domain string
	// UDPAddr, TCPAddr and TLSAddr are the listeners, host:port. Immutable.
	UDPAddr, TCPAddr, TLSAddr string
	// CAFile is the PEM file of the CA that issued the TLS certificate (for 127.0.0.1 and
	// Domain). Immutable.
	CAFile string
	// Dir holds config, certificates and the db_text tables. Immutable.
	Dir string

	kamailio string         // path of the binary, immutable
	modules  string         // module directory, immutable
	opts     Options        // immutable after Start's validation
	peer     *peerproc.Peer // directory, log and process; set by Start

	udpPort, tcpPort, tlsPort int // immutable after the first successful start
}

// program is Kamailio's executable.
var program = peerproc.Program{Peer: "kamailio", Name: "kamailio", Dir: "/usr/sbin", Debian: "kamailio"}

// Available reports why Kamailio cannot run here, or nil if it can.
func Available() error {
	if err := program.Available(); err != nil {
		return err
	}
	for _, m := range []string{"presence_xml.so", "tls.so", "db_text.so"} {
		if _, err := os.Stat(filepath.Join(modulesDir, m)); err != nil {
			return fmt.Errorf("kamailio: module %s missing (install the Debian packages kamailio kamailio-presence-modules kamailio-tls-modules): %w", m, err)
		}
	}
	return nil
}

// StartTest starts a Kamailio for t and stops it when t ends; Dir defaults to t.TempDir().
// It skips t when Kamailio is not installed, unless SWITCHBOARD_REQUIRE_PEERS=1 (set by
// scripts/test), in which case t fails instead. On failure of t the log tail is logged.
func StartTest(t testing.TB, opts Options) *Server {
	t.Helper()
	srv := peerproc.StartForTest(t, "kamailio", Available(), 2*readyTimeout, func(ctx context.Context) (*Server, error) {
		opts.Dir = peerproc.TestDir(t, opts.Dir)
		return Start(ctx, opts)
	})
	srv.peer.StopAtEnd(t, stopTimeout)
	return srv
}

// Start writes config, certificates and tables into opts.Dir and starts Kamailio,
// returning once it answers OPTIONS over UDP and accepts TCP and TLS connections (at
// most 30 s). ctx bounds the start only; the server runs until Stop.
func Start(ctx context.Context, opts Options) (*Server, error) {
	if err := Available(); err != nil {
		return nil, err
	}
	if err := opts.validate(); err != nil {
		return nil, err
	}
	s := &Server{Domain: opts.Domain, opts: opts, modules: modulesDir}
	s.kamailio, _ = program.Path()
	peer, err := peerproc.Open("kamailio", opts.Dir, logFile, opts.Logger)
	if err != nil {
		return nil, err
	}
	s.peer, s.Dir = peer, peer.Dir()
	s.CAFile = filepath.Join(s.Dir, caFile)
	if err := errors.Join(os.MkdirAll(filepath.Join(s.Dir, runDir), 0o755), s.writeCerts(), s.writeDB()); err != nil {
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
	for _, p := range []*int{&s.udpPort, &s.tcpPort, &s.tlsPort} {
		var err error
		if *p, err = peerproc.FreePort(); err != nil {
			return err
		}
	}
	s.UDPAddr = net.JoinHostPort(loopback, strconv.Itoa(s.udpPort))
	s.TCPAddr = net.JoinHostPort(loopback, strconv.Itoa(s.tcpPort))
	s.TLSAddr = net.JoinHostPort(loopback, strconv.Itoa(s.tlsPort))
	return nil
}

// start launches kamailio in the foreground and waits until it serves.
func (s *Server) start(ctx context.Context) error {
	cmd := exec.Command(s.kamailio, "-DD", "-E",
		"-f", filepath.Join(s.Dir, configFile),
		"-P", filepath.Join(s.Dir, pidFile),
		"-Y", filepath.Join(s.Dir, runDir),
		"-w", s.Dir,
		"-m", "64", "-M", "8")
	cmd.Dir = s.Dir
	note := fmt.Sprintf("starting kamailio (udp %s, tcp %s, tls %s)", s.UDPAddr, s.TCPAddr, s.TLSAddr)
	return s.peer.LaunchReady(cmd, note, stopTimeout, func(p *peerproc.Process, mark int64) error {
		return s.waitReady(ctx, p, mark)
	})
}

// waitReady polls until Kamailio answers an OPTIONS over UDP and accepts TCP and TLS
// connections, or exits. mark is the tail position at the start of this run.
func (s *Server) waitReady(ctx context.Context, p *peerproc.Process, mark int64) error {
	ctx, cancel := context.WithTimeout(ctx, readyTimeout)
	defer cancel()
	for {
		log := string(s.peer.Tail().Since(mark))
		if strings.Contains(log, "Address already in use") {
			return fmt.Errorf("%w: %s, %s, %s\n%s", errAddrInUse, s.UDPAddr, s.TCPAddr, s.TLSAddr, peerproc.Tail([]byte(log), 40))
		}
		if s.probe() == nil {
			return nil
		}
		select {
		case <-p.Done():
			if strings.Contains(string(s.peer.Tail().Since(mark)), "Address already in use") {
				continue // reported above, with the log
			}
			return fmt.Errorf("kamailio: exited during start (%v); log tail:\n%s", p.Err(), s.LogTail(40))
		case <-ctx.Done():
			return fmt.Errorf("kamailio: not ready: %w; log tail:\n%s", ctx.Err(), s.LogTail(40))
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// probe sends one OPTIONS to the UDP listener and dials the TCP and TLS ones.
func (s *Server) probe() error {
	for _, addr := range []string{s.TCPAddr, s.TLSAddr} {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err != nil {
			return err
		}
		c.Close()
	}
	c, err := net.Dial("udp", s.UDPAddr)
	if err != nil {
		return err
	}
	defer c.Close()
	local := c.LocalAddr().String()
	branch := "z9hG4bK-probe-" + strconv.FormatInt(time.Now().UnixNano(), 36)
	req := "OPTIONS sip:" + s.UDPAddr + " SIP/2.0\r\n" +
		"Via: SIP/2.0/UDP " + local + ";branch=" + branch + ";rport\r\n" +
		"Max-Forwards: 70\r\n" +
		"From: <sip:probe@" + local + ">;tag=probe\r\n" +
		"To: <sip:" + s.UDPAddr + ">\r\n" +
		"Call-ID: " + branch + "@" + local + "\r\n" +
		"CSeq: 1 OPTIONS\r\n" +
		"Content-Length: 0\r\n\r\n"
	if _, err := c.Write([]byte(req)); err != nil {
		return err
	}
	_ = c.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
	buf := make([]byte, 4096)
	n, err := c.Read(buf)
	if err != nil {
		return err
	}
	if !strings.HasPrefix(string(buf[:n]), "SIP/2.0 200 ") {
		return fmt.Errorf("kamailio: OPTIONS answered %q", strings.SplitN(string(buf[:n]), "\r\n", 2)[0])
	}
	return nil
}

// ProxyURI is the SIP URI of the proxy for transport "udp", "tcp" or "tls", e.g.
// "sip:127.0.0.1:5060;transport=tcp", for an outbound proxy setting. It panics on
// another transport (a programming error in a test).
func (s *Server) ProxyURI(transport string) string {
	switch transport {
	case "udp":
		return "sip:" + s.UDPAddr + ";transport=udp"
	case "tcp":
		return "sip:" + s.TCPAddr + ";transport=tcp"
	case "tls":
		return "sip:" + s.TLSAddr + ";transport=tls"
	}
	panic("kamailio: unknown transport " + strconv.Quote(transport))
}

// Addr is the listener for transport "udp", "tcp" or "tls", host:port; "" for another.
func (s *Server) Addr(transport string) string {
	switch transport {
	case "udp":
		return s.UDPAddr
	case "tcp":
		return s.TCPAddr
	case "tls":
		return s.TLSAddr
	}
	return ""
}

// Stop stops Kamailio (SIGTERM, then SIGKILL after 5 s) and removes Dir if Start created
// it. It reports an error if Kamailio had died on its own. Stop is final and idempotent.
func (s *Server) Stop() error { return s.peer.Stop(stopTimeout) }

// Restart stops Kamailio and starts it again with the same config and ports.
// Registrations (kept in memory) are lost; presence state in db_text is kept.
func (s *Server) Restart(ctx context.Context) error {
	return errors.Join(s.peer.Halt(stopTimeout), s.start(ctx))
}

// LogTail returns the last n lines Kamailio wrote (at most 64 KiB).
func (s *Server) LogTail(n int) string { return s.peer.LogTail(n) }
