package appservice

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"

	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"

	"github.com/switchboard-matrix/switchboard/internal/store"
	"github.com/switchboard-matrix/switchboard/registration"
)

// router maps Matrix IDs to the module whose namespace holds them (the same anchored
// expressions as the registration file), and caches which module owns a portal room.
type router struct {
	ids       *registration.Router // immutable
	modules   map[string]Module    // immutable
	portals   sync.Map             // room ID -> Module, or noPortal for a room no module owns
	portalGen atomic.Int64         // bumped by every portal change, so a lookup racing it is not cached
	unowned   atomic.Int64         // noPortal entries in portals, bounded by maxUnownedCached
}

// noPortal caches that no module owns a room, so that events in rooms no module owns are
// routed without asking the database each time. Every portal change deletes the room's
// entry (moduleStore), as for owned rooms.
type noPortal struct{}

// maxUnownedCached bounds the rooms remembered as owned by no module.
const maxUnownedCached = 100_000

func newRouter(domain string, namespaces map[string]registration.Namespaces, modules map[string]Module) (*router, error) {
	ids, err := registration.NewRouter(domain, namespaces)
	if err != nil {
		return nil, err
	}
	return &router{ids: ids, modules: modules}, nil
}

func (r *router) moduleForUser(userID id.UserID) Module {
	mid, _ := r.ids.ModuleForUser(userID)
	return r.modules[mid]
}

func (r *router) moduleForAlias(alias id.RoomAlias) Module {
	mid, _ := r.ids.ModuleForAlias(alias)
	return r.modules[mid]
}

// isOurs reports whether userID is the bot or a ghost of any module.
func (c *Core) isOurs(userID id.UserID) bool {
	return userID == c.as.BotMXID() || c.router.moduleForUser(userID) != nil
}

// route picks the modules an event goes to:
//   - ephemeral events go to every module that asked for them;
//   - events sent by our own users (echoes) go nowhere;
//   - a text message whose first word is a module's room command goes to that module, and
//     so do membership events about that module's users, in any room;
//   - events in a portal go to the module that owns the portal;
//   - membership events about the bot go to the bot module, about a ghost to the ghost's
//     module (this is how invites to a DM arrive).
//
// An error (the store could not be asked) is not "nowhere": the caller retries.
func (c *Core) route(ctx context.Context, evt *event.Event, kind string) ([]Module, error) {
	if kind == kindEphemeral {
		var out []Module
		for _, m := range c.order {
			if _, ok := m.(EphemeralHandler); ok {
				out = append(out, m)
			}
		}
		return out, nil
	}
	if c.isOurs(evt.Sender) {
		return nil, nil
	}
	if m := c.roomCommandModule(evt); m != nil {
		return []Module{m}, nil
	}
	if m, err := c.portalOwner(ctx, evt.RoomID); err != nil || m != nil {
		if err != nil {
			return nil, fmt.Errorf("failed to look up the portal of %s: %w", evt.RoomID, err)
		}
		return []Module{m}, nil
	}
	if evt.Type == event.StateMember && evt.StateKey != nil {
		target := id.UserID(*evt.StateKey)
		if target == c.as.BotMXID() && c.opts.BotModule != "" {
			return []Module{c.modules[c.opts.BotModule]}, nil
		}
		if m := c.router.moduleForUser(target); m != nil {
			return []Module{m}, nil
		}
	}
	return nil, nil
}

// portalOwner returns the module that owns the room as a portal, nil when none does.
func (c *Core) portalOwner(ctx context.Context, roomID id.RoomID) (Module, error) {
	if v, ok := c.router.portals.Load(roomID); ok {
		if m, owned := v.(Module); owned {
			return m, nil
		}
		return nil, nil
	}
	gen := c.router.portalGen.Load()
	mid, _, err := c.store.PortalByRoom(ctx, roomID.String())
	if errors.Is(err, store.ErrNotFound) {
		if c.router.unowned.Load() < maxUnownedCached {
			c.router.cache(roomID, noPortal{}, gen)
		}
		return nil, nil
	} else if err != nil {
		return nil, err
	}
	m := c.modules[mid]
	if m != nil {
		c.router.cache(roomID, m, gen)
	}
	return m, nil
}

// cache remembers v (a Module or noPortal) for roomID, looked up while the portal
// generation was gen, unless a portal changed since: checked before and after storing, as
// a change may delete the entry between the check and the store.
func (r *router) cache(roomID id.RoomID, v any, gen int64) {
	if r.portalGen.Load() != gen {
		return
	}
	if _, loaded := r.portals.LoadOrStore(roomID, v); loaded {
		return
	}
	if _, none := v.(noPortal); none {
		r.unowned.Add(1)
	}
	if r.portalGen.Load() != gen {
		r.forget(roomID)
	}
}

// forget drops what is cached for roomID (a portal of it changed).
func (r *router) forget(roomID id.RoomID) {
	if v, ok := r.portals.LoadAndDelete(roomID); ok {
		if _, none := v.(noPortal); none {
			r.unowned.Add(-1)
		}
	}
}

// roomCommandModule returns the module whose room command starts evt's text, nil when none.
func (c *Core) roomCommandModule(evt *event.Event) Module {
	if len(c.roomCommands) == 0 {
		return nil
	}
	if evt.Type == event.StateMember && evt.StateKey != nil {
		// A room command module's own users (its bot) are invited to rooms of any kind.
		m := c.router.moduleForUser(id.UserID(*evt.StateKey))
		if _, ok := m.(RoomCommandHandler); ok {
			return m
		}
		return nil
	}
	if evt.Type != event.EventMessage {
		return nil
	}
	msg, ok := evt.Content.Parsed.(*event.MessageEventContent)
	if !ok || msg == nil || msg.MsgType != event.MsgText || msg.RelatesTo.GetReplaceID() != "" {
		return nil
	}
	first, _, _ := strings.Cut(strings.TrimLeft(msg.Body, " \t\n"), " ")
	first, _, _ = strings.Cut(first, "\n")
	return c.roomCommands[first]
}
