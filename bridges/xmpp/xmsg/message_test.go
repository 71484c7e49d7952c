package xmsg

import (
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"mellium.im/xmpp/jid"
)

func ptr[T any](v T) *T { return &v }

func TestParseMessage(t *testing.T) {
	alice := jid.MustParse("alice@xmpp.example/phone")
	bridge := jid.MustParse("bob\\40example.org@matrix.example.org")
	room := jid.MustParse("room@muc.xmpp.example")
	tests := []struct {
		name string
		raw  string
		want *Message
	}{
		{
			name: "plain chat in the component namespace",
			raw: `<message xmlns='jabber:component:accept' from='alice@xmpp.example/phone' to='bob\40example.org@matrix.example.org' id='m1' type='chat'>
				<body>hi &amp; &lt;bye&gt;</body><thread>t1</thread></message>`,
			want: &Message{ID: "m1", Type: "chat", From: alice, To: bridge, Body: "hi & <bye>", Thread: "t1"},
		},
		{
			name: "no namespace, unknown children ignored",
			raw:  `<message><foo xmlns='urn:x'><body>not this</body></foo><body>this</body><body>not the second</body></message>`,
			want: &Message{Body: "this"},
		},
		{
			name: "body in the message language",
			raw:  `<message xml:lang='de'><body xml:lang='en'>hello</body><body xml:lang='de'>hallo</body></message>`,
			want: &Message{Lang: "de", Body: "hallo"},
		},
		{
			name: "body in another language only",
			raw:  `<message xmlns='jabber:client'><body xml:lang='fr'>salut</body></message>`,
			want: &Message{Body: "salut"},
		},
		{
			name: "XHTML-IM with prefixes and a foreign element",
			raw: `<message xmlns='jabber:client'><body>hi there</body><html xmlns='http://jabber.org/protocol/xhtml-im'>` +
				`<x:body xmlns:x='http://www.w3.org/1999/xhtml' xml:lang='en'><x:strong style='a&amp;b'>hi</x:strong> there<x:br></x:br>` +
				`<evil xmlns='urn:other'>dropped</evil><!-- comment --><![CDATA[<&>]]></x:body></html></message>`,
			want: &Message{Body: "hi there", XHTML: `<strong style="a&amp;b">hi</strong> there<br/>&lt;&amp;&gt;`},
		},
		{
			name: "empty subject clears the MUC subject",
			raw:  `<message type='groupchat' from='room@muc.xmpp.example'><subject/></message>`,
			want: &Message{Type: "groupchat", From: room, Subject: ptr("")},
		},
		{
			name: "ids, receipts, markers, chat state, hints, delay",
			raw: `<message id='m2'><body>x</body>
				<origin-id xmlns='urn:xmpp:sid:0' id='o1'/>
				<stanza-id xmlns='urn:xmpp:sid:0' id='s1' by='room@muc.xmpp.example'/>
				<stanza-id xmlns='urn:xmpp:sid:0' id='s2' by='not a jid@'/>
				<composing xmlns='http://jabber.org/protocol/chatstates'/>
				<request xmlns='urn:xmpp:receipts'/><markable xmlns='urn:xmpp:chat-markers:0'/>
				<no-store xmlns='urn:xmpp:hints'/>
				<delay xmlns='urn:xmpp:delay' from='x' stamp='2024-05-01T12:00:00.5+02:00'/></message>`,
			want: &Message{ID: "m2", Body: "x", OriginID: "o1", StanzaIDs: []StanzaID{{ID: "s1", By: room}},
				ChatState: "composing", RequestReceipt: true, Markable: true, NoStore: true,
				Delay: time.Date(2024, 5, 1, 10, 0, 0, 5e8, time.UTC)},
		},
		{
			name: "receipt and displayed marker",
			raw:  `<message><received xmlns='urn:xmpp:receipts' id='r1'/><displayed xmlns='urn:xmpp:chat-markers:0' id='d1'/></message>`,
			want: &Message{Received: "r1", Displayed: "d1"},
		},
		{
			name: "correction",
			raw:  `<message><body>fixed</body><replace xmlns='urn:xmpp:message-correct:0' id='m1'/></message>`,
			want: &Message{Body: "fixed", Replace: "m1"},
		},
		{
			name: "retraction",
			raw:  `<message><retract xmlns='urn:xmpp:message-retract:1' id='m1'/><fallback xmlns='urn:xmpp:fallback:0' for='urn:xmpp:message-retract:1'/><body>retracted</body></message>`,
			want: &Message{Body: "retracted", Retract: "m1", Fallbacks: []Fallback{{For: NSRetract}}},
		},
		{
			name: "retraction in the fasten form",
			raw:  `<message><apply-to xmlns='urn:xmpp:fasten:0' id='m0'><retract xmlns='urn:xmpp:message-retract:0'/></apply-to></message>`,
			want: &Message{Retract: "m0"},
		},
		{
			name: "fasten without retract and tombstone ignored",
			raw:  `<message><apply-to xmlns='urn:xmpp:fasten:0' id='m0'><other xmlns='urn:x'/></apply-to><retracted xmlns='urn:xmpp:message-retract:1' id='m9'/></message>`,
			want: &Message{},
		},
		{
			name: "reactions without duplicates",
			raw:  `<message><reactions xmlns='urn:xmpp:reactions:0' id='m1'><reaction>👍</reaction><reaction> 🎉 </reaction><reaction>👍</reaction><reaction/></reactions></message>`,
			want: &Message{Reactions: &Reactions{ID: "m1", Emojis: []string{"👍", "🎉"}}},
		},
		{
			name: "all reactions withdrawn",
			raw:  `<message><reactions xmlns='urn:xmpp:reactions:0' id='m1'/></message>`,
			want: &Message{Reactions: &Reactions{ID: "m1"}},
		},
		{
			name: "reply with fallback ranges",
			raw: `<message><body>&gt; Alice wrote:
&gt; hi
yes</body><reply xmlns='urn:xmpp:reply:0' to='alice@xmpp.example/phone' id='m1'/>
				<fallback xmlns='urn:xmpp:fallback:0' for='urn:xmpp:reply:0'><body start='0' end='22'/></fallback></message>`,
			want: &Message{Body: "> Alice wrote:\n> hi\nyes", Reply: &Reply{To: alice, ID: "m1"},
				Fallbacks: []Fallback{{For: NSReply, Ranges: []Range{{0, 22}}}}},
		},
		{
			name: "reply without to, invalid fallbacks dropped",
			raw: `<message><reply xmlns='urn:xmpp:reply:0' id='m1'/>
				<fallback xmlns='urn:xmpp:fallback:0' for='a'><body start='5' end='2'/></fallback>
				<fallback xmlns='urn:xmpp:fallback:0' for='b'><body start='x' end='2'/></fallback>
				<fallback xmlns='urn:xmpp:fallback:0' for='c'><subject start='0' end='2'/></fallback>
				<fallback xmlns='urn:xmpp:fallback:0'><body/></fallback></message>`,
			want: &Message{Reply: &Reply{ID: "m1"}, Fallbacks: []Fallback{{}}},
		},
		{
			name: "out-of-band data",
			raw: `<message><body>https://x.example/a.png</body>
				<x xmlns='jabber:x:oob'><url> https://x.example/a.png </url><desc>a cat</desc></x>
				<x xmlns='jabber:x:oob'><desc>no url</desc></x>
				<x xmlns='jabber:x:oob'><url>https://x.example/b.pdf</url></x></message>`,
			want: &Message{Body: "https://x.example/a.png", OOB: []OOB{{URL: "https://x.example/a.png", Desc: "a cat"}, {URL: "https://x.example/b.pdf"}}},
		},
		{
			name: "error",
			raw: `<message type='error' id='m1'><error type='cancel' by='x'><service-unavailable xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/>` +
				`<text xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'>gone</text></error></message>`,
			want: &Message{Type: "error", ID: "m1", Error: &StanzaError{Type: "cancel", Condition: "service-unavailable", Text: "gone"}},
		},
		{
			name: "MUC configuration change",
			raw:  `<message type='groupchat' from='room@muc.xmpp.example'><x xmlns='http://jabber.org/protocol/muc#user'><status code='104'/><status code='x'/></x></message>`,
			want: &Message{Type: "groupchat", From: room, MUCUser: &MUCUser{Statuses: []int{104}}},
		},
		{
			name: "MUC mediated invitation",
			raw: `<message from='room@muc.xmpp.example'><x xmlns='http://jabber.org/protocol/muc#user'>` +
				`<invite from='alice@xmpp.example/phone'><reason>join us</reason></invite><password>pw</password></x></message>`,
			want: &Message{From: room, MUCUser: &MUCUser{Invite: &MUCInvite{From: alice, Reason: "join us"}}},
		},
		{
			name: "delay out of range ignored",
			raw:  `<message><delay xmlns='urn:xmpp:delay' stamp='0001-01-01T00:00:00+01:00'/></message>`,
			want: &Message{},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseMessage([]byte(tt.raw))
			if err != nil {
				t.Fatalf("ParseMessage: %v", err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("ParseMessage =\n%+v\nwant\n%+v", got, tt.want)
			}
		})
	}
}

