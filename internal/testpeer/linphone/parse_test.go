package linphone

import (
	"slices"
	"testing"
)

func TestParseReceived(t *testing.T) {
	for _, tc := range []struct {
		name string
		line string
		want Message
		ok   bool
	}{
		{"bare", "Message received from <sip:bob@sip.test>: hello", Message{From: "<sip:bob@sip.test>", Text: "hello"}, true},
		{"after prompt", "linphonec> Message received from <sip:bob@sip.test>: a: b\r", Message{From: "<sip:bob@sip.test>", Text: "a: b"}, true},
		{"display name", `Message received from "Bob" <sip:bob@sip.test>: hi >: there`, Message{From: `"Bob" <sip:bob@sip.test>`, Text: "hi >: there"}, true},
		{"no brackets", "Message received from sip:bob@sip.test: x", Message{From: "sip:bob@sip.test", Text: "x"}, true},
		{"other", "Call 1 with sip:bob@sip.test connected.", Message{}, false},
		{"no text", "Message received from <sip:bob@sip.test>", Message{}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := parseReceived(tc.line)
			if ok != tc.ok || got != tc.want {
				t.Errorf("parseReceived(%q) = %+v, %v; want %+v, %v", tc.line, got, ok, tc.want, tc.ok)
			}
		})
	}
}

func TestOutParserSplitWrites(t *testing.T) {
	p := newOutParser()
	for _, s := range []string{"linphonec> Message rec", "eived from <sip:a@b>: one\nMessage received from <sip:a@b>: two", "\n"} {
		if _, err := p.Write([]byte(s)); err != nil {
			t.Fatal(err)
		}
	}
	msgs, _ := p.snapshot()
	if want := []Message{{"<sip:a@b>", "one"}, {"<sip:a@b>", "two"}}; !slices.Equal(msgs, want) {
		t.Errorf("got %+v, want %+v", msgs, want)
	}
}

func TestMessageStates(t *testing.T) {
	log := `2026-12-03 16:50:36:001 liblinphone-message-Chat message 0x1 of chat room ConferenceId(peer=IdentityAddress(sip:a@m.test), local=IdentityAddress(sip:p@s.test)) : moving from Idle to InProgress
2026-12-03 16:50:36:002 liblinphone-message-Chat message 0x2 of chat room ConferenceId(peer=IdentityAddress(sip:z@m.test), local=IdentityAddress(sip:p@s.test)) : moving from Idle to InProgress
2026-12-03 16:50:36:003 liblinphone-message-Chat message 0x1 of chat room ConferenceId(peer=IdentityAddress(sip:a@m.test), local=IdentityAddress(sip:p@s.test)) : moving from InProgress to DeliveredToUser
`
	if got, want := MessageStates(log, "sip:a@m.test"), []string{"InProgress", "DeliveredToUser"}; !slices.Equal(got, want) {
		t.Errorf("MessageStates = %v, want %v", got, want)
	}
}
