package iq_test

import (
	"context"
	"errors"
	"fmt"
	"time"

	"mellium.im/xmpp/jid"

	"github.com/switchboard-matrix/switchboard/bridges/xmpp/iq"
)

func Example() {
	tr := iq.NewTracker()
	bridge := jid.MustParse("bob@matrix.example.org")
	alice := jid.MustParse("alice@example.org/phone")

	// Send a request: register it first, then write it on the stream.
	id := tr.NewID()
	p := tr.Expect(id, alice)
	_ = iq.Build(iq.TypeGet, id, bridge, alice, []byte(`<vCard xmlns='vcard-temp'/>`))

	// The stream reader hands every inbound iq to the tracker first.
	raw := []byte(`<iq xmlns='jabber:component:accept' type='error' id='` + id + `' from='alice@example.org/phone' to='bob@matrix.example.org'>` +
		`<error type='cancel'><item-not-found xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></iq>`)
	q, err := iq.Parse(raw)
	if err != nil {
		panic(err)
	}
	if !tr.Deliver(q) {
		// Not an answer to us: a request to handle, e.g. with iq.Result or iq.ErrorReply.
		_ = iq.ErrorReply(q, "cancel", "service-unavailable", "")
	}

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err = p.Wait(ctx)
	var remote *iq.Error
	if errors.As(err, &remote) {
		fmt.Println(errors.Is(err, iq.ErrRemote), remote.Type, remote.Condition)
	}
	// Output:
	// true cancel item-not-found
}
