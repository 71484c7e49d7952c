package appservice

import "time"

// Encryption configures end-to-end encryption in the core (see docs/encryption.md). With
// Enabled, the core decrypts m.room.encrypted events before modules see them and encrypts
// the outbox's messages in rooms that have m.room.encryption; modules write no crypto code.
type Encryption struct {
	// Enabled turns encryption on. It stays off, with a message at start-up, on a
	// homeserver that cannot create appservice devices (MSC4190).
	Enabled bool
	// Default makes rooms created through Intent.CreateRoom encrypted.
	Default bool
	// Require refuses to bridge events of rooms that are not encrypted.
	Require bool
	// DecryptTimeout is how long an event whose room key has not arrived waits before its
	// sender gets a failure status and a notice; default 10 minutes.
	DecryptTimeout time.Duration
	// RotationPeriod and RotationMessages are the Megolm rotation policy written into the
	// m.room.encryption of new rooms; defaults one week and 100 messages.
	RotationPeriod   time.Duration
	RotationMessages int
	// PickleKey encrypts the crypto keys at rest; empty means a key generated once and
	// kept in the database.
	PickleKey string
}

func (e *Encryption) defaults() {
	if e.DecryptTimeout <= 0 {
		e.DecryptTimeout = 10 * time.Minute
	}
	if e.RotationPeriod <= 0 {
		e.RotationPeriod = 7 * 24 * time.Hour
	}
	if e.RotationMessages <= 0 {
		e.RotationMessages = 100
	}
}

// encryptionReporter is the optional capability of a Host behind [EncryptionActive].
type encryptionReporter interface{ EncryptionActive() bool }

// EncryptionActive reports whether the core behind host encrypts and decrypts (encryption
// enabled and supported by the homeserver). A module that must never put its data into an
// unencrypted room (the 116117 bot's case rooms) asks it before creating rooms; hosts that
// do not say (test fakes) report false.
func EncryptionActive(host Host) bool {
	r, ok := host.(encryptionReporter)
	return ok && r.EncryptionActive()
}

// EncryptionActive implements encryptionReporter.
func (h *host) EncryptionActive() bool { return h.core.EncryptionActive() }
