package kamailio_test

import (
	"context"
	"fmt"

	"github.com/switchboard-matrix/switchboard/internal/testpeer/kamailio"
)

// Start a Kamailio for the domain sip.test with two users, forwarding requests for
// matrix.test to a bridge on 127.0.0.1:5070 (UDP), and point a SIP client at it.
func ExampleStart() {
	srv, err := kamailio.Start(context.Background(), kamailio.Options{
		Users:        map[string]string{"alice": "alice-secret", "bob": "bob-secret"},
		BridgeDomain: "matrix.test",
		BridgeAddr:   "127.0.0.1:5070",
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer srv.Stop()
	fmt.Println(srv.Domain, srv.ProxyURI("tcp"), srv.CAFile)
}
