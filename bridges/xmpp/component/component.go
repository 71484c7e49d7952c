// Package component is an XEP-0114 external component connection to an XMPP server that
// neither loses nor doubles stanzas: it reconnects by itself with exponential backoff and
// jitter, delivers inbound stanzas in order to one Handler, answers XEP-0199 pings, and
// confirms every outbound stanza with a ping barrier before Send returns. It knows
// nothing of Matrix.
//
// The handshake is done by mellium.im/xmpp/component; stanzas cross the package boundary
// as raw bytes, one complete element each.
package component

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"
	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/stream"
)

// Errors of this package; each is wrapped with the detail.
var (
	// ErrConfig marks an invalid Config.
	ErrConfig = errors.New("component: invalid config")
	// ErrAuth marks a handshake that the server refused: the secret or domain is wrong.
	ErrAuth = errors.New("component: authentication failed")
	// ErrUnconfirmed marks a Send whose stanza was written but the stream broke before
	// the server confirmed it. The caller should resend with the same stanza id.
	ErrUnconfirmed = errors.New("component: stanza not confirmed")
	// ErrStanza marks a Send argument that is not one message, presence or iq element.
	ErrStanza = errors.New("component: not a single stanza")
)

// Defaults of Config.
const (
	DefaultMinBackoff     = 500 * time.Millisecond
	DefaultMaxBackoff     = 30 * time.Second
	DefaultConfirmTimeout = 30 * time.Second
	handshakeTimeout      = 15 * time.Second
	drainTimeout          = 5 * time.Second
)

// Config configures a Conn. Addr, Domain and Secret are required; zero durations mean
// the defaults.
type Config struct {
	// Addr is host:port of the server's component port. Required.
	Addr string
	// Domain is the component's JID domain, e.g. "matrix.localhost". Required.
	Domain string
	// Secret is the shared secret. Required; never logged or put in errors.
	Secret string
	// ServerDomain receives the confirming pings; default Domain without its first
	// label ("localhost" for "matrix.localhost").
	ServerDomain string
	// MinBackoff and MaxBackoff bound the reconnect delay; defaults 500ms and 30s.
	MinBackoff, MaxBackoff time.Duration
	// ConfirmTimeout bounds the wait for a confirming pong; when it passes, the stream is
	// considered dead and reconnected. Default 30s.
	ConfirmTimeout time.Duration
}

// Handler receives one inbound stanza, the complete element as bytes. Stanzas arrive one
// at a time in stream order. An error for a message (or iq get/set) makes the Conn
// reply to the sender with a stanza error of type "wait". Handler may call Conn.Send.
type Handler func(ctx context.Context, raw []byte) error

// Conn is one external component connection. Its methods are safe for concurrent use.
type Conn struct {
	cfg    Config  // immutable after New
	domain jid.JID // immutable
	server jid.JID // immutable
	h      Handler // immutable

	connected atomic.Bool

	mu      sync.Mutex
	cur     *link         // guarded by mu; nil while disconnected
	changed chan struct{} // guarded by mu; closed and replaced when cur changes
	lastErr string        // guarded by mu

	q inbox
}

