package xmpp

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/rs/zerolog"
	"maunium.net/go/mautrix"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"
	"mellium.im/xmpp/jid"

	"github.com/switchboard-matrix/switchboard/appservice"
	"github.com/switchboard-matrix/switchboard/bridges/xmpp/disco"
	"github.com/switchboard-matrix/switchboard/bridges/xmpp/iq"
	"github.com/switchboard-matrix/switchboard/bridges/xmpp/xmsg"
)

// puppetResource is the resource of the puppets' full JIDs in group chats.
const puppetResource = "switchboard"

// joinTimeout bounds the wait for a MUC to confirm a puppet's join.
const joinTimeout = 20 * time.Second

// mucState is the in-memory view of the MUCs the puppets are in.
type mucState struct {
	mu        sync.Mutex
	occupants map[string]id.UserID     // occupant JID of a puppet → its Matrix user
	puppets   map[string]jid.JID       // chat|user → the puppet's occupant JID (joined)
	waiters   map[string]chan error    // occupant JID → the pending join
	joining   map[string]chan struct{} // chat|user → closed when a join attempt ends
	realJID   map[string]jid.JID       // occupant JID of an XMPP user → real bare JID
	inRoom    map[string]string        // room|ghost → the nick set in the room
	history   map[string]bool          // chat → history was asked for since the connect
	unlinked  map[string]bool          // bare room JID → unlinked since the start (see wasUnlinked)
}

func (s *mucState) init() {
	s.occupants, s.puppets, s.waiters = map[string]id.UserID{}, map[string]jid.JID{}, map[string]chan error{}
	s.joining = map[string]chan struct{}{}
	s.realJID, s.inRoom, s.history = map[string]jid.JID{}, map[string]string{}, map[string]bool{}
	s.unlinked = map[string]bool{}
}

// isMUCPortal reports whether room is a MUC linked to a Matrix room.
func (b *Bridge) isMUCPortal(ctx context.Context, room jid.JID) bool {
	_, err := b.host.Store().PortalByKey(ctx, mucChat(room))
	return err == nil
}

// isMUCDomain reports whether from is an occupant of a bridged MUC.
func (b *Bridge) isMUCDomain(ctx context.Context, from jid.JID) bool {
	return from.Resourcepart() != "" && b.isMUCPortal(ctx, from.Bare())
}

// QueryAlias implements appservice.QueryHandler: #<prefix><room JID> links that MUC to a
// new public Matrix room, created by the bot.
func (b *Bridge) QueryAlias(ctx context.Context, alias id.RoomAlias) (bool, error) {
	room, err := b.mapper.JIDForAlias(alias)
	if err != nil {
		return false, nil
	}
	ok, err := b.createMUCPortal(ctx, room, alias)
	if err != nil {
		zerolog.Ctx(ctx).Warn().Err(err).Str("room", room.String()).Msg("Could not create a MUC portal")
	}
	return ok, err
}

// mucInfo asks the room for its disco#info; it fails when the room does not exist or is
// not a MUC.
func (b *Bridge) mucInfo(ctx context.Context, room jid.JID) (*disco.Info, error) {
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	res, err := b.query(ctx, "get", room, disco.InfoQuery(""))
	if err != nil {
		return nil, err
	}
	info, err := disco.ParseInfo(res.Inner)
	if err != nil {
		return nil, err
	}
	for _, i := range info.Identities {
		if i.Category == "conference" {
			return info, nil
		}
	}
	return nil, fmt.Errorf("xmpp: %s is not a group chat", room)
}

