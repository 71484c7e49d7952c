// Package case116117 is Switchboard's 116117 case-handover bot. It links dispatch centres
// (ELS) that hand cases to each other over UCRI2 (app incident_transfer_with_patient 1.0)
// to Matrix: every case handed over to an ELS becomes a room where its dispatchers read the
// case, accept or reject it and close it, and every answer goes back to the other centre.
// Dispatchers also hand cases over from Matrix to other centres.
//
// Each configured link is one UCRM client ("one client per ELS") with its own bot user.
// Nothing is lost or doubled: a received message is stored before the UCRM's queue is
// committed and processed idempotently (keyed by its messageId, rooms by alias, Matrix
// messages by remote ID); an answer is stored with a messageId derived from the Matrix event
// that caused it before it is sent, and resent with the same id until the UCRM took it.
//
// The protocol (envelope, client, app messages, schema validation, signatures) lives in the
// pure sub-package ucri.
package case116117

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strings"

	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"

	"github.com/switchboard-matrix/switchboard/appservice"
	"github.com/switchboard-matrix/switchboard/internal/loops"
	"github.com/switchboard-matrix/switchboard/registration"
)

// ID is the module's ID and config key.
const ID = "case116117"

// Bot is the 116117 case-handover module.
type Bot struct {
	cfg   Config
	host  appservice.Host
	links []*link

	loops loops.Group // the links' loops; end with Stop
}

var (
	_ appservice.Module         = (*Bot)(nil)
	_ appservice.StatusReporter = (*Bot)(nil)
	_ appservice.FailureSender  = (*Bot)(nil)
)

// New validates cfg and returns the bot; it does no I/O (keys and certificates are read
// at Start).
func New(cfg Config) (*Bot, error) {
	cfg.defaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	b := &Bot{cfg: cfg}
	for i := range cfg.Links {
		b.links = append(b.links, newLink(b, &b.cfg.Links[i]))
	}
	return b, nil
}

// ID implements appservice.Module.
func (b *Bot) ID() string { return ID }

// Namespaces implements appservice.Module: the link bots and the case rooms' aliases.
func (b *Bot) Namespaces() registration.Namespaces {
	p := registration.Pattern{Localpart: regexp.QuoteMeta(b.cfg.Prefix) + ".+", Exclusive: true}
	return registration.Namespaces{Users: []registration.Pattern{p}, Aliases: []registration.Pattern{p}}
}

// Start implements appservice.Module: every link starts its receiver, processor and sender.
func (b *Bot) Start(ctx context.Context, host appservice.Host) error {
	b.host = host
	b.logEncryption(ctx)
	for _, l := range b.links {
		if err := l.init(); err != nil {
			return err
		}
	}
	b.loops.Start(ctx)
	for _, l := range b.links {
		b.loops.Go(l.run)
	}
	return nil
}

// Stop implements appservice.Module.
func (b *Bot) Stop(ctx context.Context) error {
	if err := b.loops.Stop(ctx); err != nil {
		return fmt.Errorf("case116117: stop: %w", err)
	}
	return nil
}

// Status implements appservice.StatusReporter.
func (b *Bot) Status(context.Context) appservice.ModuleStatus {
	st := appservice.ModuleStatus{Connected: true}
	for i, l := range b.links {
		state, lastErr := l.status()
		if state != "connected" {
			st.Connected = false
		}
		if i > 0 {
			st.State += "; "
		}
		st.State += l.cfg.Name + ": " + state
		if lastErr != "" {
			st.LastError = l.cfg.Name + ": " + lastErr
		}
	}
	return st
}

// FailureSender implements appservice.FailureSender: the link's bot posts failure reports
// in its rooms (the management bot is not in them).
func (b *Bot) FailureSender(ctx context.Context, roomID id.RoomID) id.UserID {
	if l, _, err := b.roomLink(ctx, roomID); err == nil {
		return l.botID()
	}
	return ""
}

// HandleEvent implements appservice.Module: commands and reactions in case rooms and
// admin rooms.
func (b *Bot) HandleEvent(ctx context.Context, evt *event.Event) error {
	if evt.Type == event.StateMember && evt.StateKey != nil {
		for _, l := range b.links {
			if id.UserID(*evt.StateKey) == l.botID() {
				return l.handleInvite(ctx, evt)
			}
		}
		return nil
	}
	if evt.Type != event.EventMessage && evt.Type != event.EventReaction {
		return nil
	}
	l, key, err := b.roomLink(ctx, evt.RoomID)
	if errors.Is(err, appservice.ErrNotFound) || errors.Is(err, errNotOurs) {
		return nil
	} else if err != nil {
		return err
	}
	if b.isOwnUser(evt.Sender) {
		return nil
	}
	err = l.handleEvent(ctx, key, evt)
	if re, ok := errors.AsType[appservice.RoomError](err); ok {
		// A refused command is answered in German here, in reply to it; the core's failure
		// report is worded in English.
		return l.reply(ctx, evt, "refused", "⚠️ Nicht ausgeführt: "+strings.TrimRight(re.Msg, ". ")+".")
	}
	return err
}

var errNotOurs = errors.New("case116117: not a room of this module")

// roomLink finds the link and portal key of a room.
func (b *Bot) roomLink(ctx context.Context, roomID id.RoomID) (*link, portalKey, error) {
	raw, err := b.host.Store().PortalByRoom(ctx, roomID)
	if err != nil {
		return nil, portalKey{}, err
	}
	k, ok := parsePortalKey(raw)
	if !ok {
		return nil, portalKey{}, errNotOurs
	}
	for _, l := range b.links {
		if l.cfg.Name == k.link {
			return l, k, nil
		}
	}
	return nil, portalKey{}, errNotOurs
}

// isNamespaced says whether u is in the module's namespace (a link bot, or a user of
// another Switchboard instance's links).
func (b *Bot) isNamespaced(u id.UserID) bool {
	return strings.HasPrefix(string(u), "@"+b.cfg.Prefix)
}

func (b *Bot) isOwnUser(u id.UserID) bool {
	if u == b.host.BotUserID() {
		return true
	}
	for _, l := range b.links {
		if u == l.botID() {
			return true
		}
	}
	return false
}
