package xmppe2e

import (
	"context"
	"slices"
	"testing"

	"mellium.im/xmpp/jid"

	"github.com/switchboard-matrix/switchboard/bridges/xmpp/disco"
	"github.com/switchboard-matrix/switchboard/bridges/xmpp/xmsg"
)

// TestDiscoAndCaps covers service discovery (XEP-0030) of the component and of a Matrix
// user's puppet, and entity capabilities (XEP-0115): the caps a puppet puts in its
// presence verify against the disco#info it answers for them, so that a client which
// caches caps shows the right features.
func TestDiscoAndCaps(t *testing.T) {
	startBridge(t, nil)
	ctx := context.Background()
	bob := newXClient(t, "bob")
	alice := newMatrixUser(t, "alice")
	puppet := puppetOf(t, alice.UserID)
	wantFeatures := []string{
		"http://jabber.org/protocol/disco#info",
		"urn:xmpp:reactions:0", "urn:xmpp:reply:0", "urn:xmpp:message-retract:1", "urn:xmpp:message-correct:0",
		"urn:xmpp:receipts", "urn:xmpp:chat-markers:0", "http://jabber.org/protocol/chatstates",
		"jabber:x:oob", "urn:xmpp:sid:0", "vcard-temp",
	}

	for _, tc := range []struct {
		name           string
		to             jid.JID
		category, kind string
	}{
		{"component", jid.MustParse(xs.ComponentDomain), "gateway", "matrix"},
		{"puppet", puppet, "client", "bot"},
	} {
		t.Run("disco#info of the "+tc.name, func(t *testing.T) {
			info := bob.discoInfo(tc.to, "")
			if len(info.Identities) == 0 || info.Identities[0].Category != tc.category || info.Identities[0].Type != tc.kind {
				t.Errorf("identities %+v, want %s/%s", info.Identities, tc.category, tc.kind)
			}
			for _, f := range wantFeatures {
				if !slices.Contains(info.Features, f) {
					t.Errorf("feature %s missing from %v", f, info.Features)
				}
			}
		})
	}

	// verify checks caps against the puppet's disco#info for node#ver.
	verify := func(t *testing.T, c caps) {
		t.Helper()
		if c.Hash != "sha-1" || c.Node == "" || c.Ver == "" {
			t.Fatalf("caps %+v, want sha-1 with a node and a ver", c)
		}
		node := c.Node + "#" + c.Ver
		info := bob.discoInfo(puppet, node)
		if info.Node != node {
			t.Errorf("disco#info answered for node %q, want %q", info.Node, node)
		}
		if got := disco.CapsVer(*info); got != c.Ver {
			t.Errorf("ver %q, but the info answered for it hashes to %q", c.Ver, got)
		}
	}

	t.Run("caps in the answer to a subscription", func(t *testing.T) {
		bob.send(&xmsg.Presence{To: puppet, Type: "subscribe"})
		c := bob.waitCaps("the puppet's available presence with caps", func(from jid.JID, typ string) bool {
			return from.Bare().Equal(puppet) && typ == ""
		})
		verify(t, c)
	})

	t.Run("caps in a muc join presence", func(t *testing.T) {
		room := jid.MustParse(unique("caps") + "@" + xs.MUCDomain)
		bob.joinMUC(room, "Bob")
		alias, err := mapper().RoomAlias(room)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := alice.JoinRoom(ctx, alias.String(), nil); err != nil {
			t.Fatal(err)
		}
		occ, _ := room.WithResource("alice M")
		c := bob.waitCaps("the join presence of alice's puppet with caps", func(from jid.JID, typ string) bool {
			return from.Equal(occ) && typ == ""
		})
		verify(t, c)
	})
}
