package appservice

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/rs/zerolog"
	"maunium.net/go/mautrix"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"
)

// Access control: each module has a list of the Matrix users who may use it (default: every
// user of the homeserver's domain). The core checks it before an event reaches the module:
//
//   - an event in the module's rooms from anyone else is not passed on; for a message (or a
//     join) the sender gets a notice, at most one per room and user every refusalWindow and
//     refusalsPerUser per user across rooms, so a stranger cannot make the bot spam;
//   - an invite of one of the module's users (or of the bot) by anyone else is declined,
//     with the reason in the leave event;
//   - a management command for the module from anyone else is refused.
//
// The only events from others that still reach the module are kicks and bans of its own
// users, which stop bridging rather than start it. Traffic from the remote network into
// Matrix is not affected: the module decides what it posts.

// ErrNotPermitted is returned by Host.RunCommand when the sender may not use the module.
var ErrNotPermitted = errors.New("appservice: not permitted to use this module")

// UserPatterns is a list of Matrix users: user IDs ("@alice:example.org"), "*:<domain>" for
// every user of a server, and "*" for everyone. The zero value admits nobody.
type UserPatterns struct {
	all     bool
	domains map[string]bool
	users   map[id.UserID]bool
}

// ParseUserPatterns checks and compiles a list of user patterns.
func ParseUserPatterns(list []string) (UserPatterns, error) {
	p := UserPatterns{domains: map[string]bool{}, users: map[id.UserID]bool{}}
	var errs []error
	for _, s := range list {
		switch domain, isDomain := strings.CutPrefix(s, "*:"); {
		case s == "*":
			p.all = true
		case isDomain:
			if !id.ValidateServerName(domain) {
				errs = append(errs, fmt.Errorf("%q: \"*:\" must be followed by a server name", s))
				continue
			}
			p.domains[domain] = true
		case strings.HasPrefix(s, "@"):
			if local, _, err := id.UserID(s).ParseAndValidateRelaxed(); err != nil || local == "" {
				errs = append(errs, fmt.Errorf("%q is not a valid user ID", s))
				continue
			}
			p.users[id.UserID(s)] = true
		default:
			errs = append(errs, fmt.Errorf("%q is neither a user ID, \"*:domain\" nor \"*\"", s))
		}
	}
	return p, errors.Join(errs...)
}

// Match reports whether the list admits user.
func (p UserPatterns) Match(user id.UserID) bool {
	_, server, err := user.Parse()
	if err != nil {
		return false
	}
	return p.all || p.users[user] || p.domains[server]
}

// permits reports whether user may use the module with ID mid. Our own users always may.
func (c *Core) permits(mid string, user id.UserID) bool {
	if c.isOurs(user) {
		return true
	}
	p, ok := c.access[mid]
	if !ok {
		return false
	}
	return p.Match(user)
}

// access builds the permission lists of opts: a module without one gets the default.
func buildAccess(opts Options, modules []Module) (map[string]UserPatterns, error) {
	out := map[string]UserPatterns{}
	var errs []error
	for _, m := range modules {
		list, ok := opts.Permissions[m.ID()]
		if !ok || len(list) == 0 {
			list = []string{"*:" + opts.Domain}
		}
		p, err := ParseUserPatterns(list)
		if err != nil {
			errs = append(errs, fmt.Errorf("permissions of %s: %w", m.ID(), err))
		}
		out[m.ID()] = p
	}
	return out, errors.Join(errs...)
}

// Refusal notices are rate-limited: one per room and user per refusalWindow, and at most
// refusalsPerUser per user in that window across rooms.
const (
	refusalWindow   = 10 * time.Minute
	refusalsPerUser = 3
	refusalMaxKeys  = 10000
)

// refusals remembers the notices sent recently.
type refusals struct {
	mu     sync.Mutex
	byRoom map[string]time.Time      // room|user -> last notice
	byUser map[id.UserID][]time.Time // notices in the window
	now    func() time.Time
}

func newRefusals() *refusals {
	return &refusals{byRoom: map[string]time.Time{}, byUser: map[id.UserID][]time.Time{}, now: time.Now}
}

// allow reports whether a notice to user in room may be sent now, and counts it if so.
func (r *refusals) allow(room id.RoomID, user id.UserID) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	now := r.now()
	if len(r.byRoom) > refusalMaxKeys || len(r.byUser) > refusalMaxKeys {
		r.prune(now)
	}
	key := room.String() + "|" + user.String()
	if last, ok := r.byRoom[key]; ok && now.Sub(last) < refusalWindow {
		return false
	}
	recent := r.byUser[user][:0]
	for _, t := range r.byUser[user] {
		if now.Sub(t) < refusalWindow {
			recent = append(recent, t)
		}
	}
	if len(recent) >= refusalsPerUser {
		r.byUser[user] = recent
		return false
	}
	r.byRoom[key] = now
	r.byUser[user] = append(recent, now)
	return true
}

func (r *refusals) prune(now time.Time) {
	for k, t := range r.byRoom {
		if now.Sub(t) >= refusalWindow {
			delete(r.byRoom, k)
		}
	}
	for u, ts := range r.byUser {
		if len(ts) == 0 || now.Sub(ts[len(ts)-1]) >= refusalWindow {
			delete(r.byUser, u)
		}
	}
}

// admitted returns the targets that evt's sender may use; for the others it refuses the
// event (a notice or a declined invite, when refuse is set) and counts it.
func (c *Core) admitted(ctx context.Context, targets []Module, evt *event.Event, kind string, refuse bool) []Module {
	if kind == kindEphemeral {
		return targets // filtered per module by filterEphemeral
	}
	var out []Module
	for _, m := range targets {
		if c.permits(m.ID(), evt.Sender) || stopsBridging(c, evt) {
			out = append(out, m)
			continue
		}
		if refuse {
			c.metrics.handled.WithLabelValues(m.ID(), "refused").Inc()
			c.refuse(ctx, m, evt)
		}
	}
	return out
}

