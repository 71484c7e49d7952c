package jitsie2e

import (
	"context"
	"encoding/base32"
	"strings"
	"testing"
	"time"

	"maunium.net/go/mautrix"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"

	"github.com/switchboard-matrix/switchboard/internal/testpeer/e2eeclient"
)

// TestMeetInEncryptedRoom: in an encrypted room (the default of the homeservers our users
// run), "!meet" from a moderator adds a Jitsi widget with the fields Element Web writes
// itself (src/utils/WidgetUtils.ts, addJitsiWidget and getLocalJitsiWrapperUrl; the field
// by field comparison with Element's fixture is widget.TestContentMatchesElement), pinned
// with io.element.widgets.layout (src/stores/widgets/WidgetLayoutStore.ts); a second
// "!meet" finds it; a member without the power to change widgets is refused; "!meet end"
// removes it and unpins it; the conference name is the same the next time and is not the
// room ID's encoding.
func TestMeetInEncryptedRoom(t *testing.T) {
	r := startModule(t, moduleConfig(), true)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	alice := e2eeclient.RegisterForTest(t, hs, unique("alice"), "Alice")
	bob := e2eeclient.RegisterForTest(t, hs, unique("bob"), "Bob")
	bot := r.module.BotUserID()
	room, err := alice.CreateEncryptedRoom(ctx, &mautrix.ReqCreateRoom{
		Name: "Weekly sync", Preset: "private_chat", Invite: []id.UserID{bot, bob.UserID()},
		PowerLevelOverride: &event.PowerLevelsEventContent{Users: map[id.UserID]int{bot: 50}},
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := bob.AcceptInvite(ctx); err != nil {
		t.Fatal(err)
	}
	waitEncryptedNotice(ctx, t, alice, room, bot, "Hello! Type !meet")

	send := func(c *e2eeclient.Client, text string) {
		t.Helper()
		if _, err := c.Send(ctx, room, event.EventMessage, &event.MessageEventContent{MsgType: event.MsgText, Body: text}); err != nil {
			t.Fatal(err)
		}
	}
	send(alice, "!meet")
	waitEncryptedNotice(ctx, t, alice, room, bot, "Added a Jitsi video meeting to this room")

	key, content, sender := widgetOf(t, alice.Mautrix(), room)
	if key == "" {
		t.Fatal("no widget in the room's state")
	}
	if sender != bot {
		t.Errorf("widget sent by %s, want the bot %s", sender, bot)
	}
	data, _ := content["data"].(map[string]any)
	conf, _ := data["conferenceId"].(string)
	checks := map[string]bool{
		`type is "jitsi" (WidgetType.JITSI.legacy)`: content["type"] == "jitsi",
		`name is "Jitsi"`:                         content["name"] == "Jitsi",
		"url is Element's wrapper with confId":    strings.HasPrefix(content["url"].(string), "https://app.element.io/jitsi.html?confId="+conf+"#conferenceDomain=$domain&conferenceId=$conferenceId&"),
		"data.domain":                             data["domain"] == "meet.test",
		"data.conferenceId set":                   conf != "",
		"data.roomName":                           data["roomName"] == "Weekly sync",
		"data.isAudioOnly false":                  data["isAudioOnly"] == false,
		"data.isVideoChannel false":               data["isVideoChannel"] == false,
		"no data.auth without token auth":         data["auth"] == nil,
		"conference is not the room ID in base32": !strings.EqualFold(conf, base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString([]byte(room))),
	}
	for what, ok := range checks {
		if !ok {
			t.Errorf("widget: %s does not hold: %v", what, content)
		}
	}
	layout := stateOf(t, alice.Mautrix(), room, "io.element.widgets.layout", "")
	if pinned, _ := layout["widgets"].(map[string]any)[key].(map[string]any); pinned["container"] != "top" {
		t.Errorf("layout %v does not pin %s to the top", layout, key)
	}

	send(alice, "!meet")
	waitEncryptedNotice(ctx, t, alice, room, bot, "This room already has a meeting")
	send(bob, "!meet end")
	waitEncryptedNotice(ctx, t, bob, room, bot, "Only members with power level 50 or more can change the meeting")
	if k, _, _ := widgetOf(t, alice.Mautrix(), room); k != key {
		t.Fatalf("the widget changed after a refused !meet end: %q", k)
	}

	send(alice, "!meet end")
	waitEncryptedNotice(ctx, t, alice, room, bot, "Removed the meeting from this room")
	if c := stateOf(t, alice.Mautrix(), room, "im.vector.modular.widgets", key); len(c) != 0 {
		t.Errorf("widget state after !meet end: %v, want {}", c)
	}
	layout = stateOf(t, alice.Mautrix(), room, "io.element.widgets.layout", "")
	if _, still := layout["widgets"].(map[string]any)[key]; still {
		t.Errorf("layout %v still pins %s", layout, key)
	}

	send(alice, "!meet audio")
	waitEncryptedNotice(ctx, t, alice, room, bot, "Added a Jitsi audio meeting")
	key2, content2, _ := widgetOf(t, alice.Mautrix(), room)
	data2, _ := content2["data"].(map[string]any)
	if key2 == key || data2["conferenceId"] != conf || data2["isAudioOnly"] != true {
		t.Errorf("second meeting: widget %s (first %s), data %v: want a new widget, the same conference %s, audio only", key2, key, data2, conf)
	}
}

// waitEncryptedNotice waits until c decrypted a notice from sender that starts with prefix.
func waitEncryptedNotice(ctx context.Context, t *testing.T, c *e2eeclient.Client, room id.RoomID, sender id.UserID, prefix string) {
	t.Helper()
	m, err := c.WaitMessage(ctx, room, func(m e2eeclient.Message) bool {
		return m.DecryptError == nil && m.Event.Sender == sender && strings.HasPrefix(m.Event.Content.AsMessage().Body, prefix)
	})
	if err != nil {
		t.Fatalf("waiting for %q from %s: %v", prefix, sender, err)
	}
	if !m.Encrypted {
		t.Errorf("%q arrived unencrypted in an encrypted room", prefix)
	}
}
