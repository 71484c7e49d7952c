// Package xmpp is Switchboard's XMPP bridge: it connects to an XMPP server as an external
// component (XEP-0114) and links Matrix with XMPP in 1:1 chats and group chats (MUC,
// portal mode). XMPP users appear in Matrix as ghosts, Matrix users appear in XMPP as JIDs
// on the component's domain (see package xid).
//
// Delivery is exactly-once in effect in both directions:
//   - a Matrix event reaches the bridge through the core's journal, is sent as a stanza
//     whose id (and XEP-0359 origin-id) is derived from the event ID, and counts as
//     delivered only once the server confirmed it (package component); after a crash or a
//     reconnect the same stanza is sent again with the same id;
//   - an XMPP message is queued durably for Matrix under a key made of its sender and its
//     id before the bridge answers it with an XEP-0184 receipt, so a client that resends an
//     unacknowledged message never doubles it in Matrix.
//
// The protocol code lives in sub-packages that know nothing of Matrix's appservice:
// component (the connection), stanza (inbound checks), xmsg (messages and presence), iq,
// disco, vcard, upload, fetch and richtext. This package is the glue.
package xmpp

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/rs/zerolog"
	"maunium.net/go/mautrix/event"
	"mellium.im/xmpp/jid"

	"github.com/switchboard-matrix/switchboard/appservice"
	"github.com/switchboard-matrix/switchboard/bridges/xmpp/component"
	"github.com/switchboard-matrix/switchboard/bridges/xmpp/fetch"
	"github.com/switchboard-matrix/switchboard/bridges/xmpp/iq"
	"github.com/switchboard-matrix/switchboard/bridges/xmpp/stanza"
	"github.com/switchboard-matrix/switchboard/bridges/xmpp/xid"
	"github.com/switchboard-matrix/switchboard/internal/loops"
	"github.com/switchboard-matrix/switchboard/registration"
)

// ID is the module's ID and config key.
const ID = "xmpp"

// Bridge is the XMPP bridge module.
type Bridge struct {
	cfg    Config     // immutable
	mapper xid.Mapper // immutable after Start
	conn   *component.Conn
	iqs    *iq.Tracker
	fetch  *fetch.Fetcher
	http   *http.Client

	host  appservice.Host
	loops loops.Group // the bridge's background work; ends with Stop

	seen     recent      // groupchat stanzas already handled (each puppet gets a copy)
	inq      inQueues    // conversations with inbound messages off the ordered path
	muc      mucState    // the puppets' MUC occupancy
	typing   typingState // who types in which portal
	presence sync.Map    // Matrix user ID → the last presence sent for them
	avatars  sync.Map    // Matrix avatar URI → its bytes, for puppets' vCards
	profiled sync.Map    // bare JIDs whose profile was fetched on their first presence
	mu       sync.Mutex  // serialises portal creation
	regMu    sync.Mutex  // serialises ghost registration (see ensureRegistered)
}

var (
	_ appservice.Module         = (*Bridge)(nil)
	_ appservice.QueryHandler   = (*Bridge)(nil)
	_ appservice.StatusReporter = (*Bridge)(nil)
	_ appservice.CommandHandler = (*Bridge)(nil)
)

// New validates cfg and returns the bridge; it does no I/O.
func New(cfg Config) (*Bridge, error) {
	cfg.defaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	b := &Bridge{cfg: cfg, iqs: iq.NewTracker(), http: &http.Client{Timeout: 2 * time.Minute}}
	b.fetch = &fetch.Fetcher{MaxBytes: cfg.Media.MaxBytes, AllowPrivate: cfg.Media.AllowPrivate}
	conn, err := component.New(component.Config{
		Addr: cfg.Component.Address, Domain: cfg.Component.Domain, Secret: cfg.Component.Secret,
		ServerDomain: cfg.Component.ServerDomain,
		MinBackoff:   cfg.Component.MinBackoff.Std(), MaxBackoff: cfg.Component.MaxBackoff.Std(),
	}, b.handleStanza)
	if err != nil {
		return nil, fmt.Errorf("modules.xmpp.component: %w", err)
	}
	b.conn = conn
	b.seen.init(4096)
	b.muc.init()
	b.inq.init(cfg.Media.Downloads)
	return b, nil
}

// ID implements appservice.Module.
func (b *Bridge) ID() string { return ID }

