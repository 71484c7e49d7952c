// Package muc watches Jitsi conference rooms over XMPP: it logs in as a client (c2s),
// joins each watched multi-user chat room as an occupant (meant to be a hidden one: give
// it an account on a domain Jitsi hides, such as the recorder domain) and reports each
// room's complete occupant list to a Handler whenever it changes.
//
// It reads from occupant presence the MUC nick, the real JID when the room shows it, the
// XEP-0172 nick that Jitsi clients send as their display name and the <identity> element
// that Jitsi's mod_presence_identity adds from the JWT (user id, name, avatar). Nicks
// such as Jicofo's "focus" are left out, and so is the watcher itself.
//
// The connection is kept up by Run, with exponential backoff and jitter; after a
// reconnect every watched room is joined again and reported afresh. Nothing is reported
// while disconnected. It knows nothing of Matrix.
package muc

import (
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"strings"
	"sync"
	"time"

	"mellium.im/xmpp/jid"
)

// Errors of this package; each is wrapped with the detail.
var (
	// ErrConfig marks an invalid Config.
	ErrConfig = errors.New("muc: invalid config")
	// ErrAuth marks a login the server refused (wrong account or password).
	ErrAuth = errors.New("muc: authentication failed")
	// ErrTLS marks a connection whose TLS could not be set up or verified.
	ErrTLS = errors.New("muc: TLS failed")
)

// TLS modes of Config.TLS.
const (
	TLSStartTLS = "starttls"
	TLSDirect   = "direct"
	TLSNone     = "none"
)

// Defaults of Config.
const (
	DefaultNick = "switchboard"
	// DefaultIgnore is the nick Jicofo joins conferences with.
	DefaultIgnore = "focus"
)

// Timing of the connection; variables of the Watcher so that tests can shorten them.
const (
	defaultMinBackoff   = time.Second
	defaultMaxBackoff   = time.Minute
	defaultRejoinDelay  = 30 * time.Second
	defaultPingInterval = time.Minute
	connectTimeout      = 30 * time.Second
	pingTimeout         = 30 * time.Second
	sendTimeout         = 30 * time.Second
	maxNickAttempts     = 20
	maxOccupants        = 5000 // per room: bounds what a hostile server can make us keep
)

// Config configures a Watcher. Address, JID and Password are required.
type Config struct {
	// Address is host:port of the server's client-to-server port. Required.
	Address string
	// JID is the account's bare JID, e.g. switchboard@recorder.meet.example.org (a
	// domain Jitsi hides from the other participants). Required.
	JID string
	// Password of the account. Required; never logged or put in errors.
	Password string
	// Nick is the occupant nick in each room; default "switchboard". When it is taken,
	// "-2", "-3", … are tried.
	Nick string
	// TLS is "starttls" (default: required and verified), "direct" (TLS from the first
	// byte, verified) or "none" (plain text; accepted only for loopback addresses).
	TLS string
	// CAFile is a PEM file of roots trusted in addition to the system's; read at each
	// connection.
	CAFile string
	// ServerName is the name the server's certificate must have; default the JID's domain.
	ServerName string
	// Ignore lists nicks never reported, compared case-insensitively; nil means
	// ["focus"]. An empty non-nil slice ignores none.
	Ignore []string
}

// Occupant is one participant of a room.
type Occupant struct {
	Nick        string // the MUC nick (resource of the occupant JID)
	DisplayName string // XEP-0172 nick, else identity name, else Nick
	UserID      string // identity <user><id> when present (a Matrix ID when the JWT carried one)
	AvatarURL   string // identity <user><avatar> when present
	RealJID     string // the occupant's full real JID when the room shows it, else ""
}

// Handler receives occupant lists.
type Handler interface {
	// Occupants is called with the room's complete occupant list (self and ignored nicks
	// left out, sorted by Nick) once the watcher's own join is confirmed (status 110)
	// and after every change afterwards, in order per room; never while disconnected.
	// room is the name given to Watch. Calls are made one at a time from one goroutine;
	// when the Handler is slower than the room changes, a room's intermediate lists may
	// be skipped, never its latest.
	Occupants(ctx context.Context, room string, occupants []Occupant)
}

// HandlerFunc adapts a function to Handler.
type HandlerFunc func(ctx context.Context, room string, occupants []Occupant)

// Occupants calls f.
func (f HandlerFunc) Occupants(ctx context.Context, room string, occupants []Occupant) {
	f(ctx, room, occupants)
}

// Watcher keeps one XMPP client connection and the watched rooms. Its methods are safe
// for concurrent use.
type Watcher struct {
	cfg       Config  // immutable after New
	origin    jid.JID // the account, bare; immutable
	mucDomain jid.JID // immutable
	h         Handler // immutable
	ignore    []string

	// Timing, immutable once Run starts (tests set them before).
	minBackoff, maxBackoff, rejoinDelay, pingInterval time.Duration

	mu        sync.Mutex
	watched   map[string]string // lower-case room → name given to Watch; guarded by mu
	cur       *conn             // the live connection, nil while disconnected; guarded by mu
	connected bool              // guarded by mu
	lastErr   error             // guarded by mu
	running   bool              // guarded by mu
}

