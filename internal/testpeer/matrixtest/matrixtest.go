// Package matrixtest has helpers for end-to-end tests that act as real Matrix users against
// a test homeserver: polling for a condition, reading a room's messages as a client sees
// them, and checking membership.
package matrixtest

import (
	"context"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"maunium.net/go/mautrix"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"
)

// WaitFor polls cond every 100 ms until it holds or timeout passes, then fails the test
// with what and the last error.
func WaitFor(t testing.TB, timeout time.Duration, what string, cond func() (bool, error)) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	var lastErr error
	for time.Now().Before(deadline) {
		ok, err := cond()
		if ok {
			return
		}
		lastErr = err
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("timed out after %s waiting for %s (last error: %v)", timeout, what, lastErr)
}

// RoomEvents returns the room's events of the given types (all when none), oldest first,
// as the user sees them, with parsed content. Events are deduplicated by event ID, as
// clients do: Dendrite's pagination may return an event at a page boundary twice, which
// is not a second event.
func RoomEvents(ctx context.Context, cli *mautrix.Client, roomID id.RoomID, types ...event.Type) ([]*event.Event, error) {
	var out []*event.Event
	seen := map[id.EventID]bool{}
	from := ""
	for {
		resp, err := cli.Messages(ctx, roomID, from, "", mautrix.DirectionBackward, nil, 500)
		if err != nil {
			return nil, err
		}
		for _, e := range resp.Chunk {
			if seen[e.ID] || !wanted(e.Type, types) {
				continue
			}
			seen[e.ID] = true
			_ = e.Content.ParseRaw(e.Type)
			out = append(out, e)
		}
		if resp.End == "" || len(resp.Chunk) == 0 {
			break
		}
		from = resp.End
	}
	for i, j := 0, len(out)-1; i < j; i, j = i+1, j-1 {
		out[i], out[j] = out[j], out[i]
	}
	return out, nil
}

func wanted(t event.Type, types []event.Type) bool {
	if len(types) == 0 {
		return true
	}
	for _, w := range types {
		if w.Type == t.Type {
			return true
		}
	}
	return false
}

// RoomMessages returns every m.room.message in the room, oldest first (see RoomEvents).
func RoomMessages(ctx context.Context, cli *mautrix.Client, roomID id.RoomID) ([]*event.Event, error) {
	return RoomEvents(ctx, cli, roomID, event.EventMessage)
}

// IsJoined reports whether user is a joined member of the room.
func IsJoined(ctx context.Context, cli *mautrix.Client, roomID id.RoomID, user id.UserID) (bool, error) {
	resp, err := cli.JoinedMembers(ctx, roomID)
	if err != nil {
		return false, err
	}
	_, ok := resp.Joined[user]
	return ok, nil
}

// Bodies returns the trimmed bodies of the messages sent by sender (all when "").
func Bodies(evts []*event.Event, sender id.UserID) []string {
	var out []string
	for _, e := range evts {
		if sender == "" || e.Sender == sender {
			out = append(out, strings.TrimSpace(e.Content.AsMessage().Body))
		}
	}
	return out
}

// initialSyncs numbers the initial syncs of InitialSync.
var initialSyncs atomic.Int64

// InitialSync is a full initial /sync (no since token) that reflects the present. Synapse
// answers a repeated /sync from its response cache (sync_response_cache_duration, 2
// minutes by default), keyed by the request's parameters, so polling the same initial
// sync would show the past; Dendrite has no such cache. Each call uses a timeout no
// earlier call used: it is part of Synapse's key, and an initial sync returns at once on
// both homeservers, whatever its timeout.
func InitialSync(ctx context.Context, cli *mautrix.Client) (*mautrix.RespSync, error) {
	return cli.SyncRequest(ctx, int(initialSyncs.Add(1)), "", "", true, event.PresenceOnline)
}

// AcceptInvite waits up to 30 s for an invite of cli's user and joins the room. It starts
// with an initial sync of its own (InitialSync) and syncs on from the last batch, as a
// client does.
func AcceptInvite(t testing.TB, cli *mautrix.Client) id.RoomID {
	t.Helper()
	ctx := context.Background()
	var room id.RoomID
	since := ""
	WaitFor(t, 30*time.Second, "an invite", func() (bool, error) {
		var resp *mautrix.RespSync
		var err error
		if since == "" {
			resp, err = InitialSync(ctx, cli)
		} else {
			resp, err = cli.SyncRequest(ctx, 0, since, "", false, event.PresenceOnline)
		}
		if err != nil {
			return false, err
		}
		since = resp.NextBatch
		for r := range resp.Rooms.Invite {
			room = r
			return true, nil
		}
		return false, nil
	})
	if _, err := cli.JoinRoomByID(ctx, room); err != nil {
		t.Fatal(err)
	}
	return room
}

// WaitEvent waits up to 30 s for an event in the room that match accepts and returns it.
func WaitEvent(t testing.TB, cli *mautrix.Client, room id.RoomID, what string, match func(*event.Event) bool) *event.Event {
	t.Helper()
	var found *event.Event
	WaitFor(t, 30*time.Second, what, func() (bool, error) {
		evts, err := RoomEvents(context.Background(), cli, room)
		if err != nil {
			return false, err
		}
		for _, e := range evts {
			if match(e) {
				found = e
				return true, nil
			}
		}
		return false, nil
	})
	return found
}
