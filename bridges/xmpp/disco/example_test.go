package disco_test

import (
	"fmt"

	"github.com/switchboard-matrix/switchboard/bridges/xmpp/disco"
)

func Example() {
	info := disco.Info{
		Identities: []disco.Identity{{Category: "client", Type: "pc", Name: "Exodus 0.9.1"}},
		Features: []string{disco.NSInfo, disco.NSItems,
			"http://jabber.org/protocol/muc", "http://jabber.org/protocol/caps"},
	}
	// The answer to a disco#info request, and the caps element for presences.
	fmt.Println(string(info.Marshal()))
	fmt.Println(string(disco.CapsElement("https://example.org/bridge", info)))
	// Output:
	// <query xmlns='http://jabber.org/protocol/disco#info'><identity category='client' type='pc' name='Exodus 0.9.1'/><feature var='http://jabber.org/protocol/disco#info'/><feature var='http://jabber.org/protocol/disco#items'/><feature var='http://jabber.org/protocol/muc'/><feature var='http://jabber.org/protocol/caps'/></query>
	// <c xmlns='http://jabber.org/protocol/caps' hash='sha-1' node='https://example.org/bridge' ver='QgayPKawpkPSDYmwT/WM94uAlu0='/>
}
