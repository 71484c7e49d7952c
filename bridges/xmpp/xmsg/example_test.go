package xmsg_test

import (
	"fmt"

	"mellium.im/xmpp/jid"

	"github.com/switchboard-matrix/switchboard/bridges/xmpp/xmsg"
)

func Example() {
	in := []byte(`<message xmlns='jabber:component:accept' from='alice@xmpp.example/phone'
		to='bob\40example.org@matrix.example.org' id='m2' type='chat'>
		<body>&gt; Bob wrote:
&gt; lunch?
Yes!</body>
		<reply xmlns='urn:xmpp:reply:0' to='bob\40example.org@matrix.example.org' id='m1'/>
		<fallback xmlns='urn:xmpp:fallback:0' for='urn:xmpp:reply:0'><body start='0' end='22'/></fallback>
		<markable xmlns='urn:xmpp:chat-markers:0'/>
	</message>`)
	m, err := xmsg.ParseMessage(in)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Printf("reply to %s: %q\n", m.Reply.ID, m.StripFallback(xmsg.NSReply))

	quote, r := xmsg.ReplyFallback("Alice", "Yes!")
	answer := &xmsg.Message{
		Type:      "chat",
		To:        jid.MustParse("alice@xmpp.example"),
		Body:      quote + "Great",
		Reply:     &xmsg.Reply{To: m.From.Bare(), ID: m.ID},
		Fallbacks: []xmsg.Fallback{{For: xmsg.NSReply, Ranges: []xmsg.Range{r}}},
	}
	out, _ := answer.Marshal()
	fmt.Println(string(out))
	// Output:
	// reply to m1: "Yes!"
	// <message type="chat" to="alice@xmpp.example"><body>&gt; Alice wrote:
	// &gt; Yes!
	// Great</body><reply xmlns="urn:xmpp:reply:0" to="alice@xmpp.example" id="m2"/><fallback xmlns="urn:xmpp:fallback:0" for="urn:xmpp:reply:0"><body start="0" end="22"/></fallback></message>
}