// Namespaces implements appservice.Module: the ghosts and the MUC aliases.
func (b *Bridge) Namespaces() registration.Namespaces {
	return registration.Namespaces{
		Users:   []registration.Pattern{{Localpart: b.cfg.Prefix + ".+", Exclusive: true}},
		Aliases: []registration.Pattern{{Localpart: b.cfg.Prefix + ".+", Exclusive: true}},
	}
}

// Start implements appservice.Module: it starts the component connection in the background.
func (b *Bridge) Start(ctx context.Context, host appservice.Host) error {
	b.host = host
	b.mapper = xid.Mapper{Homeserver: host.Domain(), Component: b.cfg.Component.Domain, Prefix: b.cfg.Prefix}
	b.loops.Start(ctx)
	b.loops.Go(func(ctx context.Context) {
		b.resumeQueued(ctx) // before any new stanza, which may have to wait behind them
		_ = b.conn.Run(ctx)
	})
	b.loops.Go(b.rejoinMUCs)
	b.loops.Go(b.backfillBridgeInfo)
	return nil
}

// Stop implements appservice.Module.
func (b *Bridge) Stop(ctx context.Context) error {
	if err := b.loops.Stop(ctx); err != nil {
		return fmt.Errorf("xmpp: stop: %w", err)
	}
	return nil
}

// Status implements appservice.StatusReporter.
func (b *Bridge) Status(context.Context) appservice.ModuleStatus {
	st := appservice.ModuleStatus{Connected: b.conn.Connected(), LastError: b.conn.LastError()}
	if st.Connected {
		st.State = "connected to " + b.cfg.Component.Address + " as " + b.cfg.Component.Domain
	} else {
		st.State = "connecting to " + b.cfg.Component.Address
	}
	return st
}

// handleStanza is the component's Handler: every inbound stanza, one at a time in order.
// An error makes the component answer the sender with a stanza error.
func (b *Bridge) handleStanza(ctx context.Context, raw []byte) error {
	log := zerolog.Ctx(ctx)
	st, err := stanza.Parse(raw, b.cfg.MaxStanzaBytes)
	if err != nil {
		// Not logged with the stanza: it may be hostile or carry a message body.
		log.Warn().Err(err).Int("bytes", len(raw)).Msg("Refused an inbound stanza")
		return rejected{err}
	}
	switch st.Kind {
	case "iq":
		return b.handleIQ(ctx, st)
	case "presence":
		return b.handlePresence(ctx, st)
	default:
		return b.handleMessage(ctx, st)
	}
}

// rejected is a stanza that is refused for good (the sender gets a stanza error).
type rejected struct{ err error }

func (r rejected) Error() string { return r.err.Error() }
func (r rejected) Unwrap() error { return r.err }

// StanzaError implements component.StanzaError.
func (r rejected) StanzaError() (string, string, string) {
	return "modify", "bad-request", "Refused by the Matrix bridge: " + r.err.Error()
}

// refusal is a stanza error with a condition and a text for the sender.
type refusal struct{ typ, condition, text string }

func (r refusal) Error() string                         { return r.condition + ": " + r.text }
func (r refusal) StanzaError() (string, string, string) { return r.typ, r.condition, r.text }

// send sends one stanza and waits for the server's confirmation, for at most the
// configured send timeout (which includes waiting for the connection).
func (b *Bridge) send(ctx context.Context, raw []byte) error {
	ctx, cancel := context.WithTimeout(ctx, b.cfg.Component.SendTimeout.Std())
	defer cancel()
	if err := b.conn.Send(ctx, raw); err != nil {
		if !b.conn.Connected() {
			return appservice.RoomError{Msg: "the XMPP server cannot be reached", Cause: err}
		}
		return fmt.Errorf("xmpp: %w", err)
	}
	return nil
}

// isGhost reports whether userID is one of the bridge's ghosts.
func (b *Bridge) isGhost(userID string) bool {
	localpart, server, err := idUser(userID).Parse()
	return err == nil && server == b.mapper.Homeserver && strings.HasPrefix(localpart, b.cfg.Prefix)
}

// HandleEvent implements appservice.Module: Matrix to XMPP.
func (b *Bridge) HandleEvent(ctx context.Context, evt *event.Event) error {
	zerolog.Ctx(ctx).Debug().Str("type", evt.Type.Type).Stringer("sender", evt.Sender).Msg("Matrix event")
	if b.isGhost(evt.Sender.String()) || evt.Sender == b.host.BotUserID() {
		return nil
	}
	return b.fromMatrix(ctx, evt)
}

// componentJID is the component's own JID.
func (b *Bridge) componentJID() jid.JID { return jid.MustParse(b.cfg.Component.Domain) }
