package vcard

import (
	"bytes"
	"encoding/base64"
	"errors"
	"strings"
	"testing"
)

// png is the start of a PNG file, enough for content sniffing.
var png = []byte("\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR")

func TestParse(t *testing.T) {
	b64 := base64.StdEncoding.EncodeToString(png)
	wrapped := b64[:8] + "\n  " + b64[8:16] + "\r\n\t" + b64[16:]
	tests := []struct {
		name    string
		inner   string
		want    Card
		wantErr error
	}{
		{
			name:  "names and photo with line breaks",
			inner: `<vCard xmlns="vcard-temp"><FN> Alice Example </FN><NICKNAME>alice</NICKNAME><PHOTO><TYPE>image/png</TYPE><BINVAL>` + wrapped + `</BINVAL></PHOTO></vCard>`,
			want:  Card{FullName: "Alice Example", Nick: "alice", PhotoType: "image/png", Photo: png},
		},
		{
			name:  "type sniffed when missing",
			inner: `<vCard xmlns="vcard-temp"><PHOTO><BINVAL>` + b64 + `</BINVAL></PHOTO></vCard>`,
			want:  Card{PhotoType: "image/png", Photo: png},
		},
		{
			name:  "padding left out",
			inner: `<vCard xmlns="vcard-temp"><PHOTO><BINVAL>` + strings.TrimRight(base64.StdEncoding.EncodeToString([]byte("ab")), "=") + `</BINVAL></PHOTO></vCard>`,
			want:  Card{PhotoType: "text/plain; charset=utf-8", Photo: []byte("ab")},
		},
		{
			name:  "type without photo is dropped",
			inner: `<v:vCard xmlns:v="vcard-temp"><v:NICKNAME>&lt;b&gt;</v:NICKNAME><v:PHOTO><v:TYPE>image/png</v:TYPE></v:PHOTO></v:vCard>`,
			want:  Card{Nick: "<b>"},
		},
		{name: "empty vCard", inner: `<vCard xmlns="vcard-temp"/>`, want: Card{}},
		{name: "elements in another namespace are ignored", inner: `<vCard xmlns="vcard-temp"><FN xmlns="urn:x">x</FN></vCard>`, want: Card{}},
		{name: "bad base64 keeps the names", inner: `<vCard xmlns="vcard-temp"><FN>A</FN><PHOTO><BINVAL>!!!!</BINVAL></PHOTO></vCard>`,
			want: Card{FullName: "A"}, wantErr: ErrMalformed},
		{name: "wrong namespace", inner: `<vCard xmlns="urn:ietf:params:xml:ns:vcard-4.0"/>`, wantErr: ErrMalformed},
		{name: "not XML", inner: `vCard`, wantErr: ErrMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Parse([]byte(tt.inner))
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("Parse error = %v, want %v", err, tt.wantErr)
			}
			if got == nil {
				if tt.wantErr == nil || tt.want.FullName != "" {
					t.Fatal("Parse returned no card")
				}
				return
			}
			if got.FullName != tt.want.FullName || got.Nick != tt.want.Nick || got.PhotoType != tt.want.PhotoType || !bytes.Equal(got.Photo, tt.want.Photo) {
				t.Errorf("Parse = %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestParsePhotoLimit(t *testing.T) {
	card := func(n int) []byte {
		return Card{Nick: "big", Photo: make([]byte, n)}.Marshal()
	}
	tests := []struct {
		name    string
		inner   []byte
		wantErr error
	}{
		{"exactly MaxPhoto", card(MaxPhoto), nil},
		{"one byte over", card(MaxPhoto + 1), ErrTooLarge},
		{"far over", card(MaxPhoto + 4096), ErrTooLarge},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Parse(tt.inner)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("Parse error = %v, want %v", err, tt.wantErr)
			}
			if c == nil || c.Nick != "big" {
				t.Fatalf("Parse card = %+v, want the nick kept", c)
			}
			if tt.wantErr != nil && c.Photo != nil {
				t.Fatal("photo kept despite the error")
			}
		})
	}
}

