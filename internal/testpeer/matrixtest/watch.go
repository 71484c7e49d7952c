package matrixtest

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"maunium.net/go/mautrix"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"
)

// WatchRoom follows cli's /sync, as a client does, and passes the events of room's
// timeline to add, oldest first and with their content parsed, until ctx ends. When a
// sync's timeline is limited, the gap before it is read from /messages (back to the last
// event passed before, or to the room's start) and passed first, so that no event is
// missed; a failed read of the gap is retried from the same sync. An event may be passed
// twice (in a gap and a timeline, or on both pages of a pagination boundary): add must
// count events by ID. add is called from WatchRoom's goroutine only.
//
// It is what a test uses to see every event of a room while the bridge under it crashes
// and restarts: Dendrite's /messages pagination can skip an event at a page boundary,
// /sync does not.
func WatchRoom(ctx context.Context, cli *mautrix.Client, room id.RoomID, add func([]*event.Event)) {
	rooms, _ := json.Marshal([]id.RoomID{room})
	filter := fmt.Sprintf(`{"room":{"rooms":%s,"timeline":{"limit":1000}},"presence":{"not_types":["*"]}}`, rooms)
	since := ""
	var last id.EventID // the newest event passed to add
	for ctx.Err() == nil {
		resp, err := cli.SyncRequest(ctx, 10000, since, filter, false, event.PresenceOnline)
		if err != nil {
			pause(ctx)
			continue
		}
		if r, ok := resp.Rooms.Join[room]; ok {
			tl := r.Timeline
			if tl.Limited && tl.PrevBatch != "" {
				gap, err := gapBefore(ctx, cli, room, tl.PrevBatch, last)
				if err != nil {
					pause(ctx)
					continue // the same sync again
				}
				if len(gap) > 0 {
					add(gap)
				}
			}
			parse(tl.Events)
			if len(tl.Events) > 0 {
				add(tl.Events)
				last = tl.Events[len(tl.Events)-1].ID
			}
		}
		since = resp.NextBatch
	}
}

// gapBefore returns the room's events before the pagination token from, back to the event
// stop (excluded) or the room's start, oldest first.
func gapBefore(ctx context.Context, cli *mautrix.Client, room id.RoomID, from string, stop id.EventID) ([]*event.Event, error) {
	var newestFirst []*event.Event
	for from != "" {
		resp, err := cli.Messages(ctx, room, from, "", mautrix.DirectionBackward, nil, 500)
		if err != nil {
			return nil, fmt.Errorf("failed to read the gap of a limited sync in %s: %w", room, err)
		}
		for _, e := range resp.Chunk {
			if stop != "" && e.ID == stop {
				return oldestFirst(newestFirst), nil
			}
			newestFirst = append(newestFirst, e)
		}
		if len(resp.Chunk) == 0 || resp.End == from {
			break
		}
		from = resp.End
	}
	return oldestFirst(newestFirst), nil
}

// oldestFirst reverses evts in place, parses their content and returns them.
func oldestFirst(evts []*event.Event) []*event.Event {
	for i, j := 0, len(evts)-1; i < j; i, j = i+1, j-1 {
		evts[i], evts[j] = evts[j], evts[i]
	}
	parse(evts)
	return evts
}

// parse parses the content of evts where it parses (an error leaves it raw).
func parse(evts []*event.Event) {
	for _, e := range evts {
		_ = e.Content.ParseRaw(e.Type)
	}
}

// pause waits a little before a retry, or until ctx ends.
func pause(ctx context.Context) {
	select {
	case <-ctx.Done():
	case <-time.After(200 * time.Millisecond):
	}
}
