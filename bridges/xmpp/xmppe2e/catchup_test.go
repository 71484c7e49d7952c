package xmppe2e

import (
	"context"
	"fmt"
	"testing"
	"time"

	"mellium.im/xmpp/jid"

	"github.com/switchboard-matrix/switchboard/bridges/xmpp/xmsg"
	"github.com/switchboard-matrix/switchboard/internal/store"
	"github.com/switchboard-matrix/switchboard/internal/store/storetest"
	"github.com/switchboard-matrix/switchboard/internal/testpeer/matrixtest"
)

// TestGroupChatCatchUp stops Switchboard while a MUC goes on talking: after the restart,
// the bridge asks the room for the history since the last message it bridged, and what
// was missed arrives in Matrix once, with nothing bridged before repeated.
func TestGroupChatCatchUp(t *testing.T) {
	st := storetest.Open(t, store.SQLite)
	r := startBridge(t, st)
	ctx := context.Background()
	bob := newXClient(t, "bob")
	room := jid.MustParse(unique("ops") + "@" + xs.MUCDomain)
	bob.joinMUC(room, "Bob")
	alice := newMatrixUser(t, "alice")
	alias, _ := mapper().RoomAlias(room)
	join, err := alice.JoinRoom(ctx, alias.String(), nil)
	if err != nil {
		t.Fatal(err)
	}
	portal := join.RoomID
	bobGhost := ghostOf(t, bob.bare().String())
	aliceOcc, _ := room.WithResource("alice M")
	bob.waitPresence("alice's puppet", func(p *xmsg.Presence) bool { return p.From.Equal(aliceOcc) && p.Type == "" })
	bob.send(&xmsg.Message{Type: "groupchat", To: room, Body: "before", ID: "c-0", OriginID: "c-0"})
	waitMatrix(t, alice, portal, "the first message", bodyIs(bobGhost, "before"))

	stopCtx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	if err := r.core.Stop(stopCtx); err != nil {
		t.Fatal(err)
	}
	for i := 1; i <= 5; i++ {
		bob.send(&xmsg.Message{Type: "groupchat", To: room, Body: fmt.Sprintf("while down %d", i), ID: fmt.Sprintf("c-%d", i), OriginID: fmt.Sprintf("c-%d", i)})
	}
	bob.waitMessage("the last reflection", func(m *xmsg.Message) bool { return m.ID == "c-5" })

	startBridge(t, st)
	waitMatrix(t, alice, portal, "the last missed message", bodyIs(bobGhost, "while down 5"))
	evts, err := matrixtest.RoomMessages(ctx, alice, portal)
	if err != nil {
		t.Fatal(err)
	}
	counts := map[string]int{}
	for _, e := range evts {
		counts[e.Content.AsMessage().Body]++
	}
	for _, body := range []string{"before", "while down 1", "while down 2", "while down 3", "while down 4", "while down 5"} {
		if counts[body] != 1 {
			t.Errorf("%q is in the portal %d times, want 1", body, counts[body])
		}
	}
}
