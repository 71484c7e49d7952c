package case116117

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"maunium.net/go/mautrix"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"

	"github.com/switchboard-matrix/switchboard/appservice"
)

// Case roles: a case handed over to this ELS by another (incoming) or handed over from
// Matrix to another ELS (outgoing).
const (
	roleIncoming = "incoming"
	roleOutgoing = "outgoing"
)

// Case states. An incoming case is received, then accepted or rejected by a dispatcher
// here, then completed or aborted. An outgoing case is handed over, then accepted or
// rejected and completed or aborted by the other centre.
const (
	stateReceived   = "received"
	stateHandedOver = "handed_over"
	stateAccepted   = "accepted"
	stateRejected   = "rejected"
	stateCompleted  = "completed"
	stateAborted    = "aborted"
)

// stateLabel is how a state reads in the room.
var stateLabel = map[string]string{
	stateReceived:   "neu, wartet auf Annahme",
	stateHandedOver: "übergeben, wartet auf Antwort",
	stateAccepted:   "angenommen",
	stateRejected:   "abgelehnt",
	stateCompleted:  "abgeschlossen",
	stateAborted:    "abgebrochen",
}

// Event types of a case room. The state event holds no patient data (state is never
// encrypted); the full payload goes in a timeline event.
var (
	caseStateType = event.Type{Type: "net.switchboard.case116117.case", Class: event.StateEventType}
	payloadType   = event.Type{Type: "net.switchboard.case116117.payload", Class: event.MessageEventType}
)

// caseStateContent is the content of the case room's state event.
type caseStateContent struct {
	CaseID  string `json:"case_id"`
	State   string `json:"state"`
	Role    string `json:"role"`
	PeerOID string `json:"peer_oid"`
}

// caseRecord is a case as the store keeps it.
type caseRecord struct {
	ID       string    `json:"id"` // sharedIncidentId
	Role     string    `json:"role"`
	Peer     string    `json:"peer"` // the other centre's OID
	State    string    `json:"state"`
	Room     id.RoomID `json:"room"`
	Title    string    `json:"title"`
	Created  time.Time `json:"created"`
	Messages []string  `json:"messages,omitempty"` // messageIds of incidents applied
	History  []change  `json:"history"`
}

// change is one recorded state change: who, when, and the UCRI2 message that carried it.
type change struct {
	State     string    `json:"state"`
	By        string    `json:"by"` // a Matrix user ID or the other centre's OID
	At        time.Time `json:"at"`
	MessageID string    `json:"message_id,omitempty"`
	Note      string    `json:"note,omitempty"`
}

func (c *caseRecord) hasMessage(msgID string) bool {
	for _, m := range c.Messages {
		if m == msgID {
			return true
		}
	}
	for _, h := range c.History {
		if h.MessageID == msgID {
			return true
		}
	}
	return false
}

func (l *link) loadCase(ctx context.Context, caseID string) (*caseRecord, error) {
	raw, err := l.b.host.Store().GetKV(ctx, caseKey(l.cfg.Name, caseID))
	if err != nil {
		return nil, err
	}
	var c caseRecord
	if err := json.Unmarshal([]byte(raw), &c); err != nil {
		return nil, fmt.Errorf("case116117: case %s in the store: %w", caseID, err)
	}
	return &c, nil
}

func (l *link) saveCase(ctx context.Context, c *caseRecord) error {
	raw, err := json.Marshal(c)
	if err != nil {
		return err
	}
	return l.b.host.Store().PutKV(ctx, caseKey(l.cfg.Name, c.ID), string(raw))
}

// setState records a state change and updates the room's state event.
func (l *link) setState(ctx context.Context, c *caseRecord, ch change) error {
	c.State = ch.State
	c.History = append(c.History, ch)
	if err := l.saveCase(ctx, c); err != nil {
		return err
	}
	return l.putStateEvent(ctx, c)
}

func (l *link) putStateEvent(ctx context.Context, c *caseRecord) error {
	bot, err := l.bot()
	if err != nil {
		return err
	}
	_, err = bot.SendState(ctx, c.Room, caseStateType, "", caseStateContent{CaseID: c.ID, State: c.State, Role: c.Role, PeerOID: c.Peer})
	if err != nil {
		return fmt.Errorf("case116117: case %s: state event: %w", c.ID, err)
	}
	return nil
}

// ensureRoom returns the room of a portal, creating it with an alias in the module's
// namespace: the alias makes creation idempotent, so a crash between creating the room and
// storing the portal finds the same room again instead of making a second one.
func (l *link) ensureRoom(ctx context.Context, key portalKey, aliasLocal string, req *mautrix.ReqCreateRoom) (id.RoomID, error) {
	st := l.b.host.Store()
	if room, err := st.PortalByKey(ctx, key.String()); err == nil {
		return room, nil
	} else if !errors.Is(err, appservice.ErrNotFound) {
		return "", err
	}
	bot, err := l.bot()
	if err != nil {
		return "", err
	}
	req.RoomAliasName = aliasLocal
	req.Invite = l.knownUsers(ctx, bot, req.Invite, aliasLocal, req.Name)
	req = withEncryption(req, l.b.encryptRooms())
	room, err := bot.CreateRoom(ctx, req)
	var respErr mautrix.HTTPError
	if err != nil && !errors.Is(err, mautrix.MRoomInUse) && len(req.Invite) > 0 &&
		errors.As(err, &respErr) && respErr.Response != nil && respErr.Response.StatusCode/100 == 4 {
		// One bad user in the config (a typo, a deleted account) must not keep the room from
		// being made: create it without invites, then invite each user, reporting failures.
		invite := req.Invite
		req.Invite = nil
		if room, err = bot.CreateRoom(ctx, req); err == nil {
			for _, u := range invite {
				if ierr := bot.Invite(ctx, room, u); ierr != nil {
					l.log(ctx).Warn().Err(ierr).Stringer("user_id", u).Stringer("room_id", room).Msg("Could not invite a user")
					l.notify(ctx, l.admin(), "invite-failed:"+string(room)+":"+string(u),
						fmt.Sprintf("⚠️ %s konnte nicht in den Raum %s eingeladen werden (Konfiguration prüfen).", u, req.Name), "")
				}
			}
		}
	}
	if errors.Is(err, mautrix.MRoomInUse) {
		alias := id.NewRoomAlias(aliasLocal, l.b.host.Domain())
		room, err = bot.ResolveAlias(ctx, alias)
		if err == nil {
			err = l.repairRoom(ctx, room, req)
		}
	}
	if err != nil {
		return "", fmt.Errorf("case116117: room %s: %w", key, err)
	}
	if err := st.PutPortal(ctx, key.String(), room); err != nil {
		return "", err
	}
	return room, nil
}

