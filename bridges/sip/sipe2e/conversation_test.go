package sipe2e

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"

	"github.com/switchboard-matrix/switchboard/bridges/sip/sipmsg"
	"github.com/switchboard-matrix/switchboard/internal/testpeer/homeserver"
	"github.com/switchboard-matrix/switchboard/internal/testpeer/matrixtest"
	"github.com/switchboard-matrix/switchboard/internal/testpeer/sipphone"
)

// TestConversation is a SIP phone behind Kamailio and a Matrix user writing to each
// other: the first MESSAGE opens the DM (the ghost invites), replies go back as MESSAGE,
// a retransmitted MESSAGE (same Call-ID, From tag and CSeq) appears once, typing goes to
// SIP as isComposing, and IMDN delivery and display notifications come back for a CPIM
// message that asks for them.
func TestConversation(t *testing.T) {
	startBridge(t, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	alice := newMatrixUser(t, "alice")
	bob := newPhone(t, "bob")
	bobGhost := ghostOf(t, "bob")
	to := sipURIOf(t, alice.UserID)

	first := unique("hello from SIP ")
	req := sipphone.Request{To: to, ContentType: "text/plain;charset=utf-8", Body: []byte(first), CallID: unique("c1-"), FromTag: "t1", CSeq: 7}
	if code, reason, err := bob.Send(ctx, req); err != nil || code != 202 {
		t.Fatalf("MESSAGE to %s: %d %s %v, want 202", to, code, reason, err)
	}
	room := matrixtest.AcceptInvite(t, alice)
	matrixtest.WaitEvent(t, alice, room, "bob's first message", bodyIs(bobGhost, first))
	// The DM tells clients what it is bridged to (MSC2346), under both event types: the
	// ghost set it before its first message.
	for _, typ := range []event.Type{event.StateBridge, event.StateHalfShotBridge} {
		var info event.BridgeEventContent
		key := "net.switchboard://sip/" + sipDomain + "/bob@" + sipDomain
		if err := alice.StateEvent(ctx, room, typ, key, &info); err != nil || info.Protocol.ID != "sip" || info.Channel.ID != "bob@"+sipDomain {
			t.Errorf("%s %q = %+v, %v; want protocol sip, channel bob@%s", typ.Type, key, info, err, sipDomain)
		}
	}

	// The same request again, as a UA retransmits it after a lost answer.
	if code, _, err := bob.Send(ctx, req); err != nil || code != 202 {
		t.Fatalf("retransmitted MESSAGE: %d %v, want 202", code, err)
	}

	reply := unique("hello from Matrix ")
	if _, err := alice.SendText(ctx, room, reply); err != nil {
		t.Fatal(err)
	}
	got, err := bob.Wait(ctx, "alice's reply", func(r *sip.Request) bool {
		return r.Method == sip.MESSAGE && strings.Contains(string(r.Body()), reply)
	})
	if err != nil {
		t.Fatal(err)
	}
	if from := got.From().Address.String(); !strings.Contains(from, "@"+bridgeDomain) {
		t.Errorf("the reply's From is %s, want an address on %s", from, bridgeDomain)
	}

	second := unique("second from SIP ")
	if code, _, err := bob.Send(ctx, sipphone.Request{To: to, ContentType: "text/plain", Body: []byte(second)}); err != nil || code != 202 {
		t.Fatalf("second MESSAGE: %d %v", code, err)
	}
	matrixtest.WaitEvent(t, alice, room, "bob's second message", bodyIs(bobGhost, second))
	evts, err := matrixtest.RoomMessages(ctx, alice, room)
	if err != nil {
		t.Fatal(err)
	}
	if n := countBody(evts, first); n != 1 {
		t.Errorf("the retransmitted message is in the room %d times, want once", n)
	}

	// Typing: alice types, bob gets isComposing "active".
	if _, err := alice.UserTyping(ctx, room, true, 30*time.Second); err != nil {
		t.Fatal(err)
	}
	if onHS.Kind == homeserver.Dendrite { // Dendrite pushes no ephemeral events
		matrixtest.PushEphemeral(t, onHS.ASPort, onHS.Reg.ServerToken,
			map[string]any{"type": "m.typing", "room_id": room, "content": map[string]any{"user_ids": []id.UserID{alice.UserID}}})
	}
	if _, err := bob.Wait(ctx, "isComposing", func(r *sip.Request) bool {
		return strings.Contains(r.ContentType().Value(), "im-iscomposing") && strings.Contains(string(r.Body()), "active")
	}); err != nil {
		t.Fatal(err)
	}

	// CPIM with IMDN: bob asks for delivery and display notifications.
	third := unique("cpim from SIP ")
	msgID := unique("imdn-")
	ct, body := sipmsg.CPIM("sip:bob@"+sipDomain, to, msgID, []string{"positive-delivery", "display"}, "text/plain;charset=utf-8", []byte(third), time.Now())
	if code, _, err := bob.Send(ctx, sipphone.Request{To: to, ContentType: ct, Body: body}); err != nil || code != 202 {
		t.Fatalf("CPIM MESSAGE: %d %v", code, err)
	}
	evt := matrixtest.WaitEvent(t, alice, room, "bob's CPIM message", bodyIs(bobGhost, third))
	imdnWith := func(status string) func(r *sip.Request) bool {
		return func(r *sip.Request) bool {
			b := string(r.Body())
			return strings.Contains(b, "imdn+xml") && strings.Contains(b, msgID) && strings.Contains(b, "<"+status+"/>")
		}
	}
	if _, err := bob.Wait(ctx, "the delivery notification", imdnWith("delivered")); err != nil {
		t.Fatal(err)
	}
	if err := alice.MarkRead(ctx, room, evt.ID); err != nil {
		t.Fatal(err)
	}
	if onHS.Kind == homeserver.Dendrite {
		matrixtest.PushEphemeral(t, onHS.ASPort, onHS.Reg.ServerToken, map[string]any{"type": "m.receipt", "room_id": room, "content": map[string]any{
			evt.ID.String(): map[string]any{"m.read": map[string]any{alice.UserID.String(): map[string]any{"ts": time.Now().UnixMilli()}}},
		}})
	}
	if _, err := bob.Wait(ctx, "the display notification", imdnWith("displayed")); err != nil {
		t.Fatal(err)
	}
}

// TestConversationSynapse is TestConversation on Synapse.
func TestConversationSynapse(t *testing.T) { onSynapse(t, TestConversation) }

func countBody(evts []*event.Event, body string) int {
	n := 0
	for _, e := range evts {
		if e.Type == event.EventMessage && e.Content.AsMessage().Body == body {
			n++
		}
	}
	return n
}
