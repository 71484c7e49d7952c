package xmppe2e

import (
	"testing"

	"github.com/switchboard-matrix/switchboard/bridges/xmpp/xmsg"
)

// TestMatrixPresenceToXMPP: a Matrix user's presence reaches the XMPP users they have DMs
// with as their puppet's presence. (Dendrite does not push presence to appservices; the
// test delivers the m.presence EDU as a homeserver that does would.)
func TestMatrixPresenceToXMPP(t *testing.T) {
	startBridge(t, nil)
	bob := newXClient(t, "bob")
	alice := newMatrixUser(t, "alice")
	openDM(t, alice, bob.bare())
	puppet := puppetOf(t, alice.UserID)
	for _, tc := range []struct {
		name, presence, status   string
		wantType, wantShow, want string
	}{
		{name: "away", presence: "unavailable", status: "at lunch", wantShow: "away", want: "at lunch"},
		{name: "online", presence: "online", wantShow: ""},
		{name: "offline", presence: "offline", wantType: "unavailable"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pushEphemeral(t, map[string]any{"type": "m.presence", "sender": alice.UserID,
				"content": map[string]any{"presence": tc.presence, "status_msg": tc.status}})
			bob.waitPresence(tc.name+" presence from alice's puppet", func(p *xmsg.Presence) bool {
				return p.From.Bare().Equal(puppet) && p.Type == tc.wantType && p.Show == tc.wantShow && p.Status == tc.want
			})
		})
	}
}
