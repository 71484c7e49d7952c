package refucrm

import (
	"context"
	"strings"
	"testing"

	"github.com/switchboard-matrix/switchboard/bots/case116117/ucri"
)

// TestReferenceCryptoInterop: the reference's own code (shared-js/crypto.js) verifies a
// signature made by ucri.Sign and computes the same hash, and ucri.Verify accepts a
// signature the reference made, for data with escapes, control characters and non-ASCII
// text.
func TestReferenceCryptoInterop(t *testing.T) {
	srv, _, _ := twoCentres(t)
	ctx := context.Background()
	const dest = oidB
	env := &ucri.Envelope{
		Description: "Einsatzübergabe", MessageID: ucri.NewMessageID(), SentDate: "2024-01-01T10:05:08Z",
		Timeout: 300, Ack: ucri.AckNACK, Source: oidA, Tags: []string{"a"},
		Payload: ucri.Payload{AppID: ucri.AppIncidentWithPatient, AppVersion: ucri.AppVersion, SchemaID: ucri.SchemaAcknowledgement,
			ContentType: ucri.ContentTypeJSON, Data: "{\"cause\":\"Straße \\\"gesperrt\\\" \\\\ <&> \\u0001\\u2028 ünd 🚑\\n\"}"},
	}
	if err := ucri.Sign(env, dest, keyA); err != nil {
		t.Fatal(err)
	}
	hash, err := srv.Verify(ctx, *env, []string{dest}, &keyA.PublicKey)
	if err != nil {
		t.Fatalf("the reference refused Switchboard's signature: %v", err)
	}
	if want := ucri.SigningHash(env, dest); hash != want {
		t.Errorf("reference hash %s, Switchboard's %s", hash, want)
	}
	unsigned := *env
	unsigned.Signature = ""
	sig, err := srv.Sign(ctx, unsigned, []string{dest}, keyA)
	if err != nil {
		t.Fatal(err)
	}
	theirs := unsigned
	theirs.Signature = sig
	if err := ucri.Verify(&theirs, dest, &keyA.PublicKey); err != nil {
		t.Errorf("the reference's signature %s: %v", strings.SplitN(sig, ".", 2)[0], err)
	}
}
