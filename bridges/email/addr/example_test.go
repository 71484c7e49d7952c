package addr_test

import (
	"fmt"

	"github.com/switchboard-matrix/switchboard/bridges/email/addr"
)

func Example() {
	m := addr.Mapper{Homeserver: "example.org", Prefix: addr.DefaultPrefix}
	ghost, err := m.GhostUserID("Alice Liddell <Alice@Wonderland.Example>")
	if err != nil {
		panic(err)
	}
	fmt.Println(ghost)
	back, _ := m.AddressForGhost(ghost)
	fmt.Println(back)
	// Output:
	// @_email__alice=40wonderland.example:example.org
	// Alice@wonderland.example
}
