package management

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"maunium.net/go/mautrix/event"

	"github.com/switchboard-matrix/switchboard/appservice"
)

const coreHelp = `**Switchboard management bot**

* ` + "`status`" + ` — each module's connection state and queue depth (admins also see the last errors)
* ` + "`version`" + ` — the running version
* ` + "`<module> help`" + ` — a module's own commands
* ` + "`help`" + ` — this text`

// help is the core's commands followed by each module's: the module's answer to
// "<module> help" (a module without commands, or one the sender may not use, says so).
func (b *Bot) help(ctx context.Context, evt *event.Event) string {
	var sb strings.Builder
	sb.WriteString(coreHelp)
	sb.WriteString("\n\n**Modules**\n")
	for _, m := range b.host.Report(ctx).Modules {
		if m.ID == ID {
			continue
		}
		cmd := appservice.Command{Sender: evt.Sender, RoomID: evt.RoomID, Args: []string{"help"}, Admin: b.isAdmin(evt.Sender)}
		out, err := b.host.RunCommand(ctx, m.ID, cmd)
		switch {
		case errors.Is(err, appservice.ErrUnknownCommand):
			fmt.Fprintf(&sb, "\n* **%s**: no commands\n", m.ID)
		case errors.Is(err, appservice.ErrNotPermitted):
			fmt.Fprintf(&sb, "\n* **%s**: not available to you (its permission list)\n", m.ID)
		case err != nil:
			fmt.Fprintf(&sb, "\n* **%s**: its help failed (send `%s help`)\n", m.ID, m.ID)
		default:
			fmt.Fprintf(&sb, "\n%s\n", strings.TrimSpace(out))
		}
	}
	return sb.String()
}

// isModule reports whether a module by that ID runs.
func (b *Bot) isModule(ctx context.Context, module string) bool {
	for _, m := range b.host.Report(ctx).Modules {
		if m.ID == module {
			return true
		}
	}
	return false
}