func TestParseMessageErrors(t *testing.T) {
	tests := []struct {
		name, raw string
		want      error
	}{
		{"presence", `<presence/>`, ErrNotMessage},
		{"other namespace", `<message xmlns='urn:x'/>`, ErrNotMessage},
		{"not XML", `<message>`, ErrMalformed},
		{"two roots", `<message/><message/>`, ErrMalformed},
		{"bad from", `<message from='@x'/>`, ErrMalformed},
		{"from that does not read back", `<message from='..'/>`, ErrMalformed},
		{"empty", ``, ErrMalformed},
		{"too deep", strings.Repeat("<a>", 200) + strings.Repeat("</a>", 200), ErrMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if m, err := ParseMessage([]byte(tt.raw)); !errors.Is(err, tt.want) {
				t.Fatalf("ParseMessage = %+v, %v; want %v", m, err, tt.want)
			}
		})
	}
}

func TestMessageRoundTrip(t *testing.T) {
	alice := jid.MustParse("alice@xmpp.example/phone")
	bridge := jid.MustParse("bob\\40example.org@matrix.example.org")
	room := jid.MustParse("room@muc.xmpp.example")
	tests := []struct {
		name string
		msg  *Message
	}{
		{"empty", &Message{}},
		{"tricky text", &Message{ID: `a"'<&>`, Type: "chat", From: alice, To: bridge, Lang: "en",
			Body: "a < b && c > d ]]> 'q' \"q\"\n\ttab\r\nemoji 🎉 ", Thread: "t&1"}},
		{"rich reply", &Message{ID: "m2", Type: "groupchat", From: jid.MustParse("room@muc.xmpp.example/Alice"), To: bridge,
			OriginID: "o2", StanzaIDs: []StanzaID{{ID: "s2", By: room}, {ID: "s3", By: bridge.Bare()}},
			Body: "> Alice wrote:\n> hi\nyes", XHTML: `<p>yes <em>really</em><br/><a href="https://x.example/?a=1&amp;b=2">link</a></p>`,
			ChatState: "active", RequestReceipt: true, Markable: true,
			Reply:     &Reply{To: alice, ID: "m1"},
			Fallbacks: []Fallback{{For: NSReply, Ranges: []Range{{0, 20}, {3, 3}}}, {For: "urn:x"}},
			Delay:     time.Date(2024, 5, 1, 10, 0, 0, 123456789, time.UTC), NoStore: true}},
		{"subject and error", &Message{Type: "error", Subject: ptr(""),
			Error: &StanzaError{Type: "modify", Condition: "not-acceptable", Text: "no <way>"}}},
		{"error without details", &Message{Error: &StanzaError{}}},
		{"correction, retraction, reactions", &Message{Replace: "m1", Retract: "m0",
			Reactions: &Reactions{ID: "m1", Emojis: []string{"👍", "❤️"}}, Received: "r1", Displayed: "d1"}},
		{"empty reactions", &Message{Reactions: &Reactions{ID: "m1"}}},
		{"out-of-band data", &Message{Body: "see", OOB: []OOB{{URL: "https://x.example/a b", Desc: "a & b"}, {URL: "https://x.example/c"}}}},
		{"MUC user", &mucMessage},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			raw, err := tt.msg.Marshal()
			if err != nil {
				t.Fatalf("Marshal: %v", err)
			}
			if !strings.HasPrefix(string(raw), "<message") || strings.HasPrefix(string(raw), "<message xmlns") {
				t.Fatalf("Marshal wrote %s; want a root without xmlns", raw)
			}
			got, err := ParseMessage(raw)
			if err != nil {
				t.Fatalf("ParseMessage(%s): %v", raw, err)
			}
			if !reflect.DeepEqual(got, tt.msg) {
				t.Fatalf("round trip through %s:\n%+v\nwant\n%+v", raw, got, tt.msg)
			}
		})
	}
}

