// Package baresip runs a real SIP user agent, the Debian package's baresip 1.0.0, for
// Switchboard's end-to-end tests of the SIP bridge. It is imported by tests only.
//
// Start writes a throw-away config (one account, a contacts list, the modules account,
// contact, menu, presence, debug_cmd, ctrl_tcp and cons; no audio) into a directory and
// runs baresip on loopback ports. The test drives it over ctrl_tcp (netstring JSON
// commands and registration events) and reads received MESSAGEs from the cons module's
// output, which is where baresip 1.0.0 reports them.
//
// What baresip 1.0.0 can do here:
//   - send MESSAGE (text/plain) to a contact: SendMessage; the answer is not reported
//     back (baresip only logs final answers >= 300);
//   - receive MESSAGE: text/plain only, answered 200 (other content types, including
//     message/cpim, application/im-iscomposing+xml and message/imdn+xml, get 415 with
//     "Accept: text/plain"); the Request-URI's user must be the account's user;
//   - REGISTER with digest authentication through an outbound proxy;
//   - presence: SUBSCRIBE (Event: presence) to contacts listed with Contacts, their NOTIFY
//     bodies read as PIDF (basic open/closed, rpid away/busy/on-the-phone); PUBLISH of its
//     own state (PIDF basic open/closed only, no note or activity) when PublishInterval is
//     set; it also answers SUBSCRIBEs to its own presence with NOTIFYs.
//
// It cannot: send or show isComposing (RFC 3994), send or answer IMDN (RFC 5438), send
// HTML or CPIM, set any presence state other than online/offline.
//
//	ua := baresip.StartTest(t, baresip.Options{AOR: "sip:alice@sip.test", Password: "pw",
//		Proxy: "sip:127.0.0.1:5060;transport=tcp", RegisterInterval: time.Hour,
//		Contacts: []string{"sip:bob@sip.test"}})
//	err := ua.SendMessage(ctx, "sip:bob@sip.test", "hello")
//	msg, err := ua.WaitMessage(ctx, func(m baresip.Message) bool { return m.From == "sip:bob@sip.test" })
package baresip

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os/exec"
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
	// stopTimeout is short: baresip 1.0.0 never finishes a graceful stop while the presence
	// module holds the user agent ("ua: in use (1) by app module"), so it is killed.
	stopTimeout = time.Second
)

const loopback = "127.0.0.1"

// errAddrInUse marks a start that failed because a port was taken.
var errAddrInUse = fmt.Errorf("baresip: %w", peerproc.ErrAddrInUse)

// ErrNotContact is returned by SendMessage and the presence lookups for a URI that is not
// in Options.Contacts or Options.Peers: baresip 1.0.0 sends MESSAGEs to contacts only.
var ErrNotContact = errors.New("baresip: not a contact")

// Options configures Start. AOR is required.
type Options struct {
	// AOR is the account, e.g. "sip:alice@sip.test". Required.
	AOR string
	// Username for digest authentication; default the AOR's user part.
	Username string
	// Password for digest authentication; empty: none. Never logged.
	Password string
	// Proxy is the outbound proxy every request goes through, e.g.
	// "sip:127.0.0.1:5060;transport=tcp". Empty: requests go to the Request-URI's host
	// (which must then be an IP address: no DNS is used).
	Proxy string
	// Transport of the account ("udp" or "tcp"); default "tcp".
	Transport string
	// RegisterInterval is the REGISTER expiry asked for (whole seconds); 0: no REGISTER.
	RegisterInterval time.Duration
	// PublishInterval is the presence PUBLISH expiry (whole seconds); 0: no PUBLISH.
	PublishInterval time.Duration
	// Contacts are URIs whose presence baresip subscribes to (SUBSCRIBE at start, retried
	// after 30 s, 5 min … when it fails). They can be sent MESSAGEs.
	Contacts []string
	// Peers are further URIs that can be sent MESSAGEs, without a subscription.
	Peers []string
	// Dir holds config and log. Default: a new temporary directory that Stop removes.
	Dir string
	// SIPPort is listened on (UDP and TCP) at 127.0.0.1; 0 picks a free one.
	SIPPort int
	// Logger receives baresip's stdout and stderr; default Dir/baresip.log.
	Logger io.Writer
}

// contact is one line of the contacts file.
type contact struct {
	uri      string
	presence bool
}

// UA is a running baresip with one account. Its methods are safe for concurrent use.
type UA struct {
	// AOR is the account. Immutable.
	AOR string
	// SIPAddr is where baresip listens for SIP (UDP and TCP), host:port. Immutable.
	SIPAddr string
	// Dir holds config and log. Immutable.
	Dir string

	opts     Options        // immutable, defaults applied
	contacts []contact      // immutable; in the contacts file's order
	peer     *peerproc.Peer // directory, log and process
	ctrlAddr string         // immutable
	consAddr string         // immutable

	ctrl *ctrl    // set by Start
	cons net.Conn // set by Start

	cmdMu sync.Mutex // serialises command sequences (selecting a contact, then messaging)

	mu       sync.Mutex
	messages []Message     // guarded by mu
	changed  chan struct{} // guarded by mu; closed and replaced on every message
	consDone chan struct{} // closed when the cons reader ends
}

