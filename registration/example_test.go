package registration_test

import (
	"fmt"

	"github.com/switchboard-matrix/switchboard/registration"
)

func ExampleBuild() {
	reg, err := registration.Build(registration.BuildConfig{
		ID:           "switchboard",
		URL:          "http://127.0.0.1:29300",
		BotLocalpart: "switchboard",
		Domain:       "localhost",
		Ephemeral:    true,
	}, map[string]registration.Namespaces{
		"xmpp": {Users: []registration.Pattern{{Localpart: "_xmpp_.+", Exclusive: true}}},
	}, nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	reg.AppToken, reg.ServerToken = "<as_token>", "<hs_token>"
	out, _ := reg.YAML()
	fmt.Print(out)
	// Output:
	// id: switchboard
	// url: http://127.0.0.1:29300
	// as_token: <as_token>
	// hs_token: <hs_token>
	// sender_localpart: switchboard
	// rate_limited: false
	// namespaces:
	//     users:
	//         - regex: ^@(?:switchboard):localhost$
	//           exclusive: true
	//         - regex: ^@(?:_xmpp_.+):localhost$
	//           exclusive: true
	// de.sorunome.msc2409.push_ephemeral: true
	// receive_ephemeral: true
}

func ExampleBuild_overlap() {
	_, err := registration.Build(registration.BuildConfig{
		ID: "switchboard", URL: "http://127.0.0.1:29300", BotLocalpart: "switchboard", Domain: "localhost",
	}, map[string]registration.Namespaces{
		"xmpp": {Users: []registration.Pattern{{Localpart: "_xmpp_.*", Exclusive: true}}},
		"x":    {Users: []registration.Pattern{{Localpart: "_x.*", Exclusive: true}}},
	}, nil)
	fmt.Println(err)
	// Output:
	// registration: exclusive users namespaces overlap: module "x" ("_x.*") and module "xmpp" ("_xmpp_.*") both match "@_xmpp_:localhost"
}

func ExampleOverlap() {
	for _, p := range [][2]string{{"_xmpp_.*", "_email_.*"}, {"bot", "b.t"}} {
		ok, _ := registration.Overlap(p[0], p[1])
		fmt.Println(p[0], p[1], ok)
	}
	// Output:
	// _xmpp_.* _email_.* false
	// bot b.t true
}

func ExampleRouter() {
	router, err := registration.NewRouter("localhost", map[string]registration.Namespaces{
		"xmpp":  {Users: []registration.Pattern{{Localpart: "_xmpp_.+", Exclusive: true}}},
		"email": {Aliases: []registration.Pattern{{Localpart: "_email_.+", Exclusive: true}}},
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(router.ModuleForUser("@_xmpp_alice=40example.com:localhost"))
	fmt.Println(router.ModuleForUser("@alice:localhost"))
	fmt.Println(router.ModuleForAlias("#_email_inbox:localhost"))
	// Output:
	// xmpp true
	//  false
	// email true
}

func ExampleTxnScope() {
	reg, _ := registration.Build(registration.BuildConfig{
		ID: "switchboard", URL: "http://127.0.0.1:29300", BotLocalpart: "switchboard", Domain: "localhost",
	}, nil, nil)
	fmt.Println(len(registration.TxnScope(reg)))
	// Output: 32
}