// mucMessage is a message with every MUC user field.
var mucMessage = Message{Type: "groupchat", MUCUser: &MUCUser{
	Affiliation: "member", Role: "participant", Nick: "new", JID: jid.MustParse("alice@xmpp.example/phone"),
	Actor: "mod", Reason: "because", Statuses: []int{110, 303},
	Invite: &MUCInvite{From: jid.MustParse("alice@xmpp.example"), To: jid.MustParse("bob@xmpp.example"), Reason: "hi"},
}}

func TestMarshalMessageExact(t *testing.T) {
	m := &Message{ID: "m1", Type: "chat", To: jid.MustParse("alice@xmpp.example"), Body: "a<b",
		Reply: &Reply{ID: "x"}, Markable: true}
	raw, err := m.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	const want = `<message id="m1" type="chat" to="alice@xmpp.example"><body>a&lt;b</body>` +
		`<markable xmlns="urn:xmpp:chat-markers:0"/><reply xmlns="urn:xmpp:reply:0" id="x"/></message>`
	if string(raw) != want {
		t.Fatalf("Marshal =\n%s\nwant\n%s", raw, want)
	}
}

func TestMarshalReplacesIllegalCharacters(t *testing.T) {
	tests := []struct {
		name, body, want string
	}{
		{"NUL and escape", "a\x00b\x1bc", "a\uFFFDb\uFFFDc"},
		{"non-characters", "x\uFFFEy\uFFFF", "x\uFFFDy\uFFFD"},
		{"invalid UTF-8", "a\xffb", "a\uFFFDb"},
		{"allowed controls", "a\tb\nc", "a\tb\nc"},
		{"carriage return survives", "a\rb", "a\rb"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			raw, err := (&Message{Body: tt.body, Thread: tt.body, ID: tt.body}).Marshal()
			if err != nil {
				t.Fatal(err)
			}
			if strings.ContainsAny(string(raw), "\x00\x1b\uFFFE\uFFFF") {
				t.Fatalf("Marshal wrote illegal characters: %q", raw)
			}
			got, err := ParseMessage(raw)
			if err != nil {
				t.Fatalf("ParseMessage(%q): %v", raw, err)
			}
			if got.Body != tt.want || got.Thread != tt.want || got.ID != tt.want {
				t.Fatalf("read back %q, %q, %q; want %q", got.Body, got.Thread, got.ID, tt.want)
			}
		})
	}
}

