package appservice

import (
	"context"
	"fmt"
	"regexp"
	"sort"
	"sync"

	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"

	"github.com/switchboard-matrix/switchboard/registration"
)

// router maps Matrix IDs to the module whose namespace holds them.
type router struct {
	users   []claim // immutable
	aliases []claim // immutable
	portals sync.Map
}

type claim struct {
	re     *regexp.Regexp
	module Module
}

func newRouter(domain string, namespaces map[string]registration.Namespaces, modules map[string]Module) (*router, error) {
	ids := make([]string, 0, len(namespaces))
	for mid := range namespaces {
		ids = append(ids, mid)
	}
	sort.Strings(ids)
	r := &router{}
	for _, mid := range ids {
		ns := namespaces[mid]
		for _, p := range ns.Users {
			re, err := regexp.Compile("^@(?:" + p.Localpart + "):" + regexp.QuoteMeta(domain) + "$")
			if err != nil {
				return nil, fmt.Errorf("module %s: invalid user namespace %q: %w", mid, p.Localpart, err)
			}
			r.users = append(r.users, claim{re, modules[mid]})
		}
		for _, p := range ns.Aliases {
			re, err := regexp.Compile("^#(?:" + p.Localpart + "):" + regexp.QuoteMeta(domain) + "$")
			if err != nil {
				return nil, fmt.Errorf("module %s: invalid alias namespace %q: %w", mid, p.Localpart, err)
			}
			r.aliases = append(r.aliases, claim{re, modules[mid]})
		}
	}
	return r, nil
}

func match(claims []claim, s string) Module {
	for _, c := range claims {
		if c.re.MatchString(s) {
			return c.module
		}
	}
	return nil
}

func (r *router) moduleForUser(userID id.UserID) Module   { return match(r.users, string(userID)) }
func (r *router) moduleForAlias(alias id.RoomAlias) Module { return match(r.aliases, string(alias)) }

// isOurs reports whether userID is the bot or a ghost of any module.
func (c *Core) isOurs(userID id.UserID) bool {
	return userID == c.as.BotMXID() || c.router.moduleForUser(userID) != nil
}

// route picks the modules an event goes to:
//   - ephemeral events go to every module that asked for them;
//   - events sent by our own users (echoes) go nowhere;
//   - events in a portal go to the module that owns the portal;
//   - membership events about the bot go to the bot module, about a ghost to the ghost's
//     module (this is how invites to a DM arrive).
func (c *Core) route(ctx context.Context, evt *event.Event, kind string) []Module {
	if kind == kindEphemeral {
		var out []Module
		for _, m := range c.order {
			if _, ok := m.(EphemeralHandler); ok {
				out = append(out, m)
			}
		}
		return out
	}
	if c.isOurs(evt.Sender) {
		return nil
	}
	if m := c.portalOwner(ctx, evt.RoomID); m != nil {
		return []Module{m}
	}
	if evt.Type == event.StateMember && evt.StateKey != nil {
		target := id.UserID(*evt.StateKey)
		if target == c.as.BotMXID() && c.opts.BotModule != "" {
			return []Module{c.modules[c.opts.BotModule]}
		}
		if m := c.router.moduleForUser(target); m != nil {
			return []Module{m}
		}
	}
	return nil
}

func (c *Core) portalOwner(ctx context.Context, roomID id.RoomID) Module {
	if v, ok := c.router.portals.Load(roomID); ok {
		return v.(Module)
	}
	mid, _, err := c.store.PortalByRoom(ctx, roomID.String())
	if err != nil {
		return nil
	}
	m := c.modules[mid]
	if m != nil {
		c.router.portals.Store(roomID, m)
	}
	return m
}
