// Package linphone runs a real SIP user agent, the Debian package linphone-cli's
// linphonec 5.1 (liblinphone and belle-sip), for Switchboard's end-to-end tests of the
// SIP bridge. It is imported by tests only.
//
// liblinphone is an implementation of SIP instant messaging independent of Switchboard's
// own: with CPIM enabled (the default here) it wraps every chat message in message/cpim
// (RFC 3862) with the IMDN headers imdn.Message-ID and imdn.Disposition-Notification
// (RFC 5438), sends isComposing (RFC 3994) and IMDN delivery notifications, and parses
// the CPIM, IMDN and isComposing bodies it receives.
//
// Start writes a throw-away linphonerc (one account registered through Options.Proxy, no
// video, echo cancellation off, a chat database in Dir) and runs
// "linphonec -c Dir/linphonerc -d 6 -l Dir/liblinphone.log" with commands on its stdin.
// No sound card is needed: linphonec only fails to open one, which matters for calls
// alone. Received messages are read from linphonec's output ("Message received from
// <address>: <text>"); what liblinphone did with the bodies it got (message states,
// IMDN, isComposing) is read from its log (LogContains, WaitLog).
//
// The config keys that matter, found in liblinphone 5.1's sources:
//   - [proxy_default_values] cpim_in_basic_chat_rooms_enabled=1: CPIM in one-to-one
//     ("basic") chat rooms. liblinphone 5.1 reads this key of an account through
//     linphone_config_get_default_int, so it takes effect only in the *_default_values
//     section, not in [proxy_0];
//   - [sip] im_notif_policy=all (the default): send and accept isComposing, IMDN
//     delivered and displayed;
//   - [storage] uri: the SQLite chat database, without which an IMDN cannot be matched to
//     the message it reports on ("Received IMDN for unknown message").
//
// linphonec has no command to show typing or to mark a message read, so it sends neither
// isComposing nor IMDN displayed; it sends IMDN delivered for every CPIM message that
// asks for it.
//
//	ua := linphone.StartTest(t, linphone.Options{AOR: "sip:alice@sip.test", Password: "pw",
//		Proxy: "sip:127.0.0.1:5060;transport=tcp"})
//	err := ua.WaitRegistered(ctx)
//	err = ua.SendMessage(ctx, "sip:bob@sip.test", "hello")
//	msg, err := ua.WaitMessage(ctx, func(m linphone.Message) bool { return m.Text == "hi" })
package linphone

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

// Timeouts of the user agent's life cycle.
const (
	readyTimeout = 20 * time.Second
	stopTimeout  = 3 * time.Second
	pollInterval = 50 * time.Millisecond
)

// Files in Dir.
const (
	configFile = "linphonerc"
	outFile    = "linphonec.log"   // linphonec's stdout and stderr
	logFile    = "liblinphone.log" // liblinphone's log (-d 6 -l)
	dbFile     = "chat.db"
)

const loopback = "127.0.0.1"

// Options configures Start. AOR and Proxy are required.
type Options struct {
	// AOR is the account, e.g. "sip:alice@sip.test". Required.
	AOR string
	// Username for digest authentication; default the AOR's user part.
	Username string
	// Password for digest authentication; empty: none. Never logged.
	Password string
	// Proxy is the registrar and outbound proxy, e.g. "sip:127.0.0.1:5060;transport=tcp".
	// Required.
	Proxy string
	// RegisterInterval is the REGISTER expiry asked for; default one hour.
	RegisterInterval time.Duration
	// PlainText turns CPIM off: messages are sent as text/plain (SIP SIMPLE), without IMDN.
	PlainText bool
	// Dir holds config, chat database and logs. Default: a new temporary directory that
	// Stop removes.
	Dir string
	// SIPPort is listened on (UDP and TCP); 0 picks a free one.
	SIPPort int
	// Logger receives linphonec's stdout and stderr (not liblinphone's log, which is
	// always Dir/liblinphone.log); default Dir/linphonec.log when Dir is set, else only
	// the tail kept for LogTail.
	Logger io.Writer
}