func TestMarshalMessageErrors(t *testing.T) {
	tests := []struct {
		name string
		msg  *Message
	}{
		{"unclosed XHTML", &Message{XHTML: "<b>x"}},
		{"XHTML escaping its body", &Message{XHTML: `</body></html><evil/><html><body>`}},
		{"XHTML with an HTML entity", &Message{XHTML: "a&nbsp;b"}},
		{"unknown chat state", &Message{ChatState: "typing"}},
		{"inverted range", &Message{Fallbacks: []Fallback{{For: NSReply, Ranges: []Range{{5, 2}}}}}},
		{"OOB without URL", &Message{OOB: []OOB{{Desc: "x"}}}},
		{"condition injecting an attribute", &Message{Error: &StanzaError{Condition: `a x="1"`}}},
		{"condition closing the element", &Message{Error: &StanzaError{Condition: `a/><b`}}},
		{"condition text", &Message{Error: &StanzaError{Condition: "text"}}},
		{"delay before year 1", &Message{Delay: time.Date(0, 1, 1, 0, 0, 0, 0, time.UTC)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if raw, err := tt.msg.Marshal(); !errors.Is(err, ErrInvalid) {
				t.Fatalf("Marshal = %s, %v; want ErrInvalid", raw, err)
			}
		})
	}
}
