package email

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/switchboard-matrix/switchboard/appservice"
)

// help is the answer to "email help".
const help = "**email**: mailboxes as Matrix rooms\n\n" +
	"* `email list` — the mailboxes: address, state (connected, paused, error), last check, mails pending\n" +
	"* `email status <mailbox>` — one mailbox in detail\n" +
	"* `email pause <mailbox>` — stops reading the mailbox, also after a restart (admins)\n" +
	"* `email resume <mailbox>` — reads it again (admins)\n" +
	"* `email help` — this list"

// HandleCommand implements appservice.CommandHandler: list, status, pause, resume and
// help. Credentials are never shown; the reader's errors only to admins.
func (b *Bridge) HandleCommand(ctx context.Context, cmd appservice.Command) (string, error) {
	if len(cmd.Args) == 0 {
		return help, nil
	}
	verb, args := strings.ToLower(cmd.Args[0]), cmd.Args[1:]
	switch verb {
	case "help":
		return help, nil
	case "list":
		return b.listCommand(), nil
	case "status", "pause", "resume":
	default:
		return "Unknown command; send `email help` for the list.", nil
	}
	if len(args) != 1 {
		return fmt.Sprintf("Usage: `email %s <mailbox>`; `email list` shows the mailboxes.", verb), nil
	}
	cfg := b.mailboxConfig(args[0])
	if cfg == nil {
		return fmt.Sprintf("There is no mailbox %q; `email list` shows the mailboxes.", args[0]), nil
	}
	if verb == "status" {
		return b.statusCommand(cfg, cmd.Admin), nil
	}
	if !cmd.Admin {
		return fmt.Sprintf("Only Switchboard's admins (management.admins) may %s a mailbox.", verb), nil
	}
	pause := verb == "pause"
	changed, err := b.setPaused(ctx, cfg.Name, pause)
	switch {
	case errors.Is(err, ErrNoMailbox):
		return fmt.Sprintf("There is no mailbox %q.", cfg.Name), nil
	case err != nil:
		return "", err
	case !changed && pause:
		return fmt.Sprintf("%s is paused already.", cfg.Name), nil
	case !changed:
		return fmt.Sprintf("%s is being read already.", cfg.Name), nil
	case pause:
		return fmt.Sprintf("Paused %s: it is not read until `email resume %s`, also after a restart.", cfg.Name, cfg.Name), nil
	}
	return fmt.Sprintf("Resumed %s: it is being read again.", cfg.Name), nil
}

func (b *Bridge) listCommand() string {
	if len(b.cfg.Mailboxes) == 0 {
		return "No mailbox is configured."
	}
	var sb strings.Builder
	fmt.Fprintf(&sb, "**%d mailboxes**\n\n", len(b.cfg.Mailboxes))
	for i := range b.cfg.Mailboxes {
		v := b.view(&b.cfg.Mailboxes[i])
		fmt.Fprintf(&sb, "* **%s** (%s): %s · last check %s · %d pending\n", v.Name, v.Address, v.State, ago(v.LastCheck), v.Pending)
	}
	return sb.String()
}

func (b *Bridge) statusCommand(cfg *MailboxConfig, admin bool) string {
	v := b.view(cfg)
	var sb strings.Builder
	fmt.Fprintf(&sb, "**%s** (%s)\n\n", v.Name, v.Address)
	fmt.Fprintf(&sb, "* State: %s\n", v.State)
	switch {
	case v.LastError != "" && admin:
		fmt.Fprintf(&sb, "* Last error: %s\n", v.LastError)
	case v.LastError != "":
		sb.WriteString("* Last error: shown to Switchboard's admins only\n")
	}
	fmt.Fprintf(&sb, "* Last check: %s\n", ago(v.LastCheck))
	fmt.Fprintf(&sb, "* Pending: %d mails found and not yet in Matrix\n", v.Pending)
	fmt.Fprintf(&sb, "* Folder: %s on %s (checked every %s without IDLE)\n", cfg.Folder, cfg.IMAP.Address, cfg.PollInterval.Std())
	fmt.Fprintf(&sb, "* Sending through: %s\n", cfg.SMTP.Address)
	return sb.String()
}

// ago is how long ago t was, to the second; "never" for the zero time.
func ago(t time.Time) string {
	if t.IsZero() {
		return "never"
	}
	return time.Since(t).Truncate(time.Second).String() + " ago"
}
