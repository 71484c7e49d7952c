package disco

import (
	"errors"
	"reflect"
	"testing"

	"mellium.im/xmpp/jid"
)

// The examples of XEP-0115 sections 5.2 and 5.3.
var (
	simple = Info{
		Identities: []Identity{{Category: "client", Type: "pc", Name: "Exodus 0.9.1"}},
		Features: []string{"http://jabber.org/protocol/disco#info", "http://jabber.org/protocol/disco#items",
			"http://jabber.org/protocol/muc", "http://jabber.org/protocol/caps"},
	}
	complexInfo = Info{
		Identities: []Identity{
			{Category: "client", Type: "pc", Name: "Psi 0.11", Lang: "en"},
			{Category: "client", Type: "pc", Name: "Ψ 0.11", Lang: "el"},
		},
		Features: []string{"http://jabber.org/protocol/caps", "http://jabber.org/protocol/disco#info",
			"http://jabber.org/protocol/disco#items", "http://jabber.org/protocol/muc"},
		Forms: []Form{{Fields: []Field{
			{Var: "FORM_TYPE", Type: "hidden", Values: []string{"urn:xmpp:dataforms:softwareinfo"}},
			{Var: "ip_version", Type: "text-multi", Values: []string{"ipv4", "ipv6"}},
			{Var: "os", Values: []string{"Mac"}},
			{Var: "os_version", Values: []string{"10.5.1"}},
			{Var: "software", Values: []string{"Psi"}},
			{Var: "software_version", Values: []string{"0.11"}},
		}}},
	}
)

func TestCapsVer(t *testing.T) {
	reordered := complexInfo
	reordered.Identities = []Identity{complexInfo.Identities[1], complexInfo.Identities[0]}
	reordered.Forms = []Form{{Fields: []Field{
		complexInfo.Forms[0].Fields[5], complexInfo.Forms[0].Fields[1], complexInfo.Forms[0].Fields[0],
		complexInfo.Forms[0].Fields[3], complexInfo.Forms[0].Fields[2], complexInfo.Forms[0].Fields[4],
	}}, {Fields: []Field{{Var: "no-form-type", Values: []string{"ignored"}}}}}
	tests := []struct {
		name string
		info Info
		want string
	}{
		{"XEP-0115 5.2 simple", simple, "QgayPKawpkPSDYmwT/WM94uAlu0="},
		{"XEP-0115 5.3 complex", complexInfo, "q07IKJEyjvHSyhy//CH0CxmKi8w="},
		{"order does not matter", reordered, "q07IKJEyjvHSyhy//CH0CxmKi8w="},
		{"parsed from the wire", mustParse(t, complexInfo.Marshal()), "q07IKJEyjvHSyhy//CH0CxmKi8w="},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := CapsVer(tt.info); got != tt.want {
				t.Errorf("CapsVer = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestCapsElement(t *testing.T) {
	got := string(CapsElement("https://example.org/bridge", simple))
	want := `<c xmlns='http://jabber.org/protocol/caps' hash='sha-1' node='https://example.org/bridge' ver='QgayPKawpkPSDYmwT/WM94uAlu0='/>`
	if got != want {
		t.Errorf("CapsElement = %s\nwant %s", got, want)
	}
}

func mustParse(t *testing.T, inner []byte) Info {
	t.Helper()
	i, err := ParseInfo(inner)
	if err != nil {
		t.Fatalf("ParseInfo(%s): %v", inner, err)
	}
	return *i
}

func TestParseInfo(t *testing.T) {
	tests := []struct {
		name    string
		inner   string
		want    *Info
		wantErr bool
	}{
		{
			name:  "round trip of Marshal",
			inner: string(complexInfo.Marshal()),
			want:  &complexInfo,
		},
		{
			name: "prefixed, with node and a non-result form",
			inner: `<d:query xmlns:d="http://jabber.org/protocol/disco#info" node="n&amp;1"><d:identity category="gateway" type="matrix" name="M"/>` +
				`<d:feature var="urn:xmpp:ping"/><x xmlns="jabber:x:data" type="form"><field var="FORM_TYPE"><value>x</value></field></x>` +
				`<feature var="not-in-namespace"/></d:query>`,
			want: &Info{Node: "n&1", Identities: []Identity{{Category: "gateway", Type: "matrix", Name: "M"}}, Features: []string{"urn:xmpp:ping"}},
		},
		{name: "items query", inner: `<query xmlns="http://jabber.org/protocol/disco#items"/>`, wantErr: true},
		{name: "empty", inner: ``, wantErr: true},
		{name: "garbage", inner: `<query xmlns="http://jabber.org/protocol/disco#info"><identity`, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseInfo([]byte(tt.inner))
			if tt.wantErr {
				if !errors.Is(err, ErrMalformed) {
					t.Fatalf("ParseInfo error = %v, want ErrMalformed", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("ParseInfo = %+v\nwant %+v", got, tt.want)
			}
		})
	}
}

func TestMarshal(t *testing.T) {
	tests := []struct {
		name string
		got  []byte
		want string
	}{
		{"info", Info{Node: "a'b", Identities: []Identity{{Category: "gateway", Type: "matrix", Name: "Matrix", Lang: "en"}},
			Features: []string{NSInfo}}.Marshal(),
			`<query xmlns='http://jabber.org/protocol/disco#info' node='a&#39;b'><identity category='gateway' type='matrix' name='Matrix' xml:lang='en'/>` +
				`<feature var='http://jabber.org/protocol/disco#info'/></query>`},
		{"items", MarshalItems("", []Item{{JID: jid.MustParse("room@muc.example"), Name: "<Room>"}, {JID: jid.MustParse("example.org"), Node: "n"}}),
			`<query xmlns='http://jabber.org/protocol/disco#items'><item jid='room@muc.example' name='&lt;Room&gt;'/><item jid='example.org' node='n'/></query>`},
		{"info query", InfoQuery("node"), `<query xmlns='http://jabber.org/protocol/disco#info' node='node'/>`},
		{"items query", ItemsQuery(""), `<query xmlns='http://jabber.org/protocol/disco#items'/>`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if string(tt.got) != tt.want {
				t.Errorf("got  %s\nwant %s", tt.got, tt.want)
			}
		})
	}
}

func TestParseItems(t *testing.T) {
	items := []Item{{JID: jid.MustParse("room@muc.example"), Name: "Room"}, {JID: jid.MustParse("example.org"), Node: "n"}}
	node, got, err := ParseItems(MarshalItems("top", append(items[:1:1], items[1])))
	if err != nil || node != "top" || len(got) != 2 || !got[0].JID.Equal(items[0].JID) || got[1].Node != "n" {
		t.Fatalf("ParseItems = %q %+v %v", node, got, err)
	}
	_, got, err = ParseItems([]byte(`<query xmlns='http://jabber.org/protocol/disco#items'><item jid='@@'/></query>`))
	if err != nil || len(got) != 0 {
		t.Fatalf("invalid jid: ParseItems = %+v %v, want no items", got, err)
	}
}
