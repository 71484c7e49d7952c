package ucrm_test

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"fmt"

	"github.com/switchboard-matrix/switchboard/internal/testpeer/ucrm"
)

// A test plays dispatch centre A against participant B (in real tests, the bot) through
// the fake UCRM.
func Example() {
	keyA, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		panic(err)
	}
	s := ucrm.New(ucrm.Options{})
	s.AddParticipant(ucrm.Participant{OID: "1.2.3.1", Username: "a", Password: "secret-a", Key: &keyA.PublicKey})
	s.AddParticipant(ucrm.Participant{OID: "1.2.3.2", Username: "b", Password: "secret-b", TransmitsUnsigned: true})
	if err := s.Start(); err != nil {
		panic(err)
	}
	defer s.Close()

	ctx := context.Background()
	a, b := s.Peer("1.2.3.1", keyA), s.Peer("1.2.3.2", nil)
	data := map[string]any{
		"sharedIncidentId":           "550e8400-e29b-41d4-a716-446655440000",
		"acknowledgedByDispatcherAt": "2024-01-01T10:06:09Z",
		"status":                     "accepted",
	}
	if _, err := a.Send(ctx, "1.2.3.2", ucrm.AppIncident, "acknowledgement", data, "ALL"); err != nil {
		panic(err)
	}
	msgs, err := b.Receive(ctx, 0) // receives and commits
	if err != nil {
		panic(err)
	}
	m, _ := ucrm.ParseMessage(msgs[0])
	fmt.Println(m.Source, m.SchemaID, m.SequenceID)

	msgs, _ = a.Receive(ctx, 0) // the delivery status for ack ALL
	st, _ := ucrm.ParseMessage(msgs[0])
	fmt.Println(st.Source, st.SchemaID)
	// Output:
	// 1.2.3.1 acknowledgement 1
	// 1.2.3.9 message_delivery_status
}
