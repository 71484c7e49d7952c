// Package sip is Switchboard's SIP messaging bridge: SIP users (desk phones, softphones,
// the PBX, gateways of Skype for Business) and Matrix users message each other in pager
// mode (RFC 3428 MESSAGE). The bridge serves a SIP domain of its own behind the
// organisation's SIP proxy; every SIP user is a Matrix ghost and every Matrix user a SIP
// URI on the bridge's domain (package sipuri). Each pair of a Matrix user and a SIP user
// has one direct-message room.
//
// Delivery:
//   - a MESSAGE from SIP is answered 202 only once it is durably queued for Matrix, keyed
//     by its Call-ID, From tag and CSeq, so a retransmission or a resend never doubles it;
//   - a Matrix message goes to SIP as a MESSAGE whose Call-ID and From tag derive from the
//     event ID; it counts as delivered on a 2xx answer, recorded at once; no answer within
//     send_timeout, 408, 480, 500, 503 and 504 are retried with backoff (a new transaction
//     with the next CSeq each time), other final answers are reported to the Matrix sender
//     with the reason phrase.
//
// Typing (RFC 3994 isComposing) and read receipts (RFC 5438 IMDN, over CPIM) are bridged
// when the peer uses them; presence with PIDF (RFC 3856, 3863).
//
// The protocol code is in sub-packages that know nothing of the appservice: sipua (the
// transport on sipgo), sipmsg (message bodies) and sipuri (addressing).
package sip

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"

	"github.com/rs/zerolog"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"

	"github.com/switchboard-matrix/switchboard/appservice"
	"github.com/switchboard-matrix/switchboard/bridges/sip/sipua"
	"github.com/switchboard-matrix/switchboard/bridges/sip/sipuri"
	"github.com/switchboard-matrix/switchboard/internal/loops"
	"github.com/switchboard-matrix/switchboard/registration"
)

// ID is the module's ID and config key.
const ID = "sip"

// Bridge is the SIP bridge module.
type Bridge struct {
	cfg     Config            // immutable
	domains sipuri.DomainList // immutable
	ua      *sipua.UA
	mapper  sipuri.Mapper // immutable after Start

	host      appservice.Host
	loops     loops.Group
	mediaAddr string // the link server's bound address

	mu     sync.Mutex // serialises DM creation
	regMu  sync.Mutex // serialises ghost registration
	typing sync.Map   // portal key → last typing state sent to SIP (bool)
	flags  sync.Map   // store keys known to be set (see setFlag)
	names  sync.Map   // Matrix user ID → cachedName
	// resubscribing are the SIP users (sipuri.AOR) whose presence is watched again soon.
	resubscribing sync.Map
	presence      presenceState
	// infoChecked are the DM rooms (id.RoomID) whose bridge info this process wrote or
	// checked (see backfillBridgeInfo).
	infoChecked sync.Map
}

var (
	_ appservice.Module           = (*Bridge)(nil)
	_ appservice.QueryHandler     = (*Bridge)(nil)
	_ appservice.StatusReporter   = (*Bridge)(nil)
	_ appservice.CommandHandler   = (*Bridge)(nil)
	_ appservice.EphemeralHandler = (*Bridge)(nil)
	_ appservice.FailureSender    = (*Bridge)(nil)
)

// New validates cfg and returns the bridge; it does no I/O.
func New(cfg Config) (*Bridge, error) {
	cfg.defaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	domains, err := sipuri.ParseDomainList(cfg.Domains)
	if err != nil {
		return nil, fmt.Errorf("modules.sip.domains: %w", err)
	}
	b := &Bridge{cfg: cfg, domains: domains}
	ucfg := sipua.Config{
		Domain: cfg.Domain, Proxy: cfg.Proxy, CAFile: cfg.CAFile, TrustedPeers: cfg.TrustedPeers,
		MaxBodyBytes: cfg.MaxMessageBytes, UserAgent: "Switchboard SIP bridge",
	}
	for _, l := range cfg.Listen {
		ucfg.Listen = append(ucfg.Listen, sipua.Listener{Transport: l.Transport, Addr: l.Address, CertFile: l.CertFile, KeyFile: l.KeyFile})
	}
	if r := cfg.Register; r != nil {
		ucfg.Register = &sipua.Register{AOR: r.AOR, Username: r.Username, Password: r.Password, Expires: r.Expires.Std()}
	}
	ua, err := sipua.New(ucfg, b)
	if err != nil {
		return nil, fmt.Errorf("modules.sip: %w", err)
	}
	b.ua = ua
	b.presence.init()
	return b, nil
}

// ID implements appservice.Module.
func (b *Bridge) ID() string { return ID }

// Namespaces implements appservice.Module: the ghosts.
func (b *Bridge) Namespaces() registration.Namespaces {
	return registration.Namespaces{
		Users: []registration.Pattern{{Localpart: b.cfg.Prefix + ".+", Exclusive: true}},
	}
}

// Start implements appservice.Module: the SIP user agent runs in the background.
func (b *Bridge) Start(ctx context.Context, host appservice.Host) error {
	b.host = host
	b.mapper = sipuri.Mapper{Homeserver: host.Domain(), Domain: b.cfg.Domain, Prefix: b.cfg.Prefix}
	b.loops.Start(ctx)
	if err := b.startMedia(); err != nil {
		return err
	}
	b.loops.Go(func(ctx context.Context) {
		if err := b.ua.Run(ctx); err != nil && ctx.Err() == nil {
			zerolog.Ctx(ctx).Error().Err(err).Msg("The SIP user agent stopped")
		}
	})
	if *b.cfg.Presence {
		b.loops.Go(b.subscribeLoop)
	}
	return nil
}

