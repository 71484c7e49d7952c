package jitsi

import (
	"context"
	"crypto/sha256"
	"encoding/base32"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strings"

	"github.com/rs/zerolog"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"

	"github.com/switchboard-matrix/switchboard/appservice"
	"github.com/switchboard-matrix/switchboard/bridges/jitsi/access"
	"github.com/switchboard-matrix/switchboard/bridges/jitsi/joinpage"
	"github.com/switchboard-matrix/switchboard/bridges/jitsi/widget"
)

// Event types the module writes besides Element's widget events.
var (
	widgetEventType      = event.Type{Type: widget.EventType, Class: event.StateEventType}
	layoutEventType      = event.Type{Type: widget.LayoutEventType, Class: event.StateEventType}
	participantsType     = event.Type{Type: "net.switchboard.jitsi.participants", Class: event.StateEventType}
	widgetName           = "Jitsi"
	widgetTypeCustom     = "m.custom" // Element's WidgetType.CUSTOM
	storeWidget          = "widget:"  // + room ID → roomMeeting
	storeConference      = "conf:"    // + conference → room ID
	storeMeeting         = "meeting:" // + conference → activeMeeting
	meetingHelp          = "Commands: !meet (a video meeting in this room), !meet audio (audio only), !meet end (remove it)"
	maxRoomNameInWidget  = 255
	widgetIDFromEventLen = 24
)

// roomMeeting is the widget the module added to a room.
type roomMeeting struct {
	WidgetID   string     `json:"widget_id"`
	Conference string     `json:"conference"`
	Event      id.EventID `json:"event,omitempty"` // the command that added it
	AddedBy    id.UserID  `json:"added_by"`
}

// handleMeet runs "!meet [audio|end|help]" in the room of evt.
func (b *Bridge) handleMeet(ctx context.Context, evt *event.Event) error {
	reply, err := b.runMeet(ctx, evt)
	if errors.Is(err, access.ErrBotNotInRoom) && b.bot.JoinRoom(ctx, evt.RoomID) == nil {
		// A room the bot may join by itself (a public room): it joins and tries again.
		reply, err = b.runMeet(ctx, evt)
	}
	switch {
	case errors.Is(err, access.ErrBotNotInRoom):
		// The bot cannot read the room, so it cannot answer there either.
		zerolog.Ctx(ctx).Info().Err(err).Stringer("room_id", evt.RoomID).Msg("Ignored !meet in a room the Jitsi bot is not in")
		return nil
	case isForbidden(err):
		zerolog.Ctx(ctx).Warn().Err(err).Stringer("room_id", evt.RoomID).Msg("The homeserver refused a meeting change")
		reply = "The homeserver did not let me change the meeting of this room (it answered 403 Forbidden)."
	case err != nil:
		return err
	}
	return b.notice(ctx, evt.RoomID, "reply:"+evt.ID.String(), evt.ID, reply)
}

// runMeet runs one "!meet" command and returns the reply.
func (b *Bridge) runMeet(ctx context.Context, evt *event.Event) (reply string, err error) {
	words := strings.Fields(evt.Content.AsMessage().Body)
	switch {
	case len(words) > 1 && words[1] == "end":
		reply, err = b.endMeeting(ctx, evt.RoomID, evt.Sender)
	case len(words) > 1 && words[1] == "help", len(words) > 2:
		reply = meetingHelp
	case len(words) == 2 && words[1] != "audio" && words[1] != "video":
		reply = fmt.Sprintf("Unknown option %q. %s", words[1], meetingHelp)
	default:
		reply, err = b.addMeeting(ctx, evt.RoomID, evt.Sender, evt.ID, len(words) == 2 && words[1] == "audio")
	}
	return reply, err
}

