package ucri_test

import (
	"crypto/rand"
	"crypto/rsa"
	"errors"
	"fmt"
	"sync"

	"github.com/switchboard-matrix/switchboard/bots/case116117/ucri"
)

// exampleKey is the sender's key; a real bot reads it with ucri.ParsePrivateKeyPEM.
var exampleKey = sync.OnceValue(func() *rsa.PrivateKey {
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		panic(err)
	}
	return k
})

func ExampleNewPayload() {
	ack := &ucri.Acknowledgement{
		SharedIncidentID:           "550e8400-e29b-41d4-a716-446655440000",
		AcknowledgedByDispatcherAt: "2024-01-01T10:06:09Z",
		Status:                     ucri.AckAccepted,
	}
	p, err := ucri.NewPayload(ack)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(p.AppID, p.AppVersion, p.SchemaID)
	fmt.Println(p.Data)

	// What is received is decoded into the same types.
	m, err := ucri.DecodePayload(p)
	fmt.Println(m.(*ucri.Acknowledgement).Status, err)

	// Invalid messages are refused with the UCRI2 error code and the failing location.
	ack.Status = "maybe"
	_, err = ucri.NewPayload(ack)
	fmt.Println(err)
	// Output:
	// incident_transfer_with_patient 1.0 acknowledgement
	// {"sharedIncidentId":"550e8400-e29b-41d4-a716-446655440000","acknowledgedByDispatcherAt":"2024-01-01T10:06:09Z","status":"accepted"}
	// accepted <nil>
	// ucri: 464 data violates the schema acknowledgement: /status: value must be one of "accepted", "rejected"
}

func ExampleSign() {
	p, _ := ucri.NewPayload(&ucri.AvailabilityUpdate{ID: "1.2.3.4.5.6", Status: ucri.StatusOnline})
	env := &ucri.Envelope{
		// Derived, so that the message rebuilt after a restart carries the same id.
		MessageID: ucri.DerivedMessageID("$event:example.org", "1.2.3.4.5.7"),
		Source:    "1.2.3.4.5.6",
		Payload:   p,
	}
	if err := ucri.Sign(env, "1.2.3.4.5.7", exampleKey()); err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("messageId:", env.MessageID)
	fmt.Println("signed:", env.Signature != "")

	// The receiver verifies with the sender's key from the registry.
	pub, _ := ucri.PublicKeyFromJWK(ucri.JWKFromPublicKey(&exampleKey().PublicKey))
	fmt.Println("verified:", ucri.Verify(env, "1.2.3.4.5.7", pub) == nil)

	// Any change of a signed part is detected.
	env.Payload.Data = `{"id":"1.2.3.4.5.6","status":"offline"}`
	err := ucri.Verify(env, "1.2.3.4.5.7", pub)
	var ue *ucri.Error
	fmt.Println("tampered:", errors.As(err, &ue) && ue.Code == ucri.CodeWrongSignature)
	// Output:
	// messageId: 681cb4f8-a48b-5114-8f8d-d142450e3b71
	// signed: true
	// verified: true
	// tampered: true
}
