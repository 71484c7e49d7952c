// Package management is the built-in management bot: the appservice's sender user. Users
// the core lets use it (the management permission list, by default every user of the
// homeserver's domain) open a DM with it and send commands: help, status (each module's
// connection state and queue depth; admins also see the last errors), version, and
// "<module> …" for modules that add commands. Raw internal errors are shown to the
// configured admins only; there are none by default.
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
	// Admins see raw internal errors (in status and in failed module commands): user IDs,
	// "*:domain" for every user of a server, or "*". Empty means nobody: everyone else gets
	// a summary without the errors. Who may use the bot at all is the core's permission
	// list for the module "management".
	Admins []string
}

// Bot is the management bot module.
type Bot struct {
	admins appservice.UserPatterns // immutable
	host   appservice.Host         // set by Start
}

var (
	_ appservice.Module = (*Bot)(nil)
)

// New checks cfg and returns the bot. It does no I/O.
func New(cfg Config) (*Bot, error) {
	admins, err := appservice.ParseUserPatterns(cfg.Admins)
	if err != nil {
		return nil, fmt.Errorf("management: admins: %w", err)
	}
	return &Bot{admins: admins}, nil
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

func (b *Bot) isAdmin(user id.UserID) bool { return b.admins.Match(user) }

// HandleEvent implements appservice.Module: it accepts invites and answers commands (the
// core passes only those of users permitted to use the bot). Replies are keyed by the command's event ID, so a redelivered command is
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
	bot := b.host.Bot()
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
	words := strings.Fields(strings.TrimPrefix(strings.TrimSpace(msg.Body), "!sb"))
	if len(words) == 0 {
		return nil
	}
	var text string
	switch strings.ToLower(words[0]) {
	case "help":
		text = b.help(ctx, evt)
	case "version":
		text = "Switchboard " + b.host.Report(ctx).Version
	case "status":
		text = formatStatus(b.host.Report(ctx), b.isAdmin(evt.Sender))
	default:
		text = b.moduleCommand(ctx, evt, words)
	}
	return b.reply(ctx, evt, "reply:", text)
}

func (b *Bot) moduleCommand(ctx context.Context, evt *event.Event, words []string) string {
	cmd := appservice.Command{Sender: evt.Sender, RoomID: evt.RoomID, Args: words[1:], Admin: b.isAdmin(evt.Sender)}
	out, err := b.host.RunCommand(ctx, words[0], cmd)
	switch {
	case errors.Is(err, appservice.ErrUnknownCommand) && b.isModule(ctx, words[0]):
		return fmt.Sprintf("The module %s has no commands. Send `help` for the commands.", words[0])
	case errors.Is(err, appservice.ErrUnknownCommand):
		return fmt.Sprintf("Unknown command %q. Send `help` for the commands.", words[0])
	case errors.Is(err, appservice.ErrNotPermitted):
		return fmt.Sprintf("You are not permitted to use %s.", words[0])
	case err != nil && b.isAdmin(evt.Sender):
		return fmt.Sprintf("%s failed: %v", words[0], err)
	case err != nil:
		zerolog.Ctx(ctx).Warn().Err(err).Str("command", words[0]).Msg("Module command failed")
		return fmt.Sprintf("%s failed. Switchboard's admins can see why in the log and in `status`.", words[0])
	default:
		return out
	}
}

func (b *Bot) reply(ctx context.Context, to *event.Event, prefix, markdown string) error {
	content := format.RenderMarkdown(markdown, true, false)
	content.MsgType = event.MsgNotice
	return b.host.Enqueue(ctx, appservice.Message{
		RoomID: to.RoomID, Sender: b.host.BotUserID(), RemoteID: prefix + to.ID.String(), Content: &content,
		CausedBy: to.ID, // a reply the homeserver refuses marks the command as failed
	})
}

// formatStatus renders the report; raw errors only for admins, others see that there is one.
func formatStatus(r appservice.Report, admin bool) string {
	var sb strings.Builder
	fmt.Fprintf(&sb, "**Switchboard %s**\n\n", r.Version)
	switch {
	case r.DatabaseError != "" && admin:
		fmt.Fprintf(&sb, "Database: unreachable (%s)\n\n", r.DatabaseError)
	case r.DatabaseError != "":
		sb.WriteString("Database: unreachable\n\n")
	}
	hidden := false
	fmt.Fprintf(&sb, "Inbox: %d waiting · Outbox: %d waiting\n", r.InboxDepth, r.OutboxDepth)
	switch r.Encryption {
	case "on":
		sb.WriteString("Encryption: on\n\n")
	case "unsupported":
		sb.WriteString("Encryption: off (enabled, but the homeserver cannot create devices for bridges)\n\n")
	default:
		sb.WriteString("Encryption: off\n\n")
	}
	if r.Scanner != "" && r.Scanner != "off" {
		sb.WriteString("Virus scanner: " + r.Scanner)
		switch {
		case r.ScannerError != "" && admin:
			fmt.Fprintf(&sb, " (%s)", r.ScannerError)
		case r.ScannerError != "":
			hidden = true
		}
		sb.WriteString("\n\n")
	}
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
		switch {
		case lastErr != "" && admin:
			fmt.Fprintf(&sb, " · last error: %s", lastErr)
		case lastErr != "":
			sb.WriteString(" · has errors")
			hidden = true
		}
		sb.WriteString("\n")
	}
	if hidden || (r.DatabaseError != "" && !admin) {
		sb.WriteString("\nThe errors themselves are shown to Switchboard's admins only (management.admins).\n")
	}
	return sb.String()
}