// Message is a chat message linphonec reported as received.
type Message struct {
	// From is the sender's address as linphonec prints it, e.g. "<sip:bob@sip.test>" or
	// "\"Bob\" <sip:bob@sip.test>".
	From string
	// Text is the message's text.
	Text string
}

// UA is a running linphonec with one account. Its methods are safe for concurrent use.
type UA struct {
	// AOR is the account. Immutable.
	AOR string
	// SIPAddr is where liblinphone listens for SIP (UDP and TCP), host:port. Immutable.
	SIPAddr string
	// Dir holds config, chat database and logs. Immutable.
	Dir string

	opts  Options        // immutable, defaults applied
	peer  *peerproc.Peer // directory, stdout log and process
	out   *outParser     // immutable; parses linphonec's stdout
	outF  *os.File       // immutable; may be nil (Options.Logger set)
	stdin io.WriteCloser // set by start; written under cmdMu

	cmdMu sync.Mutex // serialises commands on stdin
}

// program is linphone-cli's executable.
var program = peerproc.Program{Peer: "linphone", Name: "linphonec", Dir: "/usr/bin", Debian: "linphone-cli"}

// Available reports why linphonec cannot run here, or nil if it can.
func Available() error { return program.Available() }

// StartTest starts linphonec for t and stops it when t ends; Dir defaults to t.TempDir().
// It skips t when linphonec is not installed, unless SWITCHBOARD_REQUIRE_PEERS=1, in which
// case t fails instead. On failure of t the tails of both logs are logged.
func StartTest(t testing.TB, opts Options) *UA {
	t.Helper()
	u := peerproc.StartForTest(t, "linphonec", Available(), 2*readyTimeout, func(ctx context.Context) (*UA, error) {
		opts.Dir = peerproc.TestDir(t, opts.Dir)
		return Start(ctx, opts)
	})
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("linphonec output tail (%s):\n%s", u.Dir, u.LogTail(40))
			t.Logf("liblinphone log tail (%s):\n%s", u.Dir, u.LiblinphoneLogTail(120))
		}
		if err := u.Stop(); err != nil {
			t.Errorf("failed to stop linphonec: %v", err)
		}
	})
	return u
}

// validate checks opts and applies defaults.
func (o *Options) validate() error {
	var errs []error
	bad := func(key, v string) {
		if strings.ContainsAny(v, " \t\r\n\"<>,[]") {
			errs = append(errs, fmt.Errorf("linphone: %s %q contains a character not allowed in its config", key, v))
		}
	}
	if !strings.HasPrefix(o.AOR, "sip:") || !strings.Contains(o.AOR, "@") || strings.Contains(o.AOR, ";") {
		errs = append(errs, fmt.Errorf("linphone: AOR %q is not sip:user@host", o.AOR))
	}
	bad("AOR", o.AOR)
	if o.Username == "" {
		o.Username = strings.TrimPrefix(o.AOR[:max(strings.IndexByte(o.AOR, '@'), 0)], "sip:")
	}
	bad("Username", o.Username)
	if strings.ContainsAny(o.Password, "\r\n") {
		errs = append(errs, errors.New("linphone: Password contains a line break"))
	}
	if !strings.HasPrefix(o.Proxy, "sip:") {
		errs = append(errs, fmt.Errorf("linphone: Proxy %q is not a sip: URI", o.Proxy))
	}
	bad("Proxy", o.Proxy)
	if o.RegisterInterval == 0 {
		o.RegisterInterval = time.Hour
	}
	if o.RegisterInterval < time.Second {
		errs = append(errs, fmt.Errorf("linphone: RegisterInterval %s is under a second", o.RegisterInterval))
	}
	return errors.Join(errs...)
}

