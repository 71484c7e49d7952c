package widget

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base32"
	"strings"
	"unicode/utf8"

	"maunium.net/go/mautrix/id"
)

// b32 is RFC 4648 base32 (upper-case alphabet) without padding, as Element's
// base32.stringify(Buffer.from(roomId), {pad: false}) writes it.
var b32 = base32.StdEncoding.WithPadding(base32.NoPadding)

// ConferenceForUVS returns the conference name Element gives a room when Jitsi runs with
// auth [AuthOpenIDJWT]: the room ID's bytes in RFC 4648 base32, upper case, without padding
// (e.g. "!a:b" is "EFQTUYQ").
//
// Jitsi lower-cases room names before they reach Prosody (jitsi-meet's
// getBackendSafeRoomName), so the MUC room and the "room" that
// prosody-mod-auth-matrix-user-verification sees are the lower-case form; that module
// decodes it with basexx.from_base32, which upper-cases its input first, and compares the
// result with the Matrix room ID of the token. Compare conference names case-insensitively
// (or use [RoomFromUVSConference], which accepts either case).
func ConferenceForUVS(roomID id.RoomID) string {
	return b32.EncodeToString([]byte(roomID))
}

// RoomFromUVSConference is the inverse of [ConferenceForUVS], in either letter case (Jitsi
// reports the lower-case form). It reports false unless conf is the canonical unpadded
// base32 of something that looks like a room ID ("!" and more, valid UTF-8, no control
// characters).
func RoomFromUVSConference(conf string) (id.RoomID, bool) {
	if conf == "" || len(conf) > 1024 {
		return "", false
	}
	up := strings.ToUpper(conf)
	raw, err := b32.DecodeString(up)
	if err != nil || len(raw) < 2 || raw[0] != '!' || !utf8.Valid(raw) {
		return "", false
	}
	for _, r := range string(raw) {
		if r < 0x20 || r == 0x7f {
			return "", false
		}
	}
	roomID := id.RoomID(raw)
	if ConferenceForUVS(roomID) != up { // non-zero trailing bits: not what Element writes
		return "", false
	}
	return roomID, true
}

// ConferenceHMAC returns a conference name for auth modes other than [AuthOpenIDJWT]:
// "jitsi" and the first 26 characters (130 bits) of the lower-case base32 of
// HMAC-SHA256(secret, roomID). It is stable for a room, cannot be guessed from the room ID
// without the secret, and is already in the lower case Jitsi uses.
func ConferenceHMAC(secret []byte, roomID id.RoomID) string {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(roomID))
	return "jitsi" + strings.ToLower(b32.EncodeToString(m.Sum(nil))[:26])
}
