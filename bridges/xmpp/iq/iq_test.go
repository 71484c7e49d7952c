package iq

import (
	"encoding/xml"
	"errors"
	"strings"
	"testing"

	"mellium.im/xmpp/jid"
)

func TestParse(t *testing.T) {
	tests := []struct {
		name    string
		raw     string
		want    IQ
		inner   string
		wantErr error
	}{
		{
			name: "component get with vcard query",
			raw:  `<iq xmlns="jabber:component:accept" type="get" id="v1" from="Alice@Example.com/phone" to="bob@matrix.example.com"><vCard xmlns="vcard-temp"/></iq>`,
			want: IQ{ID: "v1", Type: "get", From: jid.MustParse("alice@example.com/phone"), To: jid.MustParse("bob@matrix.example.com"),
				Payload: xml.Name{Space: "vcard-temp", Local: "vCard"}},
			inner: `<vCard xmlns="vcard-temp"></vCard>`,
		},
		{
			name:  "client result without payload",
			raw:   `<iq xmlns='jabber:client' type='result' id='r'/>`,
			want:  IQ{ID: "r", Type: "result"},
			inner: "",
		},
		{
			name: "prefixed payload gets its namespace declared",
			raw:  `<iq xmlns:d="http://jabber.org/protocol/disco#info" type="result" id="d"><d:query node="n"><d:identity category="client" type="pc" xml:lang="en"/></d:query></iq>`,
			want: IQ{ID: "d", Type: "result", Payload: xml.Name{Space: "http://jabber.org/protocol/disco#info", Local: "query"}},
			inner: `<query xmlns="http://jabber.org/protocol/disco#info" node="n">` +
				`<identity category="client" type="pc" xml:lang="en"></identity></query>`,
		},
		{
			name: "error with echoed payload",
			raw: `<iq xmlns="jabber:client" type="error" id="e" from="x.example"><query xmlns="q"/>` +
				`<error type="cancel"><item-not-found xmlns="urn:ietf:params:xml:ns:xmpp-stanzas"/>` +
				`<text xmlns="urn:ietf:params:xml:ns:xmpp-stanzas" xml:lang="en">no such &amp; thing</text></error></iq>`,
			want: IQ{ID: "e", Type: "error", From: jid.MustParse("x.example"), Payload: xml.Name{Space: "q", Local: "query"},
				Error: &Error{Type: "cancel", Condition: "item-not-found", Text: "no such & thing"}},
			inner: `<query xmlns="q"></query>`,
		},
		{
			name: "error without condition",
			raw:  `<iq type="error" id="e2"/>`,
			want: IQ{ID: "e2", Type: "error", Error: &Error{Condition: "undefined-condition"}},
		},
		{
			name:  "nested default namespace undeclared",
			raw:   `<iq type="result" id="n"><a xmlns="urn:a"><b xmlns=""/></a></iq>`,
			want:  IQ{ID: "n", Type: "result", Payload: xml.Name{Space: "urn:a", Local: "a"}},
			inner: `<a xmlns="urn:a"><b xmlns=""></b></a>`,
		},
		{name: "message", raw: `<message id="m"/>`, wantErr: ErrNotIQ},
		{name: "wrong namespace", raw: `<iq xmlns="urn:other" type="get" id="x"><a/></iq>`, wantErr: ErrNotIQ},
		{name: "bad type", raw: `<iq type="poke" id="x"/>`, wantErr: ErrMalformed},
		{name: "no id", raw: `<iq type="result"/>`, wantErr: ErrMalformed},
		{name: "get without child", raw: `<iq type="get" id="x"/>`, wantErr: ErrMalformed},
		{name: "set with two children", raw: `<iq type="set" id="x"><a xmlns="a"/><b xmlns="b"/></iq>`, wantErr: ErrMalformed},
		{name: "bad from", raw: `<iq type="result" id="x" from="@@"/>`, wantErr: ErrMalformed},
		{name: "doctype", raw: `<!DOCTYPE iq [<!ENTITY x "y">]><iq type="result" id="x"/>`, wantErr: ErrMalformed},
		{name: "processing instruction", raw: `<?foo bar?><iq type="result" id="x"/>`, wantErr: ErrMalformed},
		{name: "two roots", raw: `<iq type="result" id="x"/><iq type="result" id="y"/>`, wantErr: ErrMalformed},
		{name: "unclosed", raw: `<iq type="result" id="x">`, wantErr: ErrMalformed},
		{name: "text in iq", raw: `<iq type="result" id="x">hi</iq>`, wantErr: ErrMalformed},
		{name: "empty", raw: ``, wantErr: ErrMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Parse([]byte(tt.raw))
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("Parse error = %v, want %v", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if got.ID != tt.want.ID || got.Type != tt.want.Type || !got.From.Equal(tt.want.From) ||
				!got.To.Equal(tt.want.To) || got.Payload != tt.want.Payload {
				t.Errorf("Parse = %+v, want %+v", got, tt.want)
			}
			if string(got.Inner) != tt.inner {
				t.Errorf("Inner = %s, want %s", got.Inner, tt.inner)
			}
			switch {
			case (got.Error == nil) != (tt.want.Error == nil):
				t.Errorf("Error = %v, want %v", got.Error, tt.want.Error)
			case got.Error != nil && *got.Error != *tt.want.Error:
				t.Errorf("Error = %+v, want %+v", *got.Error, *tt.want.Error)
			}
		})
	}
}