// Start writes a config into opts.Dir and starts linphonec, returning once it prompts for
// commands (at most 20 s). It does not wait for registration: see WaitRegistered. ctx
// bounds the start only.
func Start(ctx context.Context, opts Options) (*UA, error) {
	if err := Available(); err != nil {
		return nil, err
	}
	if err := opts.validate(); err != nil {
		return nil, err
	}
	u := &UA{AOR: opts.AOR, opts: opts, out: newOutParser()}
	logger := opts.Logger
	if logger == nil && opts.Dir != "" {
		if err := os.MkdirAll(opts.Dir, 0o755); err != nil {
			return nil, fmt.Errorf("linphone: failed to create dir: %w", err)
		}
		f, err := os.OpenFile(filepath.Join(opts.Dir, outFile), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
		if err != nil {
			return nil, fmt.Errorf("linphone: failed to open log: %w", err)
		}
		u.outF, logger = f, f
	}
	var w io.Writer = u.out
	if logger != nil {
		w = io.MultiWriter(logger, u.out)
	}
	peer, err := peerproc.Open("linphone", opts.Dir, outFile, w)
	if err != nil {
		u.closeOut()
		return nil, err
	}
	u.peer, u.Dir = peer, peer.Dir()
	err = peerproc.StartOnFreePorts(opts.SIPPort != 0, func() error {
		port := opts.SIPPort
		if port == 0 {
			if port, err = peerproc.FreePort(); err != nil {
				return err
			}
		}
		u.SIPAddr = net.JoinHostPort(loopback, strconv.Itoa(port))
		if err := u.writeConfig(port); err != nil {
			return err
		}
		return u.start(ctx)
	})
	if err != nil {
		_ = u.peer.Stop(stopTimeout)
		u.closeOut()
		return nil, err
	}
	return u, nil
}

func (u *UA) closeOut() {
	if u.outF != nil {
		u.outF.Close()
	}
}

// start launches linphonec and waits for its prompt.
func (u *UA) start(ctx context.Context) error {
	bin, _ := program.Path()
	cmd := exec.Command(bin, "-c", filepath.Join(u.Dir, configFile), "-d", "6", "-l", filepath.Join(u.Dir, logFile))
	cmd.Dir = u.Dir
	// HOME and XDG_*: liblinphone keeps its default paths (certificates, friends, zrtp
	// cache) in the test's directory, not the user's.
	cmd.Env = append(os.Environ(), "HOME="+u.Dir, "XDG_DATA_HOME="+u.Dir, "XDG_CONFIG_HOME="+u.Dir)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return fmt.Errorf("linphone: %w", err)
	}
	u.stdin = stdin
	note := fmt.Sprintf("starting linphonec (%s, sip %s, proxy %s)", u.AOR, u.SIPAddr, u.opts.Proxy)
	return u.peer.LaunchReady(cmd, note, stopTimeout, func(p *peerproc.Process, mark int64) error {
		return u.waitReady(ctx, p, mark)
	})
}

// waitReady waits for linphonec's first prompt in this run's output.
func (u *UA) waitReady(ctx context.Context, p *peerproc.Process, mark int64) error {
	ctx, cancel := context.WithTimeout(ctx, readyTimeout)
	defer cancel()
	for {
		if strings.Contains(string(u.peer.Tail().Since(mark)), "linphonec>") {
			break
		}
		select {
		case <-p.Done():
			return fmt.Errorf("linphone: exited during start (%v); output tail:\n%s\nliblinphone log tail:\n%s",
				p.Err(), u.LogTail(20), u.LiblinphoneLogTail(30))
		case <-ctx.Done():
			return fmt.Errorf("linphone: no prompt: %w; output tail:\n%s", ctx.Err(), u.LogTail(20))
		case <-time.After(pollInterval):
		}
	}
	if strings.Contains(u.LiblinphoneLog(), "Address already in use") {
		return fmt.Errorf("linphone: %w: %s", peerproc.ErrAddrInUse, u.SIPAddr)
	}
	return nil
}

// Stop stops linphonec and removes Dir if Start created
// it. It reports an error if linphonec had died on its own. Stop is final and idempotent.
func (u *UA) Stop() error {
	// SIGTERM: linphonec's "quit" would end it before Stop, which then reports an exit
	// of its own.
	err := u.peer.Stop(stopTimeout)
	u.cmdMu.Lock()
	if u.stdin != nil {
		_ = u.stdin.Close()
		u.stdin = nil
	}
	u.cmdMu.Unlock()
	u.closeOut()
	return err
}

// LogTail returns the last n lines linphonec wrote to stdout and stderr.
func (u *UA) LogTail(n int) string { return u.peer.LogTail(n) }
