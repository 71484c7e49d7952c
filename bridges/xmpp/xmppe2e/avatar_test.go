package xmppe2e

import (
	"bytes"
	"context"
	"image/color"
	"testing"
	"time"

	"maunium.net/go/mautrix/id"
	"mellium.im/xmpp/jid"

	"github.com/switchboard-matrix/switchboard/bridges/xmpp/vcard"
	"github.com/switchboard-matrix/switchboard/bridges/xmpp/xmsg"
	"github.com/switchboard-matrix/switchboard/internal/testpeer/matrixtest"
)

// TestAvatars covers an XMPP user's avatar (XEP-0054 vcard-temp PHOTO): the ghost of a user
// who published a photo before writing to Matrix has it as its Matrix avatar.
func TestAvatars(t *testing.T) {
	startBridge(t, nil)
	ctx := context.Background()
	bob := newXClient(t, "bob")
	photo := pngOf(t, color.RGBA{G: 200, A: 255})
	bob.mustAsk("set", jid.JID{}, vcard.Card{FullName: "Bob", PhotoType: "image/png", Photo: photo}.Marshal())

	alice := newMatrixUser(t, "alice")
	bob.send(&xmsg.Message{ID: "av-1", Type: "chat", To: puppetOf(t, alice.UserID), Body: "look at my avatar"})
	room := acceptInvite(t, alice)
	bobGhost := ghostOf(t, bob.bare().String())
	waitMatrix(t, alice, room, "bob's message", bodyIs(bobGhost, "look at my avatar"))

	var avatar id.ContentURI
	matrixtest.WaitFor(t, 30*time.Second, "the ghost's avatar", func() (bool, error) {
		uri, err := alice.GetAvatarURL(ctx, bobGhost)
		avatar = uri
		return err == nil && !uri.IsEmpty(), err
	})
	got, err := alice.DownloadBytes(ctx, avatar)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, photo) {
		t.Errorf("the avatar has %d bytes that differ from the %d of the photo", len(got), len(photo))
	}
}