func TestParseTooLarge(t *testing.T) {
	raw := []byte(`<iq type="result" id="x"><a xmlns="a">` + strings.Repeat("x", MaxBytes) + `</a></iq>`)
	if _, err := Parse(raw); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("Parse error = %v, want ErrTooLarge", err)
	}
}

func TestBuild(t *testing.T) {
	from := jid.MustParse("bridge.example")
	to := jid.MustParse("alice@example.com/res")
	tests := []struct {
		name    string
		typ, id string
		from    jid.JID
		to      jid.JID
		payload string
		want    string
	}{
		{"with payload", "get", "a1", from, to, `<ping xmlns='urn:xmpp:ping'/>`,
			`<iq type="get" id="a1" from="bridge.example" to="alice@example.com/res"><ping xmlns='urn:xmpp:ping'/></iq>`},
		{"no addresses no payload", "result", "a2", jid.JID{}, jid.JID{}, "", `<iq type="result" id="a2"/>`},
		{"escaped id", "set", `"<&'>`, from, jid.JID{}, "", `<iq type="set" id="&#34;&lt;&amp;&#39;&gt;" from="bridge.example"/>`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Build(tt.typ, tt.id, tt.from, tt.to, []byte(tt.payload))
			if string(got) != tt.want {
				t.Fatalf("Build = %s\nwant    %s", got, tt.want)
			}
			q, err := Parse(got)
			if tt.typ == "get" && err != nil {
				t.Fatalf("Parse(Build) = %v", err)
			}
			if err == nil && q.ID != tt.id {
				t.Errorf("Parse(Build).ID = %q, want %q", q.ID, tt.id)
			}
		})
	}
}

func TestReplies(t *testing.T) {
	req, err := Parse([]byte(`<iq xmlns="jabber:component:accept" type="get" id="q1" from="alice@example.com/r" to="bob@bridge.example"><vCard xmlns="vcard-temp"><SECRET>do not echo</SECRET></vCard></iq>`))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		got  []byte
		want string
	}{
		{"result", Result(req, []byte(`<vCard xmlns='vcard-temp'/>`)),
			`<iq type="result" id="q1" from="bob@bridge.example" to="alice@example.com/r"><vCard xmlns='vcard-temp'/></iq>`},
		{"error", ErrorReply(req, "cancel", "item-not-found", "no <such> user"),
			`<iq type="error" id="q1" from="bob@bridge.example" to="alice@example.com/r"><error type="cancel">` +
				`<item-not-found xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/>` +
				`<text xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'>no &lt;such&gt; user</text></error></iq>`},
		{"unknown type and condition are replaced", ErrorReply(req, "x'y", "bad><cond", ""),
			`<iq type="error" id="q1" from="bob@bridge.example" to="alice@example.com/r"><error type="cancel">` +
				`<undefined-condition xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></iq>`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if string(tt.got) != tt.want {
				t.Fatalf("got  %s\nwant %s", tt.got, tt.want)
			}
			if strings.Contains(string(tt.got), "do not echo") {
				t.Fatal("reply echoes the request payload")
			}
			if _, err := Parse(tt.got); err != nil {
				t.Fatalf("reply does not parse: %v", err)
			}
		})
	}
}
