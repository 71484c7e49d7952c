package xmppe2e

import (
	"bytes"
	"context"
	"testing"

	"github.com/switchboard-matrix/switchboard/bridges/xmpp/vcard"
)

// tinyPNG is a 1×1 PNG.
var tinyPNG = []byte{0x89, 'P', 'N', 'G', 0x0d, 0x0a, 0x1a, 0x0a, 0, 0, 0, 0x0d, 'I', 'H', 'D', 'R', 0, 0, 0, 1, 0, 0, 0, 1,
	8, 6, 0, 0, 0, 0x1f, 0x15, 0xc4, 0x89, 0, 0, 0, 0x0a, 'I', 'D', 'A', 'T', 0x78, 0x9c, 0x63, 0, 1, 0, 0, 5, 0, 1,
	0x0d, 0x0a, 0x2d, 0xb4, 0, 0, 0, 0, 'I', 'E', 'N', 'D', 0xae, 0x42, 0x60, 0x82}

// TestPuppetVCard: an XMPP user asking a Matrix user's puppet for its vCard gets the Matrix
// display name and avatar.
func TestPuppetVCard(t *testing.T) {
	startBridge(t, nil)
	ctx := context.Background()
	bob := newXClient(t, "bob")
	alice := newMatrixUser(t, "alice")
	up, err := alice.UploadBytes(ctx, tinyPNG, "image/png")
	if err != nil {
		t.Fatal(err)
	}
	if err := alice.SetAvatarURL(ctx, up.ContentURI); err != nil {
		t.Fatal(err)
	}
	res := bob.query(puppetOf(t, alice.UserID), vcard.Request())
	if res.Type != "result" {
		t.Fatalf("vCard query answered %s: %+v", res.Type, res.Error)
	}
	card, err := vcard.Parse(res.Inner)
	if err != nil {
		t.Fatal(err)
	}
	if card.FullName != "alice M" || !bytes.Equal(card.Photo, tinyPNG) || card.PhotoType != "image/png" {
		t.Errorf("vCard %q, photo %d bytes of %s; want alice M with the avatar", card.FullName, len(card.Photo), card.PhotoType)
	}
}