// program is baresip's executable.
var program = peerproc.Program{Peer: "baresip", Name: "baresip", Dir: "/usr/bin", Debian: "baresip-core"}

// Available reports why baresip cannot run here, or nil if it can.
func Available() error { return program.Available() }

// StartTest starts baresip for t and stops it when t ends; Dir defaults to t.TempDir().
// It skips t when baresip is not installed, unless SWITCHBOARD_REQUIRE_PEERS=1, in which
// case t fails instead. On failure of t the log tail is logged.
func StartTest(t testing.TB, opts Options) *UA {
	t.Helper()
	u := peerproc.StartForTest(t, "baresip", Available(), 2*readyTimeout, func(ctx context.Context) (*UA, error) {
		opts.Dir = peerproc.TestDir(t, opts.Dir)
		return Start(ctx, opts)
	})
	u.peer.StopAtEndWith(t, u.Stop)
	return u
}

// validate checks opts and applies defaults.
func (o *Options) validate() error {
	var errs []error
	bad := func(key, v string) {
		if strings.ContainsAny(v, " \t\r\n\"<>,") {
			errs = append(errs, fmt.Errorf("baresip: %s %q contains a character not allowed in its config", key, v))
		}
	}
	if !strings.HasPrefix(o.AOR, "sip:") || !strings.Contains(o.AOR, "@") || strings.Contains(o.AOR, ";") {
		errs = append(errs, fmt.Errorf("baresip: AOR %q is not sip:user@host", o.AOR))
	}
	bad("AOR", o.AOR)
	if o.Username == "" {
		o.Username = strings.TrimPrefix(o.AOR[:max(strings.IndexByte(o.AOR, '@'), 0)], "sip:")
	}
	bad("Username", o.Username)
	if strings.ContainsAny(o.Password, " \t\r\n\";>,") {
		errs = append(errs, errors.New("baresip: Password contains a character not allowed in its config"))
	}
	bad("Proxy", o.Proxy)
	switch o.Transport {
	case "":
		o.Transport = "tcp"
	case "udp", "tcp":
	default:
		errs = append(errs, fmt.Errorf("baresip: Transport %q is not udp or tcp", o.Transport))
	}
	for _, c := range append(append([]string(nil), o.Contacts...), o.Peers...) {
		if !strings.HasPrefix(c, "sip:") {
			errs = append(errs, fmt.Errorf("baresip: contact %q is not a sip: URI", c))
		}
		bad("contact", c)
	}
	return errors.Join(errs...)
}

// Start writes a config into opts.Dir and starts baresip, returning once its control and
// console ports are connected (at most 20 s). It does not wait for registration: see
// WaitRegistered. ctx bounds the start only.
func Start(ctx context.Context, opts Options) (*UA, error) {
	if err := Available(); err != nil {
		return nil, err
	}
	if err := opts.validate(); err != nil {
		return nil, err
	}
	u := &UA{AOR: opts.AOR, opts: opts, changed: make(chan struct{}), consDone: make(chan struct{})}
	for _, c := range opts.Contacts {
		u.contacts = append(u.contacts, contact{uri: c, presence: true})
	}
	for _, c := range opts.Peers {
		u.contacts = append(u.contacts, contact{uri: c})
	}
	peer, err := peerproc.Open("baresip", opts.Dir, logFile, opts.Logger)
	if err != nil {
		return nil, err
	}
	u.peer, u.Dir = peer, peer.Dir()
	err = peerproc.StartOnFreePorts(opts.SIPPort != 0, func() error {
		if err := u.pickPorts(); err != nil {
			return err
		}
		if err := u.writeConfig(); err != nil {
			return err
		}
		return u.start(ctx)
	})
	if err != nil {
		close(u.consDone)
		_ = u.peer.Stop(stopTimeout)
		return nil, err
	}
	return u, nil
}

func (u *UA) pickPorts() error {
	ports := make([]int, 3)
	for i := range ports {
		p, err := peerproc.FreePort()
		if err != nil {
			return err
		}
		ports[i] = p
	}
	if u.opts.SIPPort != 0 {
		ports[0] = u.opts.SIPPort
	}
	u.SIPAddr = net.JoinHostPort(loopback, strconv.Itoa(ports[0]))
	u.ctrlAddr = net.JoinHostPort(loopback, strconv.Itoa(ports[1]))
	u.consAddr = net.JoinHostPort(loopback, strconv.Itoa(ports[2]))
	return nil
}

