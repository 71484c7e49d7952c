package e2eeclient

import (
	"context"
	"fmt"
	"slices"

	"maunium.net/go/mautrix"
	"maunium.net/go/mautrix/id"
)

// recordInvites notes the rooms cli's user is invited to, in order of arrival.
func (c *Client) recordInvites(_ context.Context, res *mautrix.RespSync, _ string) bool {
	if len(res.Rooms.Invite) == 0 {
		return true
	}
	rooms := make([]id.RoomID, 0, len(res.Rooms.Invite))
	for roomID := range res.Rooms.Invite {
		rooms = append(rooms, roomID)
	}
	slices.Sort(rooms)
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, roomID := range rooms {
		if !slices.Contains(c.invites, roomID) {
			c.invites = append(c.invites, roomID)
		}
	}
	close(c.changed)
	c.changed = make(chan struct{})
	return true
}

// AcceptInvite waits for an invite this method has not returned yet, joins the room and
// returns it.
func (c *Client) AcceptInvite(ctx context.Context) (id.RoomID, error) {
	for {
		c.mu.Lock()
		if c.invitesTaken < len(c.invites) {
			roomID := c.invites[c.invitesTaken]
			c.invitesTaken++
			c.mu.Unlock()
			if _, err := c.cli.JoinRoomByID(ctx, roomID); err != nil {
				return "", fmt.Errorf("e2eeclient: failed to join %s: %w", roomID, err)
			}
			return roomID, nil
		}
		changed := c.changed
		c.mu.Unlock()
		select {
		case <-changed:
		case <-c.syncDone:
			return "", fmt.Errorf("e2eeclient: the sync loop has ended: %w", c.syncErr)
		case <-ctx.Done():
			return "", fmt.Errorf("e2eeclient: waiting for an invite: %w", ctx.Err())
		}
	}
}