func TestMarshal(t *testing.T) {
	tests := []struct {
		name string
		card Card
		want string
	}{
		{"full", Card{FullName: "A & B", Nick: "ab", PhotoType: "image/png", Photo: []byte("xyz")},
			`<vCard xmlns='vcard-temp'><FN>A &amp; B</FN><NICKNAME>ab</NICKNAME><PHOTO><TYPE>image/png</TYPE><BINVAL>eHl6</BINVAL></PHOTO></vCard>`},
		{"empty", Card{}, `<vCard xmlns='vcard-temp'></vCard>`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := tt.card.Marshal()
			if string(got) != tt.want {
				t.Fatalf("Marshal = %s\nwant %s", got, tt.want)
			}
			back, err := Parse(got)
			if err != nil || back.FullName != tt.card.FullName || back.Nick != tt.card.Nick || !bytes.Equal(back.Photo, tt.card.Photo) {
				t.Fatalf("Parse(Marshal) = %+v, %v", back, err)
			}
		})
	}
	if got := string(Request()); got != `<vCard xmlns='vcard-temp'/>` {
		t.Errorf("Request = %s", got)
	}
}

func TestPhotoHash(t *testing.T) {
	tests := []struct {
		name  string
		photo []byte
		want  string
	}{
		{"abc", []byte("abc"), "a9993e364706816aba3e25717850c26c9cd0d89d"},
		{"no photo", nil, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := PhotoHash(tt.photo); got != tt.want {
				t.Errorf("PhotoHash = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestUpdate(t *testing.T) {
	tests := []struct {
		name     string
		presence string
		hash     string
		ok       bool
		wantErr  bool
	}{
		{"hash", `<presence xmlns="jabber:client" from="a@b/c"><status>hi</status><x xmlns="vcard-temp:x:update"><photo>ABC123</photo></x></presence>`, "abc123", true, false},
		{"no photo", `<presence>` + string(UpdateElement("")) + `</presence>`, "", true, false},
		{"built", `<presence>` + string(UpdateElement("a9993e36")) + `</presence>`, "a9993e36", true, false},
		{"not ready", `<presence><x xmlns="vcard-temp:x:update"/></presence>`, "", false, false},
		{"absent", `<presence><x xmlns="jabber:x:other"><photo>abc</photo></x></presence>`, "", false, false},
		{"not a presence", `<message/>`, "", false, true},
		{"garbage", `<presence`, "", false, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			hash, ok, err := ParseUpdate([]byte(tt.presence))
			if (err != nil) != tt.wantErr || hash != tt.hash || ok != tt.ok {
				t.Errorf("ParseUpdate = %q %v %v, want %q %v error %v", hash, ok, err, tt.hash, tt.ok, tt.wantErr)
			}
		})
	}
}

func TestParseNick(t *testing.T) {
	for _, tc := range []struct{ name, inner, want string }{
		{"a nick", `<pubsub xmlns="http://jabber.org/protocol/pubsub"><items node="http://jabber.org/protocol/nick"><item id="current"><nick xmlns="http://jabber.org/protocol/nick"> Ishmael </nick></item></items></pubsub>`, "Ishmael"},
		{"no item", `<pubsub xmlns="http://jabber.org/protocol/pubsub"><items node="http://jabber.org/protocol/nick"/></pubsub>`, ""},
		{"bidi override and newline", "<pubsub xmlns=\"http://jabber.org/protocol/pubsub\"><items><item><nick xmlns=\"http://jabber.org/protocol/nick\">Eve\u202e\nlyn</nick></item></items></pubsub>", "Eve lyn"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseNick([]byte(tc.inner))
			if err != nil || got != tc.want {
				t.Errorf("ParseNick = %q, %v; want %q", got, err, tc.want)
			}
		})
	}
}

func TestCardName(t *testing.T) {
	for _, tc := range []struct {
		name string
		card Card
		want string
	}{
		{"nickname first", Card{FullName: "Robert Tables", Nick: "Bobby"}, "Bobby"},
		{"full name without a nickname", Card{FullName: " Carol  Smith "}, "Carol Smith"},
		{"neither", Card{}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.card.Name(); got != tc.want {
				t.Errorf("Name() = %q, want %q", got, tc.want)
			}
		})
	}
}
