package case116117

import (
	"context"

	"github.com/rs/zerolog"
	"maunium.net/go/mautrix"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"

	"github.com/switchboard-matrix/switchboard/appservice"
)

// Encryption of the rooms the bot creates (case rooms and admin rooms): they hold patient
// data, so when the core encrypts (appservice.EncryptionActive) the bot asks for
// m.room.encryption itself, whatever the core's encryption.default says. The core
// encrypts and decrypts; the bot writes no crypto code.

// encryptRooms reports whether the rooms the bot creates get m.room.encryption: the
// module's encrypt_rooms (default true) and a core that encrypts.
func (b *Bot) encryptRooms() bool {
	return b.cfg.encryptRooms() && appservice.EncryptionActive(b.host)
}

// logEncryption says once at start when rooms with patient data will be created
// unencrypted.
func (b *Bot) logEncryption(ctx context.Context) {
	log := zerolog.Ctx(ctx).With().Str("module", ID).Logger()
	switch {
	case !appservice.EncryptionActive(b.host):
		log.Warn().Msg("Case rooms holding patient data are created UNENCRYPTED: the core has no end-to-end encryption " +
			"(encryption.enabled is off or the homeserver does not support it, see docs/encryption.md)")
	case !b.cfg.encryptRooms():
		log.Warn().Msg("Case rooms holding patient data are created UNENCRYPTED unless encryption.default is on: " +
			"modules.case116117.encrypt_rooms is false")
	default:
		log.Info().Msg("Case rooms and admin rooms are created encrypted")
	}
}

// withEncryption returns req with an m.room.encryption initial state event (Megolm) when
// encrypt is set and req has none; req itself is not changed.
func withEncryption(req *mautrix.ReqCreateRoom, encrypt bool) *mautrix.ReqCreateRoom {
	if !encrypt || req == nil {
		return req
	}
	for _, s := range req.InitialState {
		if s != nil && s.Type.Type == event.StateEncryption.Type {
			return req
		}
	}
	out := *req
	out.InitialState = append(append([]*event.Event(nil), req.InitialState...), &event.Event{
		Type: event.StateEncryption, StateKey: ptr(""),
		Content: event.Content{Parsed: &event.EncryptionEventContent{Algorithm: id.AlgorithmMegolmV1}},
	})
	return &out
}
