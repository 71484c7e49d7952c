package case116117

import (
	"context"
	"errors"
	"fmt"
	"time"

	"maunium.net/go/mautrix"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"

	"github.com/switchboard-matrix/switchboard/appservice"
)

// Orphaned case rooms: a run killed while the homeserver was creating a case room can
// leave a room behind that the next run does not use. The next run's creation of the same
// room won the alias (or the dead run's room never got it), so the left room carries the
// case's state, a name, invites to the dispatchers and perhaps a canonical alias that now
// names the other room. The link's bot is its only member. sweepOrphans finds such rooms
// among the bot's joined rooms and clears them: the alias claim removed, the invites
// revoked, the bot gone. A room that holds the case's alias is not touched (ensureRoom
// adopts it), nor one a person has joined (reported in the admin room instead).

// orphanRecheck is when the sweep runs again after a start: a creation the killed run
// had in flight may finish only after the first sweep.
const orphanRecheck = 2 * time.Minute

// sweepOrphansLoop sweeps at start and once more after orphanRecheck.
func (l *link) sweepOrphansLoop(ctx context.Context) {
	for _, wait := range []time.Duration{0, orphanRecheck} {
		if !sleep(ctx, wait) {
			return
		}
		if err := l.sweepOrphans(ctx); err != nil && ctx.Err() == nil {
			l.log(ctx).Warn().Err(err).Msg("Looking for orphaned case rooms failed")
		}
	}
}

// sweepOrphans clears the link's orphaned case rooms; see the comment at the top.
func (l *link) sweepOrphans(ctx context.Context) error {
	bot, err := l.bot()
	if err != nil {
		return err
	}
	rooms, err := bot.JoinedRooms(ctx)
	if err != nil {
		return err
	}
	var errs []error
	for _, room := range rooms {
		if err := l.sweepRoom(ctx, room); err != nil {
			if ctx.Err() != nil {
				return err
			}
			errs = append(errs, fmt.Errorf("room %s: %w", room, err)) // the others are still swept
		}
	}
	return errors.Join(errs...)
}

// sweepRoom clears room if it is an orphaned case room. It holds caseMu, under which every
// case room is created and recorded: a room in the making is never taken for an orphan.
func (l *link) sweepRoom(ctx context.Context, room id.RoomID) error {
	l.caseMu.Lock()
	defer l.caseMu.Unlock()
	bot, err := l.bot()
	if err != nil {
		return err
	}
	if _, err := l.b.host.Store().PortalByRoom(ctx, room); err == nil {
		return nil // a room in use
	} else if !errors.Is(err, appservice.ErrNotFound) {
		return err
	}
	var cs caseStateContent
	if err := bot.StateEvent(ctx, room, caseStateType, "", &cs); errors.Is(err, appservice.ErrNotFound) || err == nil && cs.CaseID == "" {
		return nil // not a case room (a work room, say)
	} else if err != nil {
		return err
	}
	holder, err := bot.ResolveAlias(ctx, id.NewRoomAlias(l.caseAlias(cs.CaseID), l.b.host.Domain()))
	switch {
	case err != nil && !errors.Is(err, mautrix.MNotFound):
		return err // undecided: the room may hold the alias
	case err == nil && holder == room:
		return nil // the case's room, not yet recorded: ensureRoom adopts it
	}
	if err := l.clearOrphan(ctx, room, cs.CaseID); err != nil {
		l.log(ctx).Warn().Err(err).Stringer("room_id", room).Str("case", cs.CaseID).Msg("Could not clear an orphaned case room")
	}
	return nil
}

// clearOrphan removes the alias claim and the invites of an orphaned case room and leaves
// it, if the bot is its only member.
func (l *link) clearOrphan(ctx context.Context, room id.RoomID, caseID string) error {
	bot, err := l.bot()
	if err != nil {
		return err
	}
	members, err := bot.JoinedMembers(ctx, room)
	if err != nil {
		return err
	}
	for u := range members {
		if u != l.botID() {
			l.notify(ctx, l.admin(), "orphan:"+string(room), fmt.Sprintf(
				"⚠️ Der Raum %s trägt den Fall %s, ist aber nicht dessen Fallraum (Rest einer abgebrochenen Raumerstellung) und hat Mitglieder; bitte prüfen und verlassen.", room, caseID), "")
			return nil
		}
	}
	if _, err := bot.SendState(ctx, room, event.StateCanonicalAlias, "", map[string]any{}); err != nil {
		l.log(ctx).Debug().Err(err).Stringer("room_id", room).Msg("Could not drop the canonical alias of an orphaned case room")
	}
	for _, u := range append(toUserIDs(l.cfg.Dispatchers), l.workers(ctx)...) {
		// Revokes a pending invite; a user never invited is an error to ignore.
		_ = bot.Kick(ctx, room, u, "Doppelter Fallraum aus einer abgebrochenen Raumerstellung")
	}
	if err := bot.LeaveRoom(ctx, room); err != nil {
		return err
	}
	l.log(ctx).Info().Stringer("room_id", room).Str("case", caseID).Msg("Cleared an orphaned case room")
	return nil
}
