package xid_test

import (
	"fmt"

	"mellium.im/xmpp/jid"

	"github.com/switchboard-matrix/switchboard/bridges/xmpp/xid"
)

func ExampleMapper() {
	m := xid.Mapper{Homeserver: "example.org", Component: "matrix.example.org", Prefix: xid.DefaultPrefix}
	ghost, _ := m.GhostUserID(jid.MustParse("Alice@xmpp.example/phone"))
	back, _ := m.JIDForGhost(ghost)
	puppet, _ := m.PuppetJID("@bob:example.org")
	fmt.Println(ghost)
	fmt.Println(back)
	fmt.Println(puppet)
	// Output:
	// @_xmpp_alice=40xmpp.example:example.org
	// alice@xmpp.example
	// bob\40example.org@matrix.example.org
}