// start launches baresip and connects to ctrl_tcp and cons.
func (u *UA) start(ctx context.Context) error {
	bin, _ := program.Path()
	cmd := exec.Command(bin, "-f", u.Dir)
	cmd.Dir = u.Dir
	// No stdin: the stdio UI is not loaded, and baresip must not read the test's input.
	note := fmt.Sprintf("starting baresip (%s, sip %s, ctrl_tcp %s, cons %s)", u.AOR, u.SIPAddr, u.ctrlAddr, u.consAddr)
	return u.peer.LaunchReady(cmd, note, stopTimeout, func(p *peerproc.Process, mark int64) error {
		return u.waitReady(ctx, p, mark)
	})
}

// waitReady waits for "baresip is ready." in this run's log, then connects ctrl_tcp and
// cons.
func (u *UA) waitReady(ctx context.Context, p *peerproc.Process, mark int64) error {
	ctx, cancel := context.WithTimeout(ctx, readyTimeout)
	defer cancel()
	for {
		log := string(u.peer.Tail().Since(mark))
		if strings.Contains(log, "Address already in use") {
			return fmt.Errorf("%w: %s\n%s", errAddrInUse, u.SIPAddr, peerproc.Tail([]byte(log), 20))
		}
		if strings.Contains(log, "baresip is ready.") {
			break
		}
		select {
		case <-p.Done():
			// baresip exits with EADDRINUSE (98) when a port is taken; its message does not
			// always reach the log first.
			var exit *exec.ExitError
			if errors.As(p.Err(), &exit) && exit.ExitCode() == 98 {
				return fmt.Errorf("%w: %s (exit status 98)", errAddrInUse, u.SIPAddr)
			}
			return fmt.Errorf("baresip: exited during start (%v); log tail:\n%s", p.Err(), u.LogTail(30))
		case <-ctx.Done():
			return fmt.Errorf("baresip: not ready: %w; log tail:\n%s", ctx.Err(), u.LogTail(30))
		case <-time.After(50 * time.Millisecond):
		}
	}
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", u.ctrlAddr)
	if err != nil {
		return fmt.Errorf("baresip: failed to connect to ctrl_tcp: %w", err)
	}
	cons, err := d.DialContext(ctx, "tcp", u.consAddr)
	if err != nil {
		conn.Close()
		return fmt.Errorf("baresip: failed to connect to cons: %w", err)
	}
	u.ctrl = newCtrl(conn)
	u.cons = cons
	go u.readCons()
	// A command round trip: ctrl_tcp is serving.
	if _, err := u.ctrl.command(ctx, "uuid", ""); err != nil {
		return err
	}
	return nil
}

// readCons collects received MESSAGEs from the cons stream.
func (u *UA) readCons() {
	defer close(u.consDone)
	var p consParser
	buf := make([]byte, 8192)
	for {
		n, err := u.cons.Read(buf)
		if n > 0 {
			if msgs := p.feed(buf[:n]); len(msgs) > 0 {
				u.mu.Lock()
				u.messages = append(u.messages, msgs...)
				close(u.changed)
				u.changed = make(chan struct{})
				u.mu.Unlock()
			}
		}
		if err != nil {
			return
		}
	}
}

// Stop stops baresip and removes Dir if Start created it. It reports an error if baresip
// had died on its own. Stop is final and idempotent.
func (u *UA) Stop() error {
	var errs []error
	if u.ctrl != nil {
		_ = u.ctrl.close()
	}
	if u.cons != nil {
		u.cons.Close()
	}
	errs = append(errs, u.peer.Stop(stopTimeout))
	if u.cons != nil {
		<-u.consDone
	}
	return errors.Join(errs...)
}

// LogTail returns the last n lines baresip wrote (at most 64 KiB).
func (u *UA) LogTail(n int) string { return u.peer.LogTail(n) }

// Command runs a baresip command (as listed by "help", without the slash) over ctrl_tcp
// and returns its output.
func (u *UA) Command(ctx context.Context, name, params string) (string, error) {
	return u.ctrl.command(ctx, name, params)
}

// Events returns the ctrl_tcp events received so far.
func (u *UA) Events() []Event {
	evs, _ := u.ctrl.snapshot()
	return evs
}

// WaitEvent waits for an event that match accepts (also among those already received).
func (u *UA) WaitEvent(ctx context.Context, match func(Event) bool) (Event, error) {
	for {
		evs, changed := u.ctrl.snapshot()
		for _, ev := range evs {
			if match(ev) {
				return ev, nil
			}
		}
		select {
		case <-changed:
		case <-u.ctrl.done:
			return Event{}, u.ctrl.err
		case <-ctx.Done():
			return Event{}, fmt.Errorf("baresip: waiting for an event: %w", ctx.Err())
		}
	}
}