// addMeeting adds the Jitsi widget to the room unless it has one; cause keys the widget ID
// (a redelivered command writes the same widget).
func (b *Bridge) addMeeting(ctx context.Context, roomID id.RoomID, sender id.UserID, cause id.EventID, audioOnly bool) (string, error) {
	if refusal, err := b.mayChangeWidgets(ctx, roomID, sender); err != nil || refusal != "" {
		return refusal, err
	}
	existing, err := b.currentMeeting(ctx, roomID)
	if err != nil {
		return "", err
	}
	if existing != nil && existing.Event != cause {
		return "This room already has a meeting: " + b.meetingURL(existing.Conference) + " (!meet end removes it).", nil
	}
	conf := b.conferenceFor(roomID)
	m := roomMeeting{WidgetID: widgetIDFor(cause), Conference: conf, Event: cause, AddedBy: sender}
	var name struct {
		Name string `json:"name"`
	}
	if err := b.bot.StateEvent(ctx, roomID, event.StateRoomName, "", &name); err != nil && !errors.Is(err, appservice.ErrNotFound) {
		return "", err
	}
	if len(name.Name) > maxRoomNameInWidget {
		name.Name = name.Name[:maxRoomNameInWidget]
	}
	auth := ""
	if b.cfg.Auth == AuthUVS {
		auth = widget.AuthOpenIDJWT
	}
	content := widget.New(widget.Options{
		Domain: b.webHost(), ConferenceID: conf, RoomName: name.Name, Name: widgetName,
		Auth: auth, WrapperURL: b.cfg.ElementURL, AudioOnly: audioOnly,
	})
	if b.cfg.Auth == AuthJWT {
		// Element opens Jitsi widgets in its own wrapper, which cannot carry a minted token:
		// the widget is the module's join page, a custom widget, with the same data.
		content.Type = widgetTypeCustom
		content.URL = joinpage.WidgetURL(b.cfg.HTTP.PublicURL)
	}
	if err := b.putMeeting(ctx, roomID, m); err != nil {
		return "", err
	}
	if _, err := b.bot.SendState(ctx, roomID, widgetEventType, m.WidgetID, content); err != nil {
		return "", fmt.Errorf("jitsi: failed to add the widget: %w", err)
	}
	if err := b.pin(ctx, roomID, m.WidgetID); err != nil {
		return "", err
	}
	if b.watcher != nil {
		b.watcher.Watch(mucName(conf))
	}
	kind := "video"
	if audioOnly {
		kind = "audio"
	}
	return fmt.Sprintf("Added a Jitsi %s meeting to this room (the widget at the top). Only members of this room can join: %s", kind, b.meetingURL(conf)), nil
}

// endMeeting removes the room's widget.
func (b *Bridge) endMeeting(ctx context.Context, roomID id.RoomID, sender id.UserID) (string, error) {
	if refusal, err := b.mayChangeWidgets(ctx, roomID, sender); err != nil || refusal != "" {
		return refusal, err
	}
	m, err := b.storedMeeting(ctx, roomID)
	if errors.Is(err, appservice.ErrNotFound) {
		return "This room has no meeting of mine.", nil
	} else if err != nil {
		return "", err
	}
	if _, err := b.bot.SendState(ctx, roomID, widgetEventType, m.WidgetID, struct{}{}); err != nil {
		return "", fmt.Errorf("jitsi: failed to remove the widget: %w", err)
	}
	if err := b.unpin(ctx, roomID, m.WidgetID); err != nil {
		return "", err
	}
	if b.watcher != nil {
		b.watcher.Unwatch(mucName(m.Conference))
	}
	b.tracker.Forget(mucName(m.Conference)) // an ongoing meeting ends now, with its notice
	b.writer.put(roomID, m.WidgetID, struct{}{})
	st := b.host.Store()
	if err := st.DeleteKV(ctx, storeWidget+roomID.String()); err != nil {
		return "", err
	}
	if err := st.DeleteKV(ctx, storeConference+mucName(m.Conference)); err != nil {
		return "", err
	}
	return "Removed the meeting from this room.", nil
}

// mayChangeWidgets checks that sender may add or remove widgets in the room (the power
// level Matrix asks for im.vector.modular.widgets, as Element checks) and that the bot
// may write the widget, the layout and the participants.
//
// A refusal is the text for the room; err is a failure to ask.
func (b *Bridge) mayChangeWidgets(ctx context.Context, roomID id.RoomID, sender id.UserID) (refusal string, err error) {
	pl, _, err := b.powerLevels(ctx, roomID)
	if err != nil {
		return "", err
	}
	need := pl.GetEventLevel(widgetEventType)
	if have := pl.GetUserLevel(sender); have < need {
		return fmt.Sprintf("Only members with power level %d or more can change the meeting (you have %d).", need, have), nil
	}
	botNeeds := max(need, pl.GetEventLevel(layoutEventType), pl.GetEventLevel(participantsType))
	if have := pl.GetUserLevel(b.bot.UserID()); have < botNeeds {
		return fmt.Sprintf("I need power level %d in this room to change the meeting (I have %d): please make %s a moderator.", botNeeds, have, b.bot.UserID()), nil
	}
	return "", nil
}

