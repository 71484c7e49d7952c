package appservice

import (
	"database/sql"
	"testing"

	"maunium.net/go/mautrix"
	mas "maunium.net/go/mautrix/appservice"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"

	"github.com/switchboard-matrix/switchboard/appservice/e2ee"
)

// TestParseTransactionEncryption: the to-device events, device-list changes and
// one-time-key counts of a transaction, under their stable and unstable (MSC2409, MSC3202)
// keys; malformed to-device events are skipped, not refused.
func TestParseTransactionEncryption(t *testing.T) {
	tests := []struct {
		name     string
		body     string
		toDevice int
		skipped  int
		changed  []id.UserID
		otk      int // signed_curve25519 of @b:y's device D
	}{
		{"stable keys", `{"to_device":[{"type":"m.room.encrypted","sender":"@a:x","to_user_id":"@b:y","to_device_id":"D","content":{}}],
			"device_lists":{"changed":["@a:x"]},"device_one_time_keys_count":{"@b:y":{"D":{"signed_curve25519":7}}}}`, 1, 0, []id.UserID{"@a:x"}, 7},
		{"unstable keys", `{"de.sorunome.msc2409.to_device":[{"type":"m.room_key_request","sender":"@a:x","to_user_id":"@b:y","content":{}}],
			"org.matrix.msc3202.device_lists":{"changed":["@c:x"],"left":["@d:x"]},
			"org.matrix.msc3202.device_one_time_keys_count":{"@b:y":{"D":{"signed_curve25519":3}}}}`, 1, 0, []id.UserID{"@c:x"}, 3},
		{"stable wins", `{"to_device":[],"de.sorunome.msc2409.to_device":[{"type":"t","sender":"@a:x","to_user_id":"@b:y","content":{}}]}`, 0, 0, nil, 0},
		{"no recipient skipped", `{"to_device":[{"type":"t","sender":"@a:x","content":{}}]}`, 0, 1, nil, 0},
		{"no sender skipped", `{"to_device":[{"type":"t","to_user_id":"@b:y","content":{}}]}`, 0, 1, nil, 0},
		{"not an object skipped", `{"to_device":[1, {"type":"t","sender":"@a:x","to_user_id":"@b:y"}]}`, 1, 1, nil, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			txn, err := ParseTransaction([]byte(tt.body))
			if err != nil {
				t.Fatal(err)
			}
			if len(txn.ToDevice) != tt.toDevice || len(txn.Skipped) != tt.skipped {
				t.Errorf("to-device %d skipped %v, want %d and %d", len(txn.ToDevice), txn.Skipped, tt.toDevice, tt.skipped)
			}
			if len(txn.DevicesChanged) != len(tt.changed) || (len(tt.changed) > 0 && txn.DevicesChanged[0] != tt.changed[0]) {
				t.Errorf("changed %v, want %v", txn.DevicesChanged, tt.changed)
			}
			if got := txn.OTKCounts["@b:y"]["D"].SignedCurve25519; got != tt.otk {
				t.Errorf("OTK count %d, want %d", got, tt.otk)
			}
		})
	}
}

// TestDeviceListRowStable: the journal row of a transaction's device-list changes has the
// same ID whatever the order of the users, so a retried transaction adds nothing.
func TestDeviceListRowStable(t *testing.T) {
	a := deviceListRow("s", "1", []id.UserID{"@a:x", "@b:x"})
	b := deviceListRow("s", "1", []id.UserID{"@b:x", "@a:x"})
	if a.EventID != b.EventID || string(a.Payload) != string(b.Payload) || a.Kind != kindDeviceLists {
		t.Errorf("rows differ: %+v %+v", a, b)
	}
	if c := deviceListRow("s", "2", []id.UserID{"@a:x", "@b:x"}); c.EventID == a.EventID {
		t.Error("another transaction's row has the same ID")
	}
}

// TestWithEncryption: rooms created with encryption.default get m.room.encryption with the
// rotation policy, unless the request has its own.
func TestWithEncryption(t *testing.T) {
	c := &Core{opts: Options{Encryption: Encryption{Enabled: true, Default: true}}}
	c.opts.Encryption.defaults()
	req := &mautrix.ReqCreateRoom{Name: "x"}
	if got := c.withEncryption(req); got != req {
		t.Error("changed the request while encryption is not active")
	}
	c.crypto.Store(newTestManager(t))
	got := c.withEncryption(req)
	if len(got.InitialState) != 1 || got.InitialState[0].Type != event.StateEncryption {
		t.Fatalf("initial state %v", got.InitialState)
	}
	content := got.InitialState[0].Content.Parsed.(*event.EncryptionEventContent)
	if content.Algorithm != id.AlgorithmMegolmV1 || content.RotationPeriodMessages != 100 || content.RotationPeriodMillis != 7*24*3600*1000 {
		t.Errorf("content %+v", content)
	}
	if len(req.InitialState) != 0 {
		t.Error("the caller's request was modified")
	}
	own := &mautrix.ReqCreateRoom{InitialState: []*event.Event{{Type: event.StateEncryption}}}
	if c.withEncryption(own) != own {
		t.Error("a request with its own m.room.encryption was changed")
	}
	c.opts.Encryption.Default = false
	if c.withEncryption(req) != req {
		t.Error("changed the request without encryption.default")
	}
}

// TestSendsPlaintext: delivery statuses and redactions stay unencrypted.
func TestSendsPlaintext(t *testing.T) {
	for typ, want := range map[string]bool{
		event.BeeperMessageStatus.Type: true, event.EventRedaction.Type: true,
		event.EventMessage.Type: false, event.EventReaction.Type: false, "m.sticker": false,
	} {
		if got := sendsPlaintext(typ); got != want {
			t.Errorf("sendsPlaintext(%s) = %v, want %v", typ, got, want)
		}
	}
}

// newTestManager is an e2ee manager that is never started (for the core's own logic).
func newTestManager(t *testing.T) *e2ee.Manager {
	t.Helper()
	as, err := mas.CreateFull(mas.CreateOpts{
		Registration:     &mas.Registration{ID: "t", AppToken: "a", ServerToken: "h", SenderLocalpart: "bot"},
		HomeserverDomain: "x", HomeserverURL: "http://127.0.0.1:1",
	})
	if err != nil {
		t.Fatal(err)
	}
	m, err := e2ee.New(e2ee.Options{AS: as, DB: &sql.DB{}})
	if err != nil {
		t.Fatal(err)
	}
	return m
}
