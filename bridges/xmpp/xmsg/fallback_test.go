package xmsg

import (
	"testing"

	"mellium.im/xmpp/jid"
)

func TestStripFallback(t *testing.T) {
	tests := []struct {
		name      string
		body      string
		fallbacks []Fallback
		ns, want  string
	}{
		{"no fallback", "\nhi\n", nil, NSReply, "\nhi\n"},
		{"fallback for another namespace", "hi", []Fallback{{For: NSRetract}}, NSReply, "hi"},
		{"whole body", "retracted", []Fallback{{For: NSRetract}}, NSRetract, ""},
		{"reply quote", "> Alice wrote:\n> hi\nyes", []Fallback{{For: NSReply, Ranges: []Range{{0, 20}}}}, NSReply, "yes"},
		{"newline left by the cut", "> hi\n\nyes", []Fallback{{For: NSReply, Ranges: []Range{{0, 4}}}}, NSReply, "yes"},
		{"code points, not bytes", "> 🎉é\nok", []Fallback{{For: NSReply, Ranges: []Range{{0, 5}}}}, NSReply, "ok"},
		{"cut at the end", "yes\n> quote", []Fallback{{For: "x", Ranges: []Range{{4, 11}}}}, "x", "yes"},
		{"cut in the middle keeps newlines", "a\nb\nc", []Fallback{{For: "x", Ranges: []Range{{2, 3}}}}, "x", "a\n\nc"},
		{"overlapping ranges", "abcdef", []Fallback{{For: "x", Ranges: []Range{{0, 3}, {2, 4}}}, {For: "x", Ranges: []Range{{1, 2}}}}, "x", "ef"},
		{"ranges clamped", "abc", []Fallback{{For: "x", Ranges: []Range{{-5, 1}, {2, 99}, {50, 60}}}}, "x", "b"},
		{"inverted range ignored", "abc", []Fallback{{For: "x", Ranges: []Range{{2, 1}}}}, "x", "abc"},
		{"empty body", "", []Fallback{{For: "x", Ranges: []Range{{0, 3}}}}, "x", ""},
		{"legacy fallback without for", "hi", []Fallback{{}}, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := &Message{Body: tt.body, Fallbacks: tt.fallbacks}
			if got := m.StripFallback(tt.ns); got != tt.want {
				t.Fatalf("StripFallback(%q) = %q; want %q", tt.ns, got, tt.want)
			}
		})
	}
}

func TestReplyFallback(t *testing.T) {
	tests := []struct {
		name, nick, quoted, want string
	}{
		{"one line", "Alice", "hi", "> Alice wrote:\n> hi\n"},
		{"several lines", "Alice", "a\r\n\nb\n", "> Alice wrote:\n> a\n>\n> b\n"},
		{"no nick", "", "hi", "> hi\n"},
		{"emoji counted as one code point", "🎉", "é", "> 🎉 wrote:\n> é\n"},
		{"nothing quoted", "Alice", "", "> Alice wrote:\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			text, r := ReplyFallback(tt.nick, tt.quoted)
			if text != tt.want {
				t.Fatalf("ReplyFallback = %q; want %q", text, tt.want)
			}
			m := &Message{Body: text + "answer", Fallbacks: []Fallback{{For: NSReply, Ranges: []Range{r}}}}
			if got := m.StripFallback(NSReply); got != "answer" {
				t.Fatalf("StripFallback after ReplyFallback = %q; want %q", got, "answer")
			}
		})
	}
}

func TestStanzaIDBy(t *testing.T) {
	room := jid.MustParse("room@muc.example")
	m := &Message{StanzaIDs: []StanzaID{{ID: "a", By: jid.MustParse("other@x.example")}, {ID: "b", By: room}}}
	tests := []struct {
		name string
		by   jid.JID
		want string
	}{
		{"bare", room, "b"},
		{"full JID compared as bare", jid.MustParse("room@muc.example/nick"), "b"},
		{"unknown", jid.MustParse("x.example"), ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := m.StanzaIDBy(tt.by); got != tt.want {
				t.Fatalf("StanzaIDBy(%s) = %q; want %q", tt.by, got, tt.want)
			}
		})
	}
}
