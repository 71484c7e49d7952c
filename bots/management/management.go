// Package management is the built-in management bot: the appservice's sender user. Admins
// open a DM with it and send commands: help, status (each module's connection state, queue
// depth and last error), version, and "<module> …" for modules that add commands.
package management

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/rs/zerolog"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/format"
	"maunium.net/go/mautrix/id"

	"github.com/switchboard-matrix/switchboard/appservice"
	"github.com/switchboard-matrix/switchboard/registration"
)

// ID is the management bot's module ID.
const ID = "management"

// Config configures the bot.
type Config struct {
	// Admins may command the bot: user IDs, "*:domain" for every user of a server, or "*".
	// Required: an empty list would lock everybody out.
	Admins []string
}

// Bot is the management bot module.
type Bot struct {
	admins []string        // immutable
	host   appservice.Host // set by Start
}

var (
	_ appservice.Module = (*Bot)(nil)
)

// New checks cfg and returns the bot. It does no I/O.
func New(cfg Config) (*Bot, error) {
	if len(cfg.Admins) == 0 {
		return nil, errors.New("management: at least one admin pattern is required")
	}
	for _, a := range cfg.Admins {
		if a != "*" && !strings.HasPrefix(a, "*:") && !strings.HasPrefix(a, "@") {
			return nil, fmt.Errorf("management: admin %q is neither a user ID, \"*:domain\" nor \"*\"", a)
		}
	}
	return &Bot{admins: cfg.Admins}, nil
}

// ID implements appservice.Module.
func (b *Bot) ID() string { return ID }

// Namespaces implements appservice.Module: the bot user itself is in the registration
// already, so the bot claims nothing more.
func (b *Bot) Namespaces() registration.Namespaces { return registration.Namespaces{} }

// Start implements appservice.Module.
func (b *Bot) Start(_ context.Context, host appservice.Host) error {
	b.host = host
	return nil
}

// Stop implements appservice.Module.
func (b *Bot) Stop(context.Context) error { return nil }

// Status implements appservice.StatusReporter.
func (b *Bot) Status(context.Context) appservice.ModuleStatus {
	return appservice.ModuleStatus{Connected: true, State: "ready"}
}

func (b *Bot) isAdmin(user id.UserID) bool {
	_, server, err := user.Parse()
	if err != nil {
		return false
	}
	for _, a := range b.admins {
		if a == "*" || a == user.String() || (strings.HasPrefix(a, "*:") && a[2:] == server) {
			return true
		}
	}
	return false
}

// HandleEvent implements appservice.Module: it accepts admins' invites and answers their
// commands. Replies are keyed by the command's event ID, so a redelivered command is
// answered once.
func (b *Bot) HandleEvent(ctx context.Context, evt *event.Event) error {
	switch evt.Type {
	case event.StateMember:
		return b.handleMember(ctx, evt)
	case event.EventMessage:
		return b.handleMessage(ctx, evt)
	}
	return nil
}

func (b *Bot) handleMember(ctx context.Context, evt *event.Event) error {
	mem := evt.Content.AsMember()
	if evt.GetStateKey() != b.host.BotUserID().String() || mem.Membership != event.MembershipInvite {
		return nil
	}
	log := zerolog.Ctx(ctx)
	bot := b.host.Bot()
	if !b.isAdmin(evt.Sender) {
		log.Info().Stringer("sender", evt.Sender).Msg("Declining invite from a user who is not an admin")
		return bot.LeaveRoom(ctx, evt.RoomID)
	}
	if err := bot.JoinRoom(ctx, evt.RoomID); err != nil {
		return fmt.Errorf("failed to join %s: %w", evt.RoomID, err)
	}
	if err := b.host.Store().PutPortal(ctx, "room:"+evt.RoomID.String(), evt.RoomID); err != nil {
		return err
	}
	return b.reply(ctx, evt, "welcome:", "Hello! I am Switchboard's management bot. Send `help` for the commands.")
}

func (b *Bot) handleMessage(ctx context.Context, evt *event.Event) error {
	msg := evt.Content.AsMessage()
	if msg.MsgType != event.MsgText || msg.RelatesTo.GetReplaceID() != "" {
		return nil
	}
	if !b.isAdmin(evt.Sender) {
		return b.reply(ctx, evt, "reply:", "Sorry, only Switchboard's admins may use this bot.")
	}
	words := strings.Fields(strings.TrimPrefix(strings.TrimSpace(msg.Body), "!sb"))
	if len(words) == 0 {
		return nil
	}
	var text string
	switch strings.ToLower(words[0]) {
	case "help":
		text = helpText
	case "version":
		text = "Switchboard " + b.host.Report(ctx).Version
	case "status":
		text = formatStatus(b.host.Report(ctx))
	default:
		text = b.moduleCommand(ctx, evt, words)
	}
	return b.reply(ctx, evt, "reply:", text)
}

func (b *Bot) moduleCommand(ctx context.Context, evt *event.Event, words []string) string {
	cmd := appservice.Command{Sender: evt.Sender, RoomID: evt.RoomID, Args: words[1:]}
	out, err := b.host.RunCommand(ctx, words[0], cmd)
	switch {
	case errors.Is(err, appservice.ErrUnknownCommand):
		return fmt.Sprintf("Unknown command %q. Send `help` for the commands.", words[0])
	case err != nil:
		return fmt.Sprintf("%s failed: %v", words[0], err)
	default:
		return out
	}
}

func (b *Bot) reply(ctx context.Context, to *event.Event, prefix, markdown string) error {
	content := format.RenderMarkdown(markdown, true, false)
	content.MsgType = event.MsgNotice
	return b.host.Enqueue(ctx, appservice.Message{
		RoomID: to.RoomID, Sender: b.host.BotUserID(), RemoteID: prefix + to.ID.String(), Content: &content,
	})
}

const helpText = `**Switchboard management bot**

* ` + "`status`" + ` — each module's connection state, queue depth and last error
* ` + "`version`" + ` — the running version
* ` + "`<module> <command> …`" + ` — a module's own commands (see ` + "`<module> help`" + `)
* ` + "`help`" + ` — this text`

func formatStatus(r appservice.Report) string {
	var sb strings.Builder
	fmt.Fprintf(&sb, "**Switchboard %s**\n\n", r.Version)
	if r.DatabaseError != "" {
		fmt.Fprintf(&sb, "Database: unreachable (%s)\n\n", r.DatabaseError)
	}
	fmt.Fprintf(&sb, "Inbox: %d waiting · Outbox: %d waiting\n\n", r.InboxDepth, r.OutboxDepth)
	for _, m := range r.Modules {
		state := "running"
		if m.Reported {
			state = m.Status.State
			if state == "" && m.Status.Connected {
				state = "connected"
			} else if state == "" {
				state = "disconnected"
			}
		}
		fmt.Fprintf(&sb, "* **%s**: %s · queue %d", m.ID, state, m.Outbox)
		lastErr := m.Status.LastError
		if lastErr == "" {
			lastErr = m.LastHandlerError
		}
		if lastErr != "" {
			fmt.Fprintf(&sb, " · last error: %s", lastErr)
		}
		sb.WriteString("\n")
	}
	return sb.String()
}
