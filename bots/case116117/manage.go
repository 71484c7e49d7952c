package case116117

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/switchboard-matrix/switchboard/appservice"
)

var _ appservice.CommandHandler = (*Bot)(nil)

// manageHelp is the answer to "case116117 help" in the management bot's room.
const manageHelp = "**case116117**: 116117 case handovers between control centres\n\n" +
	"* `case116117 cases [search]` — the open cases with their state and age; the search matches case IDs\n" +
	"* `case116117 links` — each link's state and queues\n" +
	"* `case116117 help` — this list"

// maxListedCases bounds the cases one answer lists.
const maxListedCases = 50

// closedStates end a case.
var closedStates = map[string]bool{stateRejected: true, stateCompleted: true, stateAborted: true}

// HandleCommand implements appservice.CommandHandler: the management bot's commands. They
// show case IDs, states and ages, never patient data; the links' errors only to admins.
func (b *Bot) HandleCommand(ctx context.Context, cmd appservice.Command) (string, error) {
	if len(cmd.Args) == 0 {
		return manageHelp, nil
	}
	switch strings.ToLower(cmd.Args[0]) {
	case "help":
		return manageHelp, nil
	case "cases":
		return b.casesCommand(ctx, strings.Join(cmd.Args[1:], " "), time.Now())
	case "links":
		return b.linksCommand(ctx, cmd.Admin)
	}
	return "Unknown command; send `case116117 help` for the list.", nil
}

// openCase is a case as the list shows it.
type openCase struct {
	link string
	rec  caseRecord
}

// openCases are the links' open cases whose ID contains search (any case), oldest first.
func (b *Bot) openCases(ctx context.Context, search string) ([]openCase, error) {
	search = strings.ToLower(search)
	var out []openCase
	for _, l := range b.links {
		rows, err := b.host.Store().ListKV(ctx, caseKey(l.cfg.Name, ""), 0)
		if err != nil {
			return nil, fmt.Errorf("case116117: list the cases of %s: %w", l.cfg.Name, err)
		}
		for _, row := range rows {
			var c caseRecord
			if err := json.Unmarshal([]byte(row.Value), &c); err != nil {
				return nil, fmt.Errorf("case116117: case %s in the store: %w", row.Key, err)
			}
			if closedStates[c.State] || !strings.Contains(strings.ToLower(c.ID), search) {
				continue
			}
			out = append(out, openCase{link: l.cfg.Name, rec: c})
		}
	}
	slices.SortStableFunc(out, func(a, b openCase) int { return a.rec.Created.Compare(b.rec.Created) })
	return out, nil
}

func (b *Bot) casesCommand(ctx context.Context, search string, now time.Time) (string, error) {
	cases, err := b.openCases(ctx, search)
	if err != nil {
		return "", err
	}
	if len(cases) == 0 && search != "" {
		return fmt.Sprintf("No open case matches %q.", search), nil
	} else if len(cases) == 0 {
		return "No open cases.", nil
	}
	var sb strings.Builder
	fmt.Fprintf(&sb, "**%d open cases**", len(cases))
	if search != "" {
		fmt.Fprintf(&sb, " matching %q", search)
	}
	sb.WriteString(" (oldest first)\n\n")
	for i, c := range cases {
		if i == maxListedCases {
			fmt.Fprintf(&sb, "\n… and %d more; narrow the list with `case116117 cases <part of a case ID>`.\n", len(cases)-i)
			break
		}
		dir := "from"
		if c.rec.Role == roleOutgoing {
			dir = "to"
		}
		fmt.Fprintf(&sb, "* `%s` (%s): %s · %s old · %s %s\n", c.rec.ID, c.link, stateName(c.rec.State), age(now.Sub(c.rec.Created)), dir, c.rec.Peer)
	}
	return sb.String(), nil
}

func (b *Bot) linksCommand(ctx context.Context, admin bool) (string, error) {
	links, err := b.linkSummaries(ctx)
	if err != nil {
		return "", err
	}
	if len(links) == 0 {
		return "No link is configured.", nil
	}
	var sb strings.Builder
	hidden := false
	for _, l := range links {
		fmt.Fprintf(&sb, "* **%s** (%s): %s · %d open cases · %d to send · %d received, not yet in rooms",
			l.name, l.oid, l.state, l.openCases, l.toSend, l.received)
		switch {
		case l.lastErr != "" && admin:
			fmt.Fprintf(&sb, " · last error: %s", l.lastErr)
		case l.lastErr != "":
			sb.WriteString(" · has errors")
			hidden = true
		}
		sb.WriteString("\n")
	}
	if hidden {
		sb.WriteString("\nThe errors themselves are shown to Switchboard's admins only (management.admins).\n")
	}
	return sb.String(), nil
}

// linkSummary is a link's state and queues, as the links command and the provisioning
// API show them. lastErr is for admins only.
type linkSummary struct {
	name, oid, state, lastErr   string
	openCases, toSend, received int
}

// linkSummaries are the links in config order with their state, open cases and queues.
func (b *Bot) linkSummaries(ctx context.Context) ([]linkSummary, error) {
	if len(b.links) == 0 {
		return nil, nil
	}
	open, err := b.openCases(ctx, "")
	if err != nil {
		return nil, err
	}
	perLink := map[string]int{}
	for _, c := range open {
		perLink[c.link]++
	}
	out := make([]linkSummary, 0, len(b.links))
	for _, l := range b.links {
		toSend, err := b.host.Store().ListKV(ctx, "pend:"+l.cfg.Name+":", 0)
		if err != nil {
			return nil, fmt.Errorf("case116117: the send queue of %s: %w", l.cfg.Name, err)
		}
		received, err := b.host.Store().ListKV(ctx, rxPrefix(l.cfg.Name), 0)
		if err != nil {
			return nil, fmt.Errorf("case116117: the receive queue of %s: %w", l.cfg.Name, err)
		}
		state, lastErr := l.status()
		out = append(out, linkSummary{name: l.cfg.Name, oid: l.cfg.OID, state: state, lastErr: lastErr,
			openCases: perLink[l.cfg.Name], toSend: len(toSend), received: len(received)})
	}
	return out, nil
}

// stateName is a case state in the management bot's language.
func stateName(s string) string {
	switch s {
	case stateReceived:
		return "received, waiting for acceptance"
	case stateHandedOver:
		return "handed over, waiting for an answer"
	case stateAccepted:
		return "accepted"
	}
	return s
}

// age is a duration as a person reads it: minutes, hours or days.
func age(d time.Duration) string {
	switch {
	case d < time.Minute:
		return "<1m"
	case d < time.Hour:
		return fmt.Sprintf("%dm", int(d.Minutes()))
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh%02dm", int(d.Hours()), int(d.Minutes())%60)
	}
	return fmt.Sprintf("%dd", int(d.Hours()/24))
}