// knownUsers returns the users of invite except those of our own server that the
// homeserver does not know, which are logged and reported in the admin room like a failed
// invite. Dendrite refuses a room whose invites name such a user (handled in ensureRoom);
// Synapse makes the room and "invites" them without a word, so a typo in the config would
// go unnoticed. Users of other servers, and users whose profile cannot be read (Synapse's
// limit_profile_requests_to_users_who_share_rooms), are invited as configured.
func (l *link) knownUsers(ctx context.Context, bot *appservice.Intent, invite []id.UserID, aliasLocal, roomName string) []id.UserID {
	out := make([]id.UserID, 0, len(invite))
	for _, u := range invite {
		if u.Homeserver() == l.b.host.Domain() {
			if _, _, err := bot.Profile(ctx, u); errors.Is(err, appservice.ErrNotFound) {
				l.log(ctx).Warn().Stringer("user_id", u).Str("alias", aliasLocal).Msg("Not inviting a user the homeserver does not know")
				l.notify(ctx, l.admin(), "invite-unknown:"+aliasLocal+":"+string(u),
					fmt.Sprintf("⚠️ %s konnte nicht in den Raum %s eingeladen werden (Konfiguration prüfen).", u, roomName), "")
				continue
			}
		}
		out = append(out, u)
	}
	return out
}

// repairRoom finishes a room that an earlier run began to create and crashed: the
// homeserver may have made the room and its alias but not yet sent the name, the state or
// the invites. Each step is idempotent.
func (l *link) repairRoom(ctx context.Context, room id.RoomID, req *mautrix.ReqCreateRoom) error {
	bot, err := l.bot()
	if err != nil {
		return err
	}
	if err := bot.EnsureJoined(ctx, room); err != nil {
		return err
	}
	if req.Name != "" {
		if _, err := bot.SendState(ctx, room, event.StateRoomName, "", &event.RoomNameEventContent{Name: req.Name}); err != nil {
			return err
		}
	}
	if req.Topic != "" {
		if _, err := bot.SendState(ctx, room, event.StateTopic, "", &event.TopicEventContent{Topic: req.Topic}); err != nil {
			return err
		}
	}
	for _, e := range req.InitialState {
		if _, err := bot.SendState(ctx, room, e.Type, *e.StateKey, &e.Content); err != nil {
			return err
		}
	}
	for _, u := range req.Invite {
		if err := bot.Invite(ctx, room, u); err != nil {
			l.log(ctx).Warn().Err(err).Stringer("user_id", u).Stringer("room_id", room).Msg("Could not invite a user")
		}
	}
	l.log(ctx).Info().Stringer("room_id", room).Msg("Finished a room whose creation a crash interrupted")
	return nil
}

// caseAlias is the alias localpart of a case room: the link and the case's UUID, nothing
// about the patient.
func (l *link) caseAlias(caseID string) string {
	return l.b.cfg.Prefix + l.cfg.Name + "_" + strings.ToLower(caseID)
}

// ensureCaseRoom creates the room of a new case with the link's dispatchers invited (and
// extra users, such as the dispatcher who handed it over).
func (l *link) ensureCaseRoom(ctx context.Context, c *caseRecord, topic string, extra ...id.UserID) (id.RoomID, error) {
	invite := make([]id.UserID, 0, len(l.cfg.Dispatchers)+len(extra))
	seen := map[id.UserID]bool{}
	for _, u := range append(append(toUserIDs(l.cfg.Dispatchers), l.workers(ctx)...), extra...) {
		if !seen[u] {
			seen[u] = true
			invite = append(invite, u)
		}
	}
	state := caseStateContent{CaseID: c.ID, State: c.State, Role: c.Role, PeerOID: c.Peer}
	room, err := l.ensureRoom(ctx, portalKey{link: l.cfg.Name, caseID: c.ID}, l.caseAlias(c.ID), &mautrix.ReqCreateRoom{
		Preset: "private_chat",
		Name:   c.Title,
		Topic:  topic,
		Invite: invite,
		InitialState: []*event.Event{{
			Type: caseStateType, StateKey: ptr(""), Content: event.Content{Raw: structToMap(state)},
		}},
	})
	if err != nil {
		return "", err
	}
	l.setBridgeInfo(ctx, room, c.ID)
	return room, nil
}

func toUserIDs(ss []string) []id.UserID {
	out := make([]id.UserID, len(ss))
	for i, s := range ss {
		out[i] = id.UserID(s)
	}
	return out
}

func ptr[T any](v T) *T { return &v }

func structToMap(v any) map[string]any {
	raw, _ := json.Marshal(v)
	var m map[string]any
	_ = json.Unmarshal(raw, &m)
	return m
}