// New checks cfg and makes a Watcher for rooms on mucDomain (e.g.
// conference.meet.example.org). It does no I/O; Run connects.
func New(cfg Config, mucDomain string, h Handler) (*Watcher, error) {
	var problems []string
	if h == nil {
		problems = append(problems, "no handler")
	}
	if cfg.Nick == "" {
		cfg.Nick = DefaultNick
	}
	if cfg.TLS == "" {
		cfg.TLS = TLSStartTLS
	}
	if cfg.Ignore == nil {
		cfg.Ignore = []string{DefaultIgnore}
	}
	origin, err := jid.Parse(cfg.JID)
	switch {
	case cfg.JID == "":
		problems = append(problems, "jid is required")
	case err != nil:
		problems = append(problems, fmt.Sprintf("jid %q is not a JID: %v", cfg.JID, err))
	case origin.Localpart() == "" || origin.Resourcepart() != "":
		problems = append(problems, fmt.Sprintf("jid %q is not a bare account JID (user@domain)", cfg.JID))
	}
	if cfg.Password == "" {
		problems = append(problems, "password is required")
	}
	if _, err := jid.New("room", "example.org", cfg.Nick); err != nil {
		problems = append(problems, fmt.Sprintf("nick %q is not a valid MUC nick: %v", cfg.Nick, err))
	}
	domain, err := jid.Parse(mucDomain)
	if mucDomain == "" || err != nil || domain.Localpart() != "" || domain.Resourcepart() != "" {
		problems = append(problems, fmt.Sprintf("MUC domain %q is not a domain", mucDomain))
	}
	host, port, err := net.SplitHostPort(cfg.Address)
	switch {
	case cfg.Address == "":
		problems = append(problems, "address is required")
	case err != nil || host == "" || port == "":
		problems = append(problems, fmt.Sprintf("address %q is not host:port", cfg.Address))
	}
	switch cfg.TLS {
	case TLSStartTLS, TLSDirect:
	case TLSNone:
		if err == nil && !isLoopbackHost(host) {
			problems = append(problems, fmt.Sprintf("tls \"none\" is accepted only for a loopback address, not %q", host))
		}
	default:
		problems = append(problems, fmt.Sprintf("tls %q is not one of starttls, direct, none", cfg.TLS))
	}
	if len(problems) > 0 {
		return nil, fmt.Errorf("%w: %s", ErrConfig, strings.Join(problems, "; "))
	}
	w := &Watcher{
		cfg: cfg, origin: origin.Bare(), mucDomain: domain, h: h,
		minBackoff: defaultMinBackoff, maxBackoff: defaultMaxBackoff,
		rejoinDelay: defaultRejoinDelay, pingInterval: defaultPingInterval,
		watched: make(map[string]string),
	}
	for _, n := range cfg.Ignore {
		w.ignore = append(w.ignore, strings.TrimSpace(n))
	}
	return w, nil
}

// isLoopbackHost reports whether host is a loopback IP literal or "localhost".
func isLoopbackHost(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// ignored reports whether nick is never reported.
func (w *Watcher) ignored(nick string) bool {
	return slices.ContainsFunc(w.ignore, func(n string) bool { return strings.EqualFold(n, nick) })
}

// roomKey is the map key of a room name: its JID local part as normalised, lower case.
func roomKey(room string) string {
	if j, err := jid.New(room, "example.org", ""); err == nil {
		return strings.ToLower(j.Localpart())
	}
	return strings.ToLower(room)
}

// Watch asks for room's occupants: the room is joined now if connected, else once
// connected, and again after every reconnect. room is the local part of the room's JID
// (the conference name); it is reported with the spelling of the first Watch. Watch is
// idempotent; a room whose name is not a valid JID local part is logged and never joined.
func (w *Watcher) Watch(room string) {
	k := roomKey(room)
	w.mu.Lock()
	if _, ok := w.watched[k]; ok {
		w.mu.Unlock()
		return
	}
	w.watched[k] = room
	c := w.cur
	w.mu.Unlock()
	if c != nil {
		c.join(k, room)
	}
}

// Unwatch leaves room and stops reporting it. It is idempotent.
func (w *Watcher) Unwatch(room string) {
	k := roomKey(room)
	w.mu.Lock()
	if _, ok := w.watched[k]; !ok {
		w.mu.Unlock()
		return
	}
	delete(w.watched, k)
	c := w.cur
	w.mu.Unlock()
	if c != nil {
		c.leave(k)
	}
}

// Connected reports whether the watcher is logged in, and the error that ended or
// prevented the last connection (nil while connected).
func (w *Watcher) Connected() (bool, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.connected, w.lastErr
}

// setConn records the live connection (nil when it ended) and the error of the last one.
func (w *Watcher) setConn(c *conn, err error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.cur = c
	w.connected = c != nil
	w.lastErr = err
}

// watchedRooms returns the watched rooms, key → name.
func (w *Watcher) watchedRooms() map[string]string {
	w.mu.Lock()
	defer w.mu.Unlock()
	m := make(map[string]string, len(w.watched))
	for k, v := range w.watched {
		m[k] = v
	}
	return m
}