// New validates cfg and returns a Conn; it does no I/O.
func New(cfg Config, h Handler) (*Conn, error) {
	var problems []string
	if cfg.Addr == "" {
		problems = append(problems, "addr is required")
	} else if _, _, err := net.SplitHostPort(cfg.Addr); err != nil {
		problems = append(problems, "addr is not host:port")
	}
	if cfg.Secret == "" {
		problems = append(problems, "secret is required")
	}
	if h == nil {
		problems = append(problems, "handler is required")
	}
	var domain, server jid.JID
	if cfg.Domain == "" {
		problems = append(problems, "domain is required")
	} else if d, err := jid.Parse(cfg.Domain); err != nil || d.Localpart() != "" || d.Resourcepart() != "" {
		problems = append(problems, fmt.Sprintf("domain %q is not a domain JID", cfg.Domain))
	} else {
		domain = d
		if cfg.ServerDomain == "" {
			if _, rest, ok := strings.Cut(cfg.Domain, "."); ok {
				cfg.ServerDomain = rest
			} else {
				problems = append(problems, "server_domain is required when domain has one label")
			}
		}
		if cfg.ServerDomain != "" {
			if s, err := jid.Parse(cfg.ServerDomain); err != nil || s.Localpart() != "" || s.Resourcepart() != "" {
				problems = append(problems, fmt.Sprintf("server_domain %q is not a domain JID", cfg.ServerDomain))
			} else {
				server = s
			}
		}
	}
	if cfg.MinBackoff <= 0 {
		cfg.MinBackoff = DefaultMinBackoff
	}
	if cfg.MaxBackoff <= 0 {
		cfg.MaxBackoff = DefaultMaxBackoff
	}
	if cfg.MaxBackoff < cfg.MinBackoff {
		problems = append(problems, "max_backoff is less than min_backoff")
	}
	if cfg.ConfirmTimeout <= 0 {
		cfg.ConfirmTimeout = DefaultConfirmTimeout
	}
	if len(problems) > 0 {
		return nil, fmt.Errorf("%w: %s", ErrConfig, strings.Join(problems, "; "))
	}
	c := &Conn{cfg: cfg, domain: domain, server: server, h: h, changed: make(chan struct{})}
	c.q.init()
	return c, nil
}

// Connected reports whether a stream is established now.
func (c *Conn) Connected() bool { return c.connected.Load() }

// LastError describes the last connection failure, or "" if there was none since the
// last successful handshake. It never contains the secret.
func (c *Conn) LastError() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.lastErr
}

func (c *Conn) setLastError(err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if err == nil {
		c.lastErr = ""
		return
	}
	c.lastErr = err.Error()
}

// setLink publishes l (nil: disconnected) and wakes every waiter.
func (c *Conn) setLink(l *link) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.cur = l
	c.connected.Store(l != nil)
	close(c.changed)
	c.changed = make(chan struct{})
}

// waitLink returns the current link, waiting for one up to ctx.
func (c *Conn) waitLink(ctx context.Context) (*link, error) {
	for {
		c.mu.Lock()
		l, ch := c.cur, c.changed
		c.mu.Unlock()
		if l != nil {
			return l, nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return nil, fmt.Errorf("component: waiting for the connection to %s: %w", c.cfg.Addr, ctx.Err())
		}
	}
}

// Run connects and keeps the connection up until ctx ends, delivering inbound stanzas
// to the Handler in order. It returns ctx's error. Run must not be called twice at once.
func (c *Conn) Run(ctx context.Context) error {
	log := zerolog.Ctx(ctx).With().Str("component", c.cfg.Domain).Str("addr", c.cfg.Addr).Logger()
	ctx = log.WithContext(ctx)

	stop, dispatchDone := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(dispatchDone)
		c.dispatch(ctx, stop)
	}()
	defer func() {
		close(stop)
		<-dispatchDone
	}()

	backoff := c.cfg.MinBackoff
	for {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		l, err := c.connect(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			c.setLastError(err)
			log.Warn().Err(err).Dur("retry_in", backoff).Msg("component connection failed")
		} else {
			c.setLastError(nil)
			backoff = c.cfg.MinBackoff
			log.Info().Msg("component connected")
			c.setLink(l)
			err = l.serve(ctx)
			c.setLink(nil)
			l.shutdown()
			if ctx.Err() != nil {
				return ctx.Err()
			}
			c.setLastError(fmt.Errorf("component: stream to %s ended: %w", c.cfg.Addr, err))
			log.Warn().Err(err).Msg("component stream ended; reconnecting")
		}
		// Full jitter over [backoff/2, backoff).
		d := backoff/2 + rand.N(backoff/2+1)
		t := time.NewTimer(d)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
		backoff = min(backoff*2, c.cfg.MaxBackoff)
	}
}

// authError turns the server's refusal of the handshake into ErrAuth.
func authError(addr string, err error) error {
	var se stream.Error
	if errors.As(err, &se) {
		if se.Err == "not-authorized" {
			return fmt.Errorf("%w: the server at %s refused the handshake (%s)", ErrAuth, addr, se.Err)
		}
		return fmt.Errorf("component: handshake with %s: stream error %s", addr, se.Err)
	}
	return fmt.Errorf("component: handshake with %s: %w", addr, err)
}
