package e2eeclient

import (
	"context"
	"slices"

	"maunium.net/go/mautrix"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"
)

// defaultTimelineLimit is the /sync filter's timeline limit; beyond it a sync response's
// timeline is limited and fillGaps fetches the rest.
const defaultTimelineLimit = 1000

// maxGapPages bounds the /messages pages fillGaps reads for one gap.
const maxGapPages = 200

// fillGaps runs before a sync response's room events are dispatched: for every joined
// room whose timeline is limited (more events than the filter's limit since the last
// sync) and whose last event this client has seen, it fetches the events in between with
// /messages and puts them in front of the response's timeline, so no event is missed.
func (c *Client) fillGaps(ctx context.Context, res *mautrix.RespSync, _ string) bool {
	for roomID, room := range res.Rooms.Join {
		if !room.Timeline.Limited || room.Timeline.PrevBatch == "" {
			continue
		}
		c.mu.Lock()
		last, seen := c.lastSeen[roomID]
		c.mu.Unlock()
		if !seen {
			continue // history from before this client knew the room
		}
		missing, err := c.eventsSince(ctx, roomID, last, room.Timeline.PrevBatch, room.Timeline.Events)
		if err != nil {
			c.log.Warn().Err(err).Stringer("room_id", roomID).Msg("e2eeclient: could not fill a gap in the timeline; events are missing")
		}
		room.Timeline.Events = append(missing, room.Timeline.Events...)
		c.mu.Lock()
		c.filled += len(missing)
		c.mu.Unlock()
	}
	return true
}

// eventsSince pages backwards from from until the event last, returning the events after
// last in chronological order, without those already in have.
func (c *Client) eventsSince(ctx context.Context, roomID id.RoomID, last id.EventID, from string, have []*event.Event) ([]*event.Event, error) {
	var backwards []*event.Event
	for page := 0; page < maxGapPages && from != ""; page++ {
		resp, err := c.cli.Messages(ctx, roomID, from, "", mautrix.DirectionBackward, nil, 100)
		if err != nil {
			return reversed(backwards), err
		}
		for _, evt := range resp.Chunk {
			if evt.ID == last {
				return reversed(backwards), nil
			}
			if !slices.ContainsFunc(have, func(h *event.Event) bool { return h.ID == evt.ID }) {
				backwards = append(backwards, evt)
			}
		}
		if len(resp.Chunk) == 0 {
			break
		}
		from = resp.End
	}
	return reversed(backwards), nil
}

func reversed(evts []*event.Event) []*event.Event {
	slices.Reverse(evts)
	return evts
}