func (b *Bridge) createMUCPortal(ctx context.Context, room jid.JID, alias id.RoomAlias) (bool, error) {
	info, err := b.mucInfo(ctx, room)
	if err != nil {
		return false, nil // no such room: the alias does not exist
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	chat := mucChat(room)
	if _, err := b.host.Store().PortalByKey(ctx, chat); err == nil {
		return true, nil
	}
	name := room.String()
	for _, i := range info.Identities {
		if i.Category == "conference" && i.Name != "" {
			name = i.Name
		}
	}
	localpart := strings.TrimPrefix(alias.String(), "#")
	localpart = localpart[:strings.LastIndexByte(localpart, ':')]
	roomID, err := b.host.Bot().CreateRoom(ctx, &mautrix.ReqCreateRoom{
		Preset: "public_chat", RoomAliasName: localpart, Name: name,
		Topic: "XMPP group chat " + room.String(),
		// Members may change the topic: the MUC decides whether they may change its
		// subject, and a refusal comes back as a failure notice. The override names no
		// users: the bot is the creator and has full power by default. Synapse makes
		// room version 12 rooms, where the creator's power is implied and listing it is
		// refused (400 "Creator user ... must not appear in content.users"); Dendrite
		// (v0.13.8) makes version 10 rooms and keeps its default of 100 for the creator.
		PowerLevelOverride: &event.PowerLevelsEventContent{
			Events: map[string]int{event.StateTopic.Type: 0},
		},
	})
	if err != nil {
		return false, fmt.Errorf("xmpp: create the portal of %s: %w", room, err)
	}
	if err := b.linkMUC(ctx, chat, roomID); err != nil {
		return false, err
	}
	b.setBridgeInfo(ctx, b.host.Bot(), roomID, room, true)
	zerolog.Ctx(ctx).Info().Stringer("room_id", roomID).Str("muc", room.String()).Msg("Linked a MUC to a new Matrix room")
	return true, nil
}

// linkMUC records the portal and adds it to the list rejoined after a reconnect.
func (b *Bridge) linkMUC(ctx context.Context, chat string, roomID id.RoomID) error {
	if err := b.host.Store().PutPortal(ctx, chat, roomID); err != nil {
		return err
	}
	return b.updateJSON(ctx, "mucs", func(v map[string]string) { v[chat] = roomID.String() })
}

// linkExisting links a Matrix room that exists already (the management bot's room, where
// the link command was given) to a MUC, and has its members join the MUC as puppets.
func (b *Bridge) linkExisting(ctx context.Context, chat string, room jid.JID, roomID id.RoomID) error {
	if err := b.host.Store().ClaimPortal(ctx, chat, roomID); err != nil {
		return err
	}
	if err := b.updateJSON(ctx, "mucs", func(v map[string]string) { v[chat] = roomID.String() }); err != nil {
		return err
	}
	b.setBridgeInfo(ctx, b.host.Bot(), roomID, room, true) // needs the bot to have the power
	members, err := b.host.Bot().JoinedMembers(ctx, roomID)
	if err != nil {
		return err
	}
	err = b.updateJSON(ctx, "members:"+chat, func(v map[string]string) {
		for user, name := range members {
			if user == b.host.BotUserID() || b.isGhost(user.String()) {
				continue
			}
			if name == "" {
				name = user.Localpart()
			}
			v[user.String()] = name
		}
	})
	if err != nil {
		return err
	}
	b.loops.Go(func(run context.Context) {
		ctx := zerolog.Ctx(ctx).WithContext(run)
		for user := range members {
			if user == b.host.BotUserID() || b.isGhost(user.String()) {
				continue
			}
			if _, err := b.ensureJoined(ctx, chat, room, user); err != nil {
				zerolog.Ctx(ctx).Warn().Err(err).Msg("A member of a linked room could not join the MUC")
			}
		}
	})
	return nil
}

// updateJSON changes a JSON map kept in the store.
func (b *Bridge) updateJSON(ctx context.Context, key string, f func(map[string]string)) error {
	v, err := b.loadJSON(ctx, key)
	if err != nil {
		return err
	}
	f(v)
	raw, _ := json.Marshal(v)
	return b.host.Store().PutKV(ctx, key, string(raw))
}

func (b *Bridge) loadJSON(ctx context.Context, key string) (map[string]string, error) {
	v := map[string]string{}
	raw, err := b.host.Store().GetKV(ctx, key)
	if errors.Is(err, appservice.ErrNotFound) || raw == "" {
		return v, nil
	} else if err != nil {
		return nil, err
	}
	return v, json.Unmarshal([]byte(raw), &v)
}

// ensureJoined makes sure that user's puppet is an occupant of room and returns its
// occupant JID; a nick taken by someone else is retried with a suffix.
func (b *Bridge) ensureJoined(ctx context.Context, chat string, room jid.JID, user id.UserID) (jid.JID, error) {
	key := chat + "|" + user.String()
	for {
		b.muc.mu.Lock()
		occ, ok := b.muc.puppets[key]
		busy, joining := b.muc.joining[key]
		if !ok && !joining {
			done := make(chan struct{})
			b.muc.joining[key] = done
			defer func() {
				b.muc.mu.Lock()
				delete(b.muc.joining, key)
				b.muc.mu.Unlock()
				close(done)
			}()
		}
		b.muc.mu.Unlock()
		if ok {
			return occ, nil
		}
		if !joining {
			break
		}
		select { // another caller is joining this puppet: wait for its outcome
		case <-busy:
		case <-ctx.Done():
			return jid.JID{}, ctx.Err()
		}
	}
	return b.join(ctx, chat, room, user)
}

// join joins user's puppet to room under their nick, or a variant when it is taken.
func (b *Bridge) join(ctx context.Context, chat string, room jid.JID, user id.UserID) (jid.JID, error) {
	members, err := b.loadJSON(ctx, "members:"+chat)
	if err != nil {
		return jid.JID{}, err
	}
	nick := members[user.String()]
	if nick == "" {
		nick = user.Localpart()
	}
	var last error
	for attempt, n := range []string{nick, nick + " (Matrix)", user.String()} {
		occ, err := b.joinAs(ctx, chat, room, user, n)
		if err == nil {
			return occ, nil
		}
		last = err
		var se *xmsg.StanzaError
		if !errors.As(err, &se) || se.Condition != "conflict" {
			break
		}
		zerolog.Ctx(ctx).Debug().Int("attempt", attempt).Msg("Nick taken in the MUC; trying another")
	}
	var se *xmsg.StanzaError
	if errors.As(last, &se) && se.Type != "wait" {
		return jid.JID{}, appservice.RoomError{Msg: fmt.Sprintf("the group chat %s did not let you in (%s)", room, se.Condition), Permanent: true}
	}
	return jid.JID{}, last
}

// joinAs sends the puppet's join presence and waits for the room's self-presence.
func (b *Bridge) joinAs(ctx context.Context, chat string, room jid.JID, user id.UserID, nick string) (jid.JID, error) {
	occ, err := room.WithResource(nick)
	if err != nil {
		return jid.JID{}, appservice.RoomError{Msg: fmt.Sprintf("the nick %q is not valid in XMPP", nick), Permanent: true}
	}
	puppet, err := b.mapper.PuppetJID(user)
	if err != nil {
		return jid.JID{}, err
	}
	full, _ := puppet.WithResource(puppetResource)
	join := b.historyRequest(ctx, chat)
	b.muc.mu.Lock()
	wait := make(chan error, 1)
	b.muc.waiters[occ.String()] = wait
	b.muc.occupants[occ.String()] = user
	b.muc.mu.Unlock()
	defer func() {
		b.muc.mu.Lock()
		delete(b.muc.waiters, occ.String())
		b.muc.mu.Unlock()
	}()
	raw, err := (&xmsg.Presence{From: full, To: occ, MUC: join}).Marshal()
	if err != nil {
		return jid.JID{}, err
	}
	if err := b.send(ctx, withCaps(raw)); err != nil {
		return jid.JID{}, err
	}
	t := time.NewTimer(joinTimeout)
	defer t.Stop()
	select {
	case err := <-wait:
		if err != nil {
			b.muc.mu.Lock()
			delete(b.muc.occupants, occ.String())
			b.muc.mu.Unlock()
			return jid.JID{}, err
		}
	case <-t.C:
		return jid.JID{}, fmt.Errorf("xmpp: %s did not confirm the join within %s", room, joinTimeout)
	case <-ctx.Done():
		return jid.JID{}, ctx.Err()
	}
	b.muc.mu.Lock()
	b.muc.puppets[chat+"|"+user.String()] = occ
	b.muc.mu.Unlock()
	return occ, nil
}

// maxCatchUp bounds the history asked for after a reconnect.
const maxCatchUp = 1000

// historyRequest is the history part of a puppet's join: none, except for the first
// puppet to join the room since the component connected, which asks for what the bridge
// has missed: everything since the last bridged message (up to maxCatchUp), or the last
// muc_history messages for a new portal. What was bridged already is recognised by its
// message key and skipped.
func (b *Bridge) historyRequest(ctx context.Context, chat string) *xmsg.MUCJoin {
	zero := 0
	b.muc.mu.Lock()
	first := !b.muc.history[chat]
	b.muc.history[chat] = true
	b.muc.mu.Unlock()
	if !first {
		return &xmsg.MUCJoin{MaxStanzas: &zero}
	}
	if raw, err := b.host.Store().GetKV(ctx, "muc-last:"+chat); err == nil {
		if last, err := time.Parse(time.RFC3339Nano, raw); err == nil {
			n := maxCatchUp
			return &xmsg.MUCJoin{MaxStanzas: &n, Since: last.Add(-time.Second)}
		}
	}
	n := *b.cfg.MUCHistory
	return &xmsg.MUCJoin{MaxStanzas: &n}
}

// leaveMUC sends the puppet's unavailable presence.
func (b *Bridge) leaveMUC(ctx context.Context, chat string, user id.UserID) error {
	b.muc.mu.Lock()
	occ, ok := b.muc.puppets[chat+"|"+user.String()]
	delete(b.muc.puppets, chat+"|"+user.String())
	b.muc.mu.Unlock()
	if !ok {
		return nil
	}
	puppet, err := b.mapper.PuppetJID(user)
	if err != nil {
		return nil
	}
	full, _ := puppet.WithResource(puppetResource)
	raw, err := (&xmsg.Presence{From: full, To: occ, Type: "unavailable"}).Marshal()
	if err != nil {
		return err
	}
	return b.send(ctx, raw)
}

// memberToXMPP mirrors a Matrix membership change in a MUC portal: members join the MUC
// as puppets with their display name as nick and leave with them; kicks and bans of
// ghosts by a Matrix moderator become MUC kicks and bans.
func (b *Bridge) memberToXMPP(ctx context.Context, chat string, evt *event.Event) error {
	if evt.StateKey == nil {
		return nil
	}
	if owner, _, ok := parseDMChat(chat); ok {
		return b.dmMemberChange(ctx, chat, owner, evt)
	}
	room, err := jid.Parse(strings.TrimPrefix(chat, "muc:"))
	if err != nil {
		return err
	}
	target := id.UserID(*evt.StateKey)
	mem := evt.Content.AsMember()
	if strings.HasPrefix(target.Localpart(), b.cfg.Prefix) {
		if evt.Sender != target && (mem.Membership == event.MembershipLeave || mem.Membership == event.MembershipBan) {
			return b.moderateGhost(ctx, chat, room, evt.Sender, target, mem)
		}
		return nil
	}
	if target == b.host.BotUserID() {
		return nil
	}
	switch mem.Membership {
	case event.MembershipJoin:
		nick := mem.Displayname
		if nick == "" {
			nick = target.Localpart()
		}
		members, err := b.loadJSON(ctx, "members:"+chat)
		if err != nil {
			return err
		}
		old, known := members[target.String()]
		if err := b.updateJSON(ctx, "members:"+chat, func(v map[string]string) { v[target.String()] = nick }); err != nil {
			return err
		}
		if known && old != nick {
			return b.changeNick(ctx, chat, room, target, nick)
		}
		_, err = b.ensureJoined(ctx, chat, room, target)
		return err
	case event.MembershipLeave, event.MembershipBan:
		if err := b.updateJSON(ctx, "members:"+chat, func(v map[string]string) { delete(v, target.String()) }); err != nil {
			return err
		}
		return b.leaveMUC(ctx, chat, target)
	}
	return nil
}

// moderateGhost kicks (role none) or bans (affiliation outcast) the occupant behind a ghost
// with the Matrix moderator's puppet, which must be a MUC moderator or admin.
func (b *Bridge) moderateGhost(ctx context.Context, chat string, room jid.JID, mod, ghost id.UserID, mem *event.MemberEventContent) error {
	roomID, err := b.host.Store().PortalByKey(ctx, chat)
	if err != nil {
		return err
	}
	b.muc.mu.Lock()
	nick := b.muc.inRoom[roomID.String()+"|"+ghost.String()]
	b.muc.mu.Unlock()
	if nick == "" {
		return nil // not an occupant now
	}
	item := `<item nick="` + xmsg.EscapeAttr(nick) + `" role="none"><reason>` + xmsg.EscapeAttr(mem.Reason) + `</reason></item>`
	if mem.Membership == event.MembershipBan {
		real, err := b.mapper.JIDForGhost(ghost)
		if err != nil {
			return appservice.RoomError{Msg: "this occupant's address is hidden by the room, so it cannot be banned", Permanent: true}
		}
		item = `<item jid="` + xmsg.EscapeAttr(real.String()) + `" affiliation="outcast"><reason>` + xmsg.EscapeAttr(mem.Reason) + `</reason></item>`
	}
	if _, err := b.ensureJoined(ctx, chat, room, mod); err != nil {
		return err
	}
	puppet, err := b.mapper.PuppetJID(mod)
	if err != nil {
		return err
	}
	full, _ := puppet.WithResource(puppetResource)
	payload := []byte(`<query xmlns="http://jabber.org/protocol/muc#admin">` + item + `</query>`)
	qid := b.iqs.NewID()
	p := b.iqs.Expect(qid, room)
	defer p.Cancel()
	if err := b.send(ctx, iq.Build("set", qid, full, room, payload)); err != nil {
		return err
	}
	if _, err := p.Wait(ctx); err != nil {
		return appservice.RoomError{Msg: "the XMPP room refused the kick or ban: " + err.Error(), Permanent: true}
	}
	return nil
}

// topicToXMPP sets the MUC's subject from a Matrix topic change.
func (b *Bridge) topicToXMPP(ctx context.Context, chat string, evt *event.Event) error {
	if _, _, ok := parseDMChat(chat); ok {
		return nil
	}
	oc, err := b.outChat(ctx, chat, evt.Sender)
	if err != nil || oc == nil {
		return err
	}
	topic := evt.Content.AsTopic().Topic
	sid := stanzaIDFor(evt.ID, "")
	// Mapped so that a refusal by the room (a bounce with this id) reaches the sender.
	if err := b.host.Store().PutMessage(ctx, ownKey(chat, sid), evt.RoomID, evt.ID); err != nil {
		return err
	}
	raw, err := (&xmsg.Message{ID: sid, Type: "groupchat", From: oc.from, To: oc.to, Subject: &topic}).Marshal()
	if err != nil {
		return err
	}
	return b.send(ctx, raw)
}

// rejoinMUCs rejoins every puppet after each (re)connect: a component's occupants do not
// survive the stream. Missed messages come back as the rooms' history, which the message
// keys deduplicate.
func (b *Bridge) rejoinMUCs(ctx context.Context) {
	was := false
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		now := b.conn.Connected()
		if now && !was {
			b.muc.mu.Lock()
			b.muc.puppets, b.muc.history = map[string]jid.JID{}, map[string]bool{}
			b.muc.mu.Unlock()
			b.rejoinAll(ctx)
		}
		was = now
	}
}

func (b *Bridge) rejoinAll(ctx context.Context) {
	log := zerolog.Ctx(ctx)
	mucs, err := b.loadJSON(ctx, "mucs")
	if err != nil {
		log.Error().Err(err).Msg("Could not list the MUC portals to rejoin")
		return
	}
	for chat := range mucs {
		room, err := jid.Parse(strings.TrimPrefix(chat, "muc:"))
		if err != nil {
			continue
		}
		members, err := b.loadJSON(ctx, "members:"+chat)
		if err != nil {
			continue
		}
		for user := range members {
			if _, err := b.ensureJoined(ctx, chat, room, id.UserID(user)); err != nil {
				log.Warn().Err(err).Str("muc", room.String()).Msg("Could not rejoin a puppet")
			}
		}
	}
}