// stopsBridging reports whether evt is a kick or ban of one of our users: it reaches the
// module whoever sent it.
func stopsBridging(c *Core, evt *event.Event) bool {
	if evt.Type != event.StateMember || evt.StateKey == nil || !c.isOurs(id.UserID(*evt.StateKey)) {
		return false
	}
	switch evt.Content.AsMember().Membership {
	case event.MembershipLeave, event.MembershipBan:
		return true
	}
	return false
}

// refuse tells evt's sender that module m is not theirs to use: an invite of our user is
// declined with the reason, a message or a join gets a (rate-limited) notice, anything
// else is dropped silently.
func (c *Core) refuse(ctx context.Context, m Module, evt *event.Event) {
	log := zerolog.Ctx(ctx).With().Str("module", m.ID()).Stringer("sender", evt.Sender).Logger()
	name := m.ID()
	reason := fmt.Sprintf("%s is not permitted to use the %s bridge of %s; ask its administrators.", evt.Sender, name, c.opts.Domain)
	if evt.Type == event.StateMember && evt.StateKey != nil {
		target := id.UserID(*evt.StateKey)
		switch evt.Content.AsMember().Membership {
		case event.MembershipInvite:
			if !c.isOurs(target) {
				return
			}
			log.Info().Stringer("invitee", target).Msg("Declining an invite from a user without permission")
			c.declineInvite(ctx, log, target, evt, reason)
			return
		case event.MembershipJoin:
		default:
			return
		}
	} else if evt.StateKey != nil {
		return
	}
	log.Info().Msg("Refused an event from a user without permission")
	if !c.refusals.allow(evt.RoomID, evt.Sender) {
		return
	}
	notice := event.MessageEventContent{MsgType: event.MsgNotice, Body: "⛔ " + reason + " Nothing from " + evt.Sender.String() + " is bridged."}
	if evt.StateKey == nil && evt.ID != "" {
		notice.RelatesTo = &event.RelatesTo{InReplyTo: &event.InReplyTo{EventID: evt.ID}}
	}
	sender := c.failureSender(ctx, m, evt.RoomID)
	if sender == "" {
		sender = c.as.BotMXID()
	}
	msg := Message{RoomID: evt.RoomID, Sender: sender, RemoteID: "refused:" + evt.ID.String(), Content: &notice}
	if err := c.enqueue(context.WithoutCancel(ctx), coreModuleID, msg); err != nil {
		log.Error().Err(err).Msg("Failed to queue the refusal notice")
	}
}

// declineInvite has our user target decline evt's invite: not every homeserver shows the
// reason of a declined invite, so (rate-limited) it joins, says why and leaves again. The
// notice's transaction ID is the invite's event ID, so a redelivered invite does not
// repeat it.
func (c *Core) declineInvite(ctx context.Context, log zerolog.Logger, target id.UserID, evt *event.Event, reason string) {
	ctx = requestContext(ctx)
	intent := c.as.Intent(target)
	if err := ensureRegistered(ctx, intent); err != nil {
		log.Warn().Err(requestError(err)).Msg("Failed to decline the invite")
		return
	}
	if c.refusals.allow(evt.RoomID, evt.Sender) {
		notice := event.MessageEventContent{MsgType: event.MsgNotice, Body: "⛔ " + reason}
		if _, err := intent.JoinRoomByID(ctx, evt.RoomID); err != nil {
			log.Warn().Err(requestError(err)).Msg("Failed to join to explain the declined invite")
		} else if _, err := intent.SendMessageEvent(ctx, evt.RoomID, event.EventMessage, &notice,
			mautrix.ReqSendEvent{TransactionID: TxnIDFor(coreModuleID, "refused:"+evt.ID.String())}); err != nil {
			log.Warn().Err(requestError(err)).Msg("Failed to explain the declined invite")
		}
	}
	if _, err := intent.LeaveRoom(ctx, evt.RoomID, &mautrix.ReqLeave{Reason: reason}); err != nil {
		log.Warn().Err(requestError(err)).Msg("Failed to decline the invite")
	}
}

// filterEphemeral returns the copy of an ephemeral event that module m may see: typing and
// read receipts of users without permission removed, presence of such a user dropped (nil).
func (c *Core) filterEphemeral(m Module, evt *event.Event) *event.Event {
	ok := func(u id.UserID) bool { return c.permits(m.ID(), u) }
	switch evt.Type {
	case event.EphemeralEventTyping:
		in := evt.Content.AsTyping()
		out := &event.TypingEventContent{UserIDs: []id.UserID{}}
		for _, u := range in.UserIDs {
			if ok(u) {
				out.UserIDs = append(out.UserIDs, u)
			}
		}
		if len(out.UserIDs) == len(in.UserIDs) {
			return evt
		}
		cp := *evt
		cp.Content = event.Content{Parsed: out}
		return &cp
	case event.EphemeralEventReceipt:
		in := *evt.Content.AsReceipt()
		out := event.ReceiptEventContent{}
		changed := false
		for eid, byType := range in {
			for rt, byUser := range byType {
				for u, r := range byUser {
					if !ok(u) {
						changed = true
						continue
					}
					out.Set(eid, rt, u, r)
				}
			}
		}
		if !changed {
			return evt
		}
		if len(out) == 0 {
			return nil
		}
		cp := *evt
		cp.Content = event.Content{Parsed: &out}
		return &cp
	default:
		if evt.Sender != "" && !ok(evt.Sender) {
			return nil
		}
		return evt
	}
}
