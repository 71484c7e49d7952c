// Package smtppeer runs a real SMTP submission server, Python's aiosmtpd (Debian
// python3-aiosmtpd), as the outbound mail peer of Switchboard's integration tests. It is
// imported by tests only.
//
// Start writes a small aiosmtpd program (smtppeer.py), a self-signed certificate and a
// config into a directory and runs it on two loopback ports: Addr offers STARTTLS and
// TLSAddr speaks TLS from the first byte. Both require AUTH PLAIN or LOGIN with
// User/Password before MAIL (530 otherwise). Accepted mail is listed by Received and,
// with Options.LMTPAddr, delivered onward over LMTP (to a dovecot.Server). FailNext and
// RejectRecipients inject temporary and permanent failures; HoldQuit leaves QUIT
// unanswered after an accepted mail, a crash point for the client.
//
//	srv := smtppeer.StartTest(t, smtppeer.Options{LMTPAddr: imap.LMTPAddr})
//	c, err := smtp.Dial(srv.Addr)
//	err = c.StartTLS(srv.TLSConfig())
//	err = c.Auth(smtp.PlainAuth("", srv.User, srv.Password, "127.0.0.1"))
//	mails, err := srv.Received()
package smtppeer

import (
	"context"
	"crypto/rand"
	_ "embed" // the Python server
	"encoding/hex"
	"encoding/json"
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

//go:embed smtppeer.py
var script []byte

// python is Debian's interpreter, which has the Debian package python3-aiosmtpd; the
// first python3 on PATH may be another one without it.
const python = "/usr/bin/python3"

// Timeouts of the server's life cycle.
const (
	readyTimeout = 30 * time.Second
	stopTimeout  = 5 * time.Second
)

// Files and directories inside Server.Dir.
const (
	scriptFile = "smtppeer.py"
	configFile = "config.json"
	certFile   = "cert.pem"
	keyFile    = "key.pem"
	mailLog    = "mails.jsonl"
	controlDir = "control"
	logFile    = "smtppeer.log"
)

const loopback = "127.0.0.1"

// errAddrInUse marks a start that failed because a port was taken.
var errAddrInUse = fmt.Errorf("smtppeer: %w", peerproc.ErrAddrInUse)

// Options configures Start. The zero value is a usable default.
type Options struct {
	// Dir holds the program, certificate, config, mail log and the default log. Default:
	// a new temporary directory that Stop removes. Created if missing.
	Dir string
	// User and Password are the only credentials accepted; default "switchboard" and a
	// random password.
	User, Password string
	// LMTPAddr, host:port, receives every accepted message for its recipients, as from a
	// mail server in front of it (such as dovecot.Server.LMTPAddr). Default: none.
	LMTPAddr string
	// Logger receives the server's log (aiosmtpd's session log); default Dir/smtppeer.log.
	Logger io.Writer
}

// Server is a running SMTP peer. Its methods are safe for concurrent use.
type Server struct {
	// Addr is the submission listener (plain, STARTTLS offered) and TLSAddr the implicit
	// TLS listener, host:port. Immutable.
	Addr, TLSAddr string
	// CertPEM is the server's self-signed certificate, valid for localhost, 127.0.0.1 and
	// ::1; TLSConfig trusts it. Immutable.
	CertPEM []byte
	// User and Password are the accepted credentials. Immutable; never log Password.
	User, Password string
	// Dir holds the server's files. Immutable.
	Dir string

	lmtpAddr string         // immutable
	peer     *peerproc.Peer // directory, log and process; set by Start

	port, tlsPort int // immutable after the first successful start

	faultMu  sync.Mutex // serialises FailNext and RejectRecipients
	faultSeq int        // guarded by faultMu; numbers the fail tokens
}

// available caches the result of Available: it runs Python.
var available = sync.OnceValue(func() error {
	if err := peerproc.Supported(); err != nil {
		return err
	}
	if _, err := os.Stat(python); err != nil {
		return fmt.Errorf("smtppeer: %s not found (install the Debian package python3-aiosmtpd): %w", python, err)
	}
	out, err := exec.Command(python, "-c", "import aiosmtpd").CombinedOutput()
	if err != nil {
		return fmt.Errorf("smtppeer: %s cannot import aiosmtpd (install the Debian package python3-aiosmtpd): %w: %s",
			python, err, strings.TrimSpace(peerproc.Tail(out, 3)))
	}
	return nil
})

// Available reports why the SMTP peer cannot run here, or nil if it can.
func Available() error { return available() }

// StartTest starts an SMTP peer for t and stops it when t ends; Dir defaults to
// t.TempDir(). It skips t when aiosmtpd is not installed, unless
// SWITCHBOARD_REQUIRE_PEERS=1 (set by scripts/test), in which case t fails instead. On
// failure of t the log tail is logged.
func StartTest(t testing.TB, opts Options) *Server {
	t.Helper()
	srv := peerproc.StartForTest(t, "smtppeer", Available(), 2*readyTimeout, func(ctx context.Context) (*Server, error) {
		opts.Dir = peerproc.TestDir(t, opts.Dir)
		return Start(ctx, opts)
	})
	srv.peer.StopAtEnd(t, stopTimeout)
	return srv
}

// Start writes the program, a new certificate and a config into opts.Dir and starts the
// server, returning once both ports listen (at most 30 s). ctx bounds the start only; the
// server runs until Stop.
func Start(ctx context.Context, opts Options) (*Server, error) {
	if err := Available(); err != nil {
		return nil, err
	}
	s := &Server{User: opts.User, Password: opts.Password, lmtpAddr: opts.LMTPAddr}
	if s.User == "" {
		s.User = "switchboard"
	}
	if s.Password == "" {
		secret := make([]byte, 12)
		if _, err := rand.Read(secret); err != nil {
			return nil, fmt.Errorf("smtppeer: failed to make a password: %w", err)
		}
		s.Password = hex.EncodeToString(secret)
	}
	peer, err := peerproc.Open("smtppeer", opts.Dir, logFile, opts.Logger)
	if err != nil {
		return nil, err
	}
	s.peer, s.Dir = peer, peer.Dir()
	if err := s.prepare(); err != nil {
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

// prepare writes the program and the certificate and creates the control directory.
func (s *Server) prepare() error {
	if err := os.WriteFile(filepath.Join(s.Dir, scriptFile), script, 0o644); err != nil {
		return fmt.Errorf("smtppeer: failed to write program: %w", err)
	}
	if err := os.MkdirAll(filepath.Join(s.Dir, controlDir), 0o755); err != nil {
		return fmt.Errorf("smtppeer: failed to create control dir: %w", err)
	}
	certPEM, keyPEM, err := selfSignedCert()
	if err != nil {
		return err
	}
	s.CertPEM = certPEM
	if err := os.WriteFile(filepath.Join(s.Dir, certFile), certPEM, 0o644); err != nil {
		return fmt.Errorf("smtppeer: failed to write certificate: %w", err)
	}
	if err := os.WriteFile(filepath.Join(s.Dir, keyFile), keyPEM, 0o600); err != nil {
		return fmt.Errorf("smtppeer: failed to write key: %w", err)
	}
	return nil
}

// pickPorts picks free loopback ports and sets the addresses.
func (s *Server) pickPorts() error {
	var err error
	if s.port, err = peerproc.FreePort(); err != nil {
		return err
	}
	if s.tlsPort, err = peerproc.FreePort(); err != nil {
		return err
	}
	s.Addr = net.JoinHostPort(loopback, strconv.Itoa(s.port))
	s.TLSAddr = net.JoinHostPort(loopback, strconv.Itoa(s.tlsPort))
	return nil
}

// writeConfig writes the program's config (mode 0600: it holds the password).
func (s *Server) writeConfig() error {
	cfg, err := json.MarshalIndent(map[string]any{
		"host":        loopback,
		"port":        s.port,
		"tls_port":    s.tlsPort,
		"cert":        filepath.Join(s.Dir, certFile),
		"key":         filepath.Join(s.Dir, keyFile),
		"user":        s.User,
		"password":    s.Password,
		"lmtp":        s.lmtpAddr,
		"mail_log":    filepath.Join(s.Dir, mailLog),
		"control_dir": filepath.Join(s.Dir, controlDir),
		"hostname":    "localhost",
	}, "", "  ")
	if err != nil {
		return fmt.Errorf("smtppeer: failed to encode config: %w", err)
	}
	if err := os.WriteFile(filepath.Join(s.Dir, configFile), cfg, 0o600); err != nil {
		return fmt.Errorf("smtppeer: failed to write config: %w", err)
	}
	return nil
}

// start launches the program and waits until it listens.
func (s *Server) start(ctx context.Context) error {
	cmd := exec.Command(python, "-u", filepath.Join(s.Dir, scriptFile), filepath.Join(s.Dir, configFile))
	cmd.Dir = s.Dir
	return s.peer.LaunchReady(cmd, fmt.Sprintf("starting smtppeer (submission %s, implicit TLS %s)", s.Addr, s.TLSAddr), stopTimeout, func(p *peerproc.Process, mark int64) error {
		return s.waitReady(ctx, p, mark)
	})
}

// waitReady waits until the program has reported that both ports listen; it does so only
// after binding them. mark is the tail position at the start of this run.
func (s *Server) waitReady(ctx context.Context, p *peerproc.Process, mark int64) error {
	ctx, cancel := context.WithTimeout(ctx, readyTimeout)
	defer cancel()
	for {
		log := string(s.peer.Tail().Since(mark))
		if strings.Contains(log, "smtppeer: ready on") {
			return nil
		}
		select {
		case <-p.Done():
			log = string(s.peer.Tail().Since(mark))
			if strings.Contains(log, "Address already in use") {
				return fmt.Errorf("%w: %s, %s\n%s", errAddrInUse, s.Addr, s.TLSAddr, peerproc.Tail([]byte(log), 20))
			}
			return fmt.Errorf("smtppeer: exited during start (%v); log tail:\n%s", p.Err(), s.LogTail(40))
		case <-ctx.Done():
			return fmt.Errorf("smtppeer: not ready: %w; log tail:\n%s", ctx.Err(), s.LogTail(40))
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// Stop stops the server (SIGTERM, then SIGKILL after 5 s) and removes Dir if Start
// created it. It reports an error if the server had died on its own. Stop is final and
// idempotent.
func (s *Server) Stop() error { return s.peer.Stop(stopTimeout) }

// Restart stops the server and starts it again with the same ports, certificate,
// credentials, mail log and faults. Open connections are closed by the stop.
func (s *Server) Restart(ctx context.Context) error {
	return errors.Join(s.peer.Halt(stopTimeout), s.start(ctx))
}

// LogTail returns the last n lines the server wrote (at most 64 KiB).
func (s *Server) LogTail(n int) string { return s.peer.LogTail(n) }
