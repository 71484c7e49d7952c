// Package email is Switchboard's email bridge: each configured mailbox (an IMAP folder and
// an SMTP submission account) is a Matrix room. Every mail conversation is a thread in
// that room; senders appear as ghosts. Replies in a thread are sent as mails from the
// mailbox, threaded by Message-ID, In-Reply-To and References on both sides.
//
// Nothing is lost or doubled: the IMAP cursor (UIDVALIDITY and the last UID) moves only
// after a mail is durably queued for Matrix under its Message-ID, so a crash re-reads
// mails that the outbox then recognises; a Matrix reply gets a Message-ID derived from its
// event ID and is recorded as sent once the SMTP server accepted it.
//
// MIME, addresses and composing live in the pure sub-packages mailparse, addr and compose.
package email

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/rs/zerolog"
	"maunium.net/go/mautrix"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"

	"github.com/switchboard-matrix/switchboard/appservice"
	"github.com/switchboard-matrix/switchboard/bridges/email/addr"
	"github.com/switchboard-matrix/switchboard/internal/loops"
	"github.com/switchboard-matrix/switchboard/registration"
)

// ID is the module's ID and config key.
const ID = "email"

// Bridge is the email bridge module.
type Bridge struct {
	cfg    Config
	mapper addr.Mapper
	host   appservice.Host

	loops loops.Group // the mailboxes' readers; end with Stop

	mu      sync.Mutex
	status  map[string]string      // mailbox name → connection state; guarded by mu
	runs    map[string]*mailboxRun // mailbox name → its reader's control; guarded by mu
	stopped bool                   // Stop began: no reader starts any more; guarded by mu
	ctl     sync.Mutex             // serialises pause and resume

	reader func(ctx context.Context, mb *mailbox) // a mailbox's reader; nil runs mb.run (tests replace it)
}

var (
	_ appservice.Module         = (*Bridge)(nil)
	_ appservice.StatusReporter = (*Bridge)(nil)
	_ appservice.CommandHandler = (*Bridge)(nil)
)

// New validates cfg and returns the bridge; it does no I/O.
func New(cfg Config) (*Bridge, error) {
	cfg.defaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &Bridge{cfg: cfg, status: map[string]string{}, runs: map[string]*mailboxRun{}}, nil
}

// ID implements appservice.Module.
func (b *Bridge) ID() string { return ID }

// Namespaces implements appservice.Module: the senders' ghosts.
func (b *Bridge) Namespaces() registration.Namespaces {
	return registration.Namespaces{Users: []registration.Pattern{{Localpart: b.cfg.Prefix + ".+", Exclusive: true}}}
}

// Start implements appservice.Module: each mailbox gets its room and a reader, except
// the mailboxes an admin paused.
func (b *Bridge) Start(ctx context.Context, host appservice.Host) error {
	b.host = host
	b.mapper = addr.Mapper{Homeserver: host.Domain(), Prefix: b.cfg.Prefix}
	b.loops.Start(ctx)
	for i := range b.cfg.Mailboxes {
		name := b.cfg.Mailboxes[i].Name
		paused, err := b.isPaused(ctx, name)
		if err != nil {
			return err
		}
		b.mu.Lock()
		b.runs[name] = &mailboxRun{}
		if paused {
			b.status[name] = statePaused
			zerolog.Ctx(ctx).Info().Str("mailbox", name).Msg("Mailbox is paused; send \"email resume\" to read it again")
		} else {
			b.startMailbox(&b.cfg.Mailboxes[i])
		}
		b.mu.Unlock()
	}
	return nil
}

// Stop implements appservice.Module.
func (b *Bridge) Stop(ctx context.Context) error {
	b.mu.Lock()
	b.stopped = true
	b.mu.Unlock()
	if err := b.loops.Stop(ctx); err != nil {
		return fmt.Errorf("email: stop: %w", err)
	}
	return nil
}

// Status implements appservice.StatusReporter.
func (b *Bridge) Status(context.Context) appservice.ModuleStatus {
	b.mu.Lock()
	defer b.mu.Unlock()
	st := appservice.ModuleStatus{Connected: len(b.status) > 0}
	for name, s := range b.status {
		if s != stateConnected && s != statePaused { // a paused mailbox is not a fault
			st.Connected = false
		}
		if st.State != "" {
			st.State += "; "
		}
		st.State += name + ": " + s
	}
	return st
}

func (b *Bridge) setStatus(mailbox, state string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.status[mailbox] = state
}

// HandleEvent implements appservice.Module: replies in threads become mails.
func (b *Bridge) HandleEvent(ctx context.Context, evt *event.Event) error {
	if b.isGhost(evt.Sender) || evt.Sender == b.host.BotUserID() || evt.Type != event.EventMessage {
		return nil
	}
	key, err := b.host.Store().PortalByRoom(ctx, evt.RoomID)
	if errors.Is(err, appservice.ErrNotFound) {
		return nil
	} else if err != nil {
		return err
	}
	for i := range b.cfg.Mailboxes {
		if "mailbox:"+b.cfg.Mailboxes[i].Name == key {
			return b.sendReply(ctx, &b.cfg.Mailboxes[i], evt)
		}
	}
	return nil
}

func (b *Bridge) isGhost(u id.UserID) bool {
	_, err := b.mapper.AddressForGhost(u)
	return err == nil
}

// ensureRoom returns the mailbox's room, creating it (by the bot, with the configured
// users invited) on first start.
func (b *Bridge) ensureRoom(ctx context.Context, mb *MailboxConfig) (id.RoomID, error) {
	key := "mailbox:" + mb.Name
	if room, err := b.host.Store().PortalByKey(ctx, key); err == nil {
		b.setBridgeInfo(ctx, mb, room) // rooms made before bridge info was written get it now
		return room, nil
	}
	invite := make([]id.UserID, 0, len(mb.Invite))
	for _, u := range mb.Invite {
		invite = append(invite, id.UserID(u))
	}
	// Dendrite refuses a room whose invites name a user of its own it does not know
	// (M_NOT_FOUND); Synapse makes the room and "invites" them without a word, so a typo in
	// the config would leave the mails in a room nobody reads. Such users are looked up
	// first, so that the mailbox does not start, with the same clear error, on both.
	for _, u := range invite {
		if u.Homeserver() != b.host.Domain() {
			continue
		}
		if _, _, err := b.host.Bot().Profile(ctx, u); errors.Is(err, appservice.ErrNotFound) {
			return "", fmt.Errorf("email: the room of %s: %s (in invite) is not a user of this homeserver", mb.Name, u)
		}
	}
	room, err := b.host.Bot().CreateRoom(ctx, &mautrix.ReqCreateRoom{
		Preset: "private_chat", Name: mb.DisplayName, Topic: "Mailbox " + mb.Address, Invite: invite,
	})
	if err != nil {
		return "", fmt.Errorf("email: create the room of %s: %w", mb.Name, err)
	}
	if err := b.host.Store().PutPortal(ctx, key, room); err != nil {
		return "", err
	}
	zerolog.Ctx(ctx).Info().Str("mailbox", mb.Name).Stringer("room_id", room).Msg("Created the mailbox's room")
	b.setBridgeInfo(ctx, mb, room)
	return room, nil
}
