package xmpp

import (
	"testing"

	"mellium.im/xmpp/jid"
)

func TestRemoteKeyRoundTrip(t *testing.T) {
	tests := []struct {
		name, chat, sender, msgID, suffix string
	}{
		{name: "dm", chat: "dm:@alice:example.org|bob@example.org", sender: "bob@example.org", msgID: "abc-1"},
		{name: "muc occupant with colon and bar", chat: "muc:room@conf.example.org", sender: "room@conf.example.org/a:b|c", msgID: "x|x:y"},
		{name: "attachment", chat: "muc:r@c.example.org", sender: "r@c.example.org/n", msgID: "id", suffix: "|oob1"},
		{name: "reaction", chat: "dm:@a:b|c@d", sender: "c@d", msgID: "r1", suffix: "|👍"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			key := remoteKey(tc.chat, jid.MustParse(tc.sender), tc.msgID) + tc.suffix
			chat, sender, msgID, ok := parseRemoteKey(key)
			if !ok || chat != tc.chat || sender.String() != tc.sender || msgID != tc.msgID {
				t.Errorf("parseRemoteKey(%q) = %q, %q, %q, %v", key, chat, sender, msgID, ok)
			}
		})
	}
	for _, bad := range []string{"", "status:$e", "dm:x|m:mx123", "c|x:nocolon", "c|x:%zz:1"} {
		if _, _, _, ok := parseRemoteKey(bad); ok {
			t.Errorf("parseRemoteKey(%q) accepted", bad)
		}
	}
}