// currentMeeting is the room's meeting widget of this module if it is still in the room's
// state (a member may have removed it in their client); nil when none.
func (b *Bridge) currentMeeting(ctx context.Context, roomID id.RoomID) (*roomMeeting, error) {
	m, err := b.storedMeeting(ctx, roomID)
	if errors.Is(err, appservice.ErrNotFound) {
		return nil, nil
	} else if err != nil {
		return nil, err
	}
	var content map[string]any
	err = b.bot.StateEvent(ctx, roomID, widgetEventType, m.WidgetID, &content)
	if errors.Is(err, appservice.ErrNotFound) || err == nil && content["url"] == nil {
		return nil, nil
	} else if err != nil {
		return nil, err
	}
	return &m, nil
}

func (b *Bridge) storedMeeting(ctx context.Context, roomID id.RoomID) (roomMeeting, error) {
	var m roomMeeting
	raw, err := b.host.Store().GetKV(ctx, storeWidget+roomID.String())
	if err != nil {
		return m, err
	}
	if err := json.Unmarshal([]byte(raw), &m); err != nil {
		return m, fmt.Errorf("jitsi: bad stored meeting of %s: %w", roomID, err)
	}
	return m, nil
}

func (b *Bridge) putMeeting(ctx context.Context, roomID id.RoomID, m roomMeeting) error {
	raw, _ := json.Marshal(m)
	st := b.host.Store()
	if err := st.PutKV(ctx, storeConference+mucName(m.Conference), roomID.String()); err != nil {
		return err
	}
	return st.PutKV(ctx, storeWidget+roomID.String(), string(raw))
}

// pin writes the layout event with the widget at the top, keeping the other widgets'.
func (b *Bridge) pin(ctx context.Context, roomID id.RoomID, widgetID string) error {
	var existing json.RawMessage
	if err := b.bot.StateEvent(ctx, roomID, layoutEventType, "", &existing); err != nil && !errors.Is(err, appservice.ErrNotFound) {
		return err
	}
	layout, err := widget.PinLayout(existing, widgetID)
	if err != nil {
		return err
	}
	if _, err := b.bot.SendState(ctx, roomID, layoutEventType, "", layout); err != nil {
		return fmt.Errorf("jitsi: failed to pin the widget: %w", err)
	}
	return nil
}

// unpin takes the widget out of the layout event.
func (b *Bridge) unpin(ctx context.Context, roomID id.RoomID, widgetID string) error {
	var existing json.RawMessage
	if err := b.bot.StateEvent(ctx, roomID, layoutEventType, "", &existing); errors.Is(err, appservice.ErrNotFound) {
		return nil
	} else if err != nil {
		return err
	}
	layout, changed, err := widget.UnpinLayout(existing, widgetID)
	if err != nil || !changed {
		return err
	}
	if _, err := b.bot.SendState(ctx, roomID, layoutEventType, "", layout); err != nil {
		return fmt.Errorf("jitsi: failed to unpin the widget: %w", err)
	}
	return nil
}

// meetingURL is the conference's address on Jitsi.
func (b *Bridge) meetingURL(conf string) string { return b.cfg.URL + "/" + conf }

// notice sends a notice as the bot, once per remoteID.
func (b *Bridge) notice(ctx context.Context, roomID id.RoomID, remoteID string, cause id.EventID, text string) error {
	return b.host.Enqueue(ctx, appservice.Message{
		RoomID: roomID, Sender: b.bot.UserID(), RemoteID: remoteID, CausedBy: cause,
		Content: &event.MessageEventContent{MsgType: event.MsgNotice, Body: text},
	})
}

// widgetIDFor derives a widget ID from the command that adds it: 24 letters, like the
// random ones Element makes, but the same when the command is handled again.
func widgetIDFor(cause id.EventID) string {
	sum := sha256.Sum256([]byte("jitsi-widget|" + cause))
	return strings.ToLower(base32.StdEncoding.EncodeToString(sum[:]))[:widgetIDFromEventLen]
}

// isForbidden reports a homeserver 403.
func isForbidden(err error) bool {
	var re *appservice.RequestError
	return errors.As(err, &re) && re.Status == 403
}

// mucName is a conference's name as Jitsi uses it: jitsi-meet lower-cases room names
// before it joins the MUC (getBackendSafeRoomName), so the watcher, the tracker and the
// store key conferences in lower case. Element's base32 conference IDs are upper case;
// the Prosody module decodes either.
func mucName(conf string) string { return strings.ToLower(conf) }

// webHost is the host Element's wrapper loads Jitsi from (the widget's "domain", Element's
// jitsi.preferred_domain): the host of url, which may differ from Jitsi's XMPP domain
// (docker-jitsi-meet's is meet.jitsi).
func (b *Bridge) webHost() string {
	u, err := url.Parse(b.cfg.URL)
	if err != nil { // Validate parsed it
		return b.cfg.Domain
	}
	return u.Host
}
