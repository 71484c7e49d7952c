package cryptoe2e

import (
	"context"
	"testing"
	"time"

	"maunium.net/go/mautrix"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"

	"github.com/switchboard-matrix/switchboard/internal/store"
	"github.com/switchboard-matrix/switchboard/internal/store/storetest"
	"github.com/switchboard-matrix/switchboard/internal/testmodule"
	"github.com/switchboard-matrix/switchboard/internal/testpeer/matrixtest"
)

// TestGhostDeviceCrossSignedSynapse: a ghost invited into an encrypted room joins with a
// device of its own, created through the appservice and signed by the ghost's
// self-signing key, which its master key signs.
func TestGhostDeviceCrossSignedSynapse(t *testing.T) {
	h := syn.Get(t)
	st := storetest.Open(t, store.SQLite)
	core, _, _ := startCore(t, h, st, testmodule.Config{}, encryptionOn(time.Minute))
	if !core.EncryptionActive() {
		t.Fatal("encryption is not active on Synapse")
	}
	alice, _ := newUser(t, h, "alice")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	ghost := id.NewUserID(testmodule.GhostPrefix+"dev", domain)
	resp, err := alice.CreateRoom(ctx, &mautrix.ReqCreateRoom{
		Invite: []id.UserID{ghost},
		InitialState: []*event.Event{{Type: event.StateEncryption, Content: event.Content{
			Parsed: &event.EncryptionEventContent{Algorithm: id.AlgorithmMegolmV1}}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	matrixtest.WaitFor(t, time.Minute, "the ghost joins", func() (bool, error) {
		return matrixtest.IsJoined(ctx, alice, resp.RoomID, ghost)
	})
	keys, err := alice.QueryKeys(ctx, &mautrix.ReqQueryKeys{DeviceKeys: mautrix.DeviceKeysRequest{ghost: {}}})
	if err != nil {
		t.Fatal(err)
	}
	devs := keys.DeviceKeys[ghost]
	if len(devs) != 1 {
		t.Fatalf("ghost has %d devices, want 1: %v", len(devs), devs)
	}
	ssk := keys.SelfSigningKeys[ghost]
	master := keys.MasterKeys[ghost]
	if len(ssk.Keys) == 0 || len(master.Keys) == 0 {
		t.Fatalf("ghost has no cross-signing keys: master %v self-signing %v", master, ssk)
	}
	for devID, dk := range devs {
		var sskPub id.Ed25519
		for _, k := range ssk.Keys {
			sskPub = k
		}
		if _, ok := dk.Signatures[ghost][id.NewKeyID(id.KeyAlgorithmEd25519, sskPub.String())]; !ok {
			t.Errorf("device %s is not signed by the ghost's self-signing key: %v", devID, dk.Signatures)
		}
		t.Logf("ghost device %s, signatures %v", devID, dk.Signatures[ghost])
	}
}
