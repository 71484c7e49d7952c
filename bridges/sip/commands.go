package sip

import (
	"context"
	"errors"
	"fmt"

	"github.com/switchboard-matrix/switchboard/appservice"
	"github.com/switchboard-matrix/switchboard/bridges/sip/sipuri"
)

// help is the answer to "sip help".
const help = "**sip**: SIP calls and messages\n\n" +
	"* `sip chat <sip:user@example.org>` — opens a direct chat with a SIP user\n" +
	"* `sip help` — this list"

// HandleCommand implements appservice.CommandHandler: "sip chat <sip:user@domain>" opens
// a DM with a SIP user (inviting the SIP user's ghost to a room does the same).
func (b *Bridge) HandleCommand(ctx context.Context, cmd appservice.Command) (string, error) {
	if len(cmd.Args) == 0 || cmd.Args[0] == "help" {
		return help, nil
	}
	switch cmd.Args[0] {
	case "chat":
		if len(cmd.Args) != 2 {
			return "Usage: sip chat <sip:user@example.org>", nil
		}
		peer, err := sipuri.ParseAOR(cmd.Args[1])
		if err != nil {
			return fmt.Sprintf("%q is not a SIP address (sip:user@example.org): %v", cmd.Args[1], err), nil
		}
		if peer.Host == b.cfg.Domain {
			return "That is a Matrix user's SIP address; write to them in Matrix.", nil
		}
		if !b.domains.Allows(peer.Host) {
			return fmt.Sprintf("The bridge may not reach the SIP domain %s.", peer.Host), nil
		}
		room, err := b.dmRoom(ctx, cmd.Sender, peer, true)
		if errors.Is(err, errNoSuchUser) {
			return "", fmt.Errorf("sip: %s is not a Matrix user: %w", cmd.Sender, err)
		} else if err != nil {
			return "", err
		}
		b.watch(ctx, peer)
		return fmt.Sprintf("Opened a chat with %s: you are invited to %s.", peer.URI(), room), nil
	}
	return "Unknown command; try: sip chat <sip:user@example.org>", nil
}