// Stop implements appservice.Module.
func (b *Bridge) Stop(ctx context.Context) error {
	if err := b.loops.Stop(ctx); err != nil {
		return fmt.Errorf("sip: stop: %w", err)
	}
	return nil
}

// Ready is closed once the bridge listens on all its SIP listeners.
func (b *Bridge) Ready() <-chan struct{} { return b.ua.Ready() }

// Addrs are the bound SIP listeners' addresses by transport (for tests with port 0).
func (b *Bridge) Addrs() map[string]string { return b.ua.Addrs() }

// MediaAddr is the bound address of the link server for files ("" without one).
func (b *Bridge) MediaAddr() string { return b.mediaAddr }

// Status implements appservice.StatusReporter.
func (b *Bridge) Status(context.Context) appservice.ModuleStatus {
	registered, lastErr := b.ua.Status()
	st := appservice.ModuleStatus{Connected: true}
	if lastErr != nil {
		st.LastError = lastErr.Error()
	}
	select {
	case <-b.ua.Ready():
	default:
		st.Connected = false
		st.State = "starting the SIP listeners"
		return st
	}
	var parts []string
	for tr, addr := range b.ua.Addrs() {
		parts = append(parts, tr+" "+addr)
	}
	slices.Sort(parts)
	st.State = "serving " + b.cfg.Domain + " on " + strings.Join(parts, ", ") + " via " + b.cfg.Proxy
	if b.cfg.Register != nil {
		if registered {
			st.State += ", registered as " + b.cfg.Register.AOR
		} else {
			st.Connected = false
			st.State += ", not registered"
		}
	}
	return st
}

// isGhost reports whether userID is one of the bridge's ghosts.
func (b *Bridge) isGhost(userID id.UserID) bool {
	localpart, server, err := userID.Parse()
	return err == nil && server == b.mapper.Homeserver && b.mapper.IsGhost(localpart)
}

// HandleEvent implements appservice.Module: Matrix to SIP.
func (b *Bridge) HandleEvent(ctx context.Context, evt *event.Event) error {
	if b.isGhost(evt.Sender) || evt.Sender == b.host.BotUserID() {
		return nil
	}
	chat, err := b.host.Store().PortalByRoom(ctx, evt.RoomID)
	if errors.Is(err, appservice.ErrNotFound) {
		if evt.Type == event.StateMember {
			return b.inviteToGhost(ctx, evt)
		}
		return nil
	} else if err != nil {
		return err
	}
	user, peer, ok := parseDMChat(chat)
	if !ok {
		return nil
	}
	switch evt.Type {
	case event.StateMember:
		return b.dmMemberChange(ctx, chat, user, peer, evt)
	case event.EventMessage, event.EventSticker:
		if evt.Sender != user {
			return nil // a third user in the DM: not bridged
		}
		b.backfillBridgeInfo(ctx, evt.RoomID, peer)
		return b.messageToSIP(ctx, chat, user, peer, evt)
	}
	return nil
}

// FailureSender implements appservice.FailureSender: the SIP user's ghost reports in its
// DM.
func (b *Bridge) FailureSender(ctx context.Context, roomID id.RoomID) id.UserID {
	chat, err := b.host.Store().PortalByRoom(ctx, roomID)
	if err != nil {
		return ""
	}
	_, peer, ok := parseDMChat(chat)
	if !ok {
		return ""
	}
	ghost, err := b.ghostID(peer)
	if err != nil {
		return ""
	}
	return ghost
}

// ghostID is the Matrix user ID of a SIP user's ghost.
func (b *Bridge) ghostID(a sipuri.AOR) (id.UserID, error) {
	localpart, err := b.mapper.GhostLocalpart(a)
	if err != nil {
		return "", err
	}
	return id.NewUserID(localpart, b.mapper.Homeserver), nil
}

// permits reports whether a Matrix user may use the bridge (the module's permission list).
func (b *Bridge) permits(user id.UserID) bool {
	if p, ok := b.host.(appservice.PermissionHolder); ok {
		return p.Permits(user)
	}
	return true
}

// setFlag records a lasting fact in the store ("cpim:<peer>", "watch:<peer>", …) and
// reports whether it is new; a fact known to this process is not written again (these
// are set on every message of a peer).
func (b *Bridge) setFlag(ctx context.Context, key string) (bool, error) {
	if _, ok := b.flags.Load(key); ok {
		return false, nil
	}
	if _, err := b.host.Store().GetKV(ctx, key); err == nil {
		b.flags.Store(key, true)
		return false, nil
	}
	if err := b.host.Store().PutKV(ctx, key, "1"); err != nil {
		return false, err
	}
	b.flags.Store(key, true)
	return true, nil
}

// hasFlag reports whether a fact was recorded with setFlag.
func (b *Bridge) hasFlag(ctx context.Context, key string) bool {
	if _, ok := b.flags.Load(key); ok {
		return true
	}
	if _, err := b.host.Store().GetKV(ctx, key); err == nil {
		b.flags.Store(key, true)
		return true
	}
	return false
}
