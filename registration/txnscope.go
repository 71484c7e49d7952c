package registration

import (
	"crypto/sha256"
	"encoding/hex"

	"maunium.net/go/mautrix/appservice"
)

// TxnScope is the scope under which transaction IDs from the homeserver are remembered: the
// hex of the first 16 bytes of sha256(id + "\x00" + hs_token).
//
// A homeserver numbers its transactions per registration, and a homeserver that is given a
// new registration (or is reset) may start again from 1. Remembering transaction IDs per
// scope means that after a regeneration, which always comes with a new hs_token unless the old
// one is kept, new transactions are never mistaken for replays of old ones and dropped. The
// scope is a hash so that the token itself is never stored next to the journal.
func TxnScope(reg *appservice.Registration) string {
	sum := sha256.Sum256([]byte(reg.ID + "\x00" + reg.ServerToken))
	return hex.EncodeToString(sum[:16])
}
