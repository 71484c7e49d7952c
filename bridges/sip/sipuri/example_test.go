package sipuri_test

import (
	"fmt"

	"github.com/switchboard-matrix/switchboard/bridges/sip/sipuri"
)

func ExampleParseAOR() {
	a, err := sipuri.ParseAOR(`<sips:Alice%20B@Example.ORG:5061;transport=tls>`)
	fmt.Println(a.User, a.Host, err)
	fmt.Println(a.URI())
	_, err = sipuri.ParseAOR("tel:+4930123456")
	fmt.Println(err)
	// Output:
	// Alice B example.org <nil>
	// sip:Alice%20B@example.org
	// sipuri: invalid SIP address: tel: URIs are not supported, use a sip: URI (user=phone)
}

func ExampleMapper() {
	m := sipuri.Mapper{Homeserver: "hs.example", Domain: "matrix.example.org", Prefix: sipuri.DefaultPrefix}
	alice, _ := sipuri.ParseAOR("sip:alice@example.org")
	ghost, _ := m.GhostLocalpart(alice)
	back, _ := m.GhostAOR(ghost)
	fmt.Println(ghost, back)

	bob, _ := m.UserAOR("@bob:hs.example")
	carol, _ := m.UserAOR("@carol:other.example")
	user, _ := m.MatrixUser(carol)
	fmt.Println(bob, carol, user)

	_, err := m.UserAOR("@" + ghost + ":hs.example")
	fmt.Println(err)
	// Output:
	// _sip_alice=40example.org alice@example.org
	// bob@matrix.example.org carol=40other.example@matrix.example.org @carol:other.example
	// sipuri: address belongs to the bridge itself: "@_sip_alice=40example.org:hs.example" is a ghost of the SIP bridge
}

func ExampleDomainList() {
	d, _ := sipuri.ParseDomainList([]string{"example.org", "*.example.net"})
	fmt.Println(d.Allows("Example.ORG"), d.Allows("sip.example.net"), d.Allows("example.net"), d.Allows("evil.example"))
	var none sipuri.DomainList
	fmt.Println(none.Allows("example.org"))
	// Output:
	// true true false false
	// false
}
