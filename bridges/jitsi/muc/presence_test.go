package muc

import (
	"errors"
	"reflect"
	"strings"
	"testing"
)

func TestParsePresence(t *testing.T) {
	const room = `conf1@conference.example.org`
	tests := []struct {
		name    string
		raw     string
		want    presence
		from    string
		wantErr error
	}{
		{
			name: "jitsi occupant",
			raw: `<presence xmlns="jabber:client" from="conf1@conference.example.org/a1b2c3" to="w@example.org/r">
				<x xmlns="http://jabber.org/protocol/muc#user"><item affiliation="none" role="participant" jid="alice@example.org/web"/></x>
				<nick xmlns="http://jabber.org/protocol/nick">Alice</nick>
				<identity><user><id>@alice:example.org</id><name>Alice A.</name><avatar>https://example.org/a.png</avatar></user><group>g</group></identity>
				<stats-id>Abc</stats-id><c xmlns="http://jabber.org/protocol/caps" hash="sha-1" node="n" ver="v"/>
			</presence>`,
			from: room + "/a1b2c3",
			want: presence{MUCUser: true, RealJID: "alice@example.org/web", XNick: "Alice", ID: "@alice:example.org", Name: "Alice A.", Avatar: "https://example.org/a.png"},
		},
		{
			name: "self with status 110 and 210",
			raw:  `<presence from="conf1@conference.example.org/switchboard"><x xmlns="http://jabber.org/protocol/muc#user"><item role="participant"/><status code="110"/><status code="210"/></x></presence>`,
			from: room + "/switchboard",
			want: presence{MUCUser: true, Statuses: []int{110, 210}},
		},
		{
			name: "leave",
			raw:  `<presence type="unavailable" from="conf1@conference.example.org/bob"><x xmlns="http://jabber.org/protocol/muc#user"><item role="none"/></x></presence>`,
			from: room + "/bob",
			want: presence{Type: "unavailable", MUCUser: true},
		},
		{
			name: "nick change",
			raw:  `<presence type="unavailable" from="conf1@conference.example.org/bob"><x xmlns="http://jabber.org/protocol/muc#user"><item nick="robert"/><status code="303"/></x></presence>`,
			from: room + "/bob",
			want: presence{Type: "unavailable", MUCUser: true, NewNick: "robert", Statuses: []int{303}},
		},
		{
			name: "room destroyed",
			raw:  `<presence type="unavailable" from="conf1@conference.example.org/me"><x xmlns="http://jabber.org/protocol/muc#user"><item role="none"/><destroy/><status code="110"/></x></presence>`,
			from: room + "/me",
			want: presence{Type: "unavailable", MUCUser: true, Destroy: true, Statuses: []int{110}},
		},
		{
			name: "nick conflict",
			raw:  `<presence type="error" from="conf1@conference.example.org/switchboard"><error type="cancel"><conflict xmlns="urn:ietf:params:xml:ns:xmpp-stanzas"/><text xmlns="urn:ietf:params:xml:ns:xmpp-stanzas">taken</text></error></presence>`,
			from: room + "/switchboard",
			want: presence{Type: "error", ErrCond: "conflict"},
		},
		{
			name: "identity name only, hostile text sanitised",
			raw:  "<presence from=\"conf1@conference.example.org/x\"><identity><user><name>  Eve\u202e\u200b\u0085 \n  the\tGreat  </name></user></identity></presence>",
			from: room + "/x",
			want: presence{Name: "Eve the Great"},
		},
		{
			name: "nick in a wrong namespace and misplaced identity are ignored",
			raw:  `<presence from="conf1@conference.example.org/x"><nick xmlns="urn:other">N</nick><x xmlns="urn:other"><identity><user><name>M</name></user></identity></x><x xmlns="http://jabber.org/protocol/muc"><item jid="eve@evil/x"/></x></presence>`,
			from: room + "/x",
			want: presence{},
		},
		{
			name: "first of repeated elements wins; invalid values dropped",
			raw:  `<presence from="conf1@conference.example.org/x"><nick xmlns="http://jabber.org/protocol/nick">One</nick><nick xmlns="http://jabber.org/protocol/nick">Two</nick><x xmlns="http://jabber.org/protocol/muc#user"><item jid="@@bad"/><status code="abc"/><status code="99999"/></x></presence>`,
			from: room + "/x",
			want: presence{XNick: "One", MUCUser: true},
		},
		{
			name: "long name cut",
			raw:  `<presence from="conf1@conference.example.org/x"><nick xmlns="http://jabber.org/protocol/nick">` + strings.Repeat("é", 300) + `</nick></presence>`,
			from: room + "/x",
			want: presence{XNick: strings.Repeat("é", maxNameRunes)},
		},
		{
			name:    "too large",
			raw:     `<presence from="conf1@conference.example.org/x"><status>` + strings.Repeat("a", maxStanzaBytes) + `</status></presence>`,
			wantErr: errTooLarge,
		},
		{
			name:    "too deep",
			raw:     `<presence>` + strings.Repeat("<a>", maxDepth+1) + strings.Repeat("</a>", maxDepth+1) + `</presence>`,
			wantErr: errTooDeep,
		},
		{
			name:    "not a presence",
			raw:     `<message from="conf1@conference.example.org/x"/>`,
			wantErr: errNotPres,
		},
		{
			name:    "unclosed",
			raw:     `<presence><x>`,
			wantErr: errAny,
		},
		{
			name:    "entity declaration",
			raw:     `<!DOCTYPE p [<!ENTITY a "aaaa">]><presence/>`,
			wantErr: errAny,
		},
		{
			name: "bad from",
			raw:  `<presence from="@@@"/>`,
			want: presence{},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parsePresenceBytes([]byte(tt.raw))
			if tt.wantErr != nil {
				if err == nil || (tt.wantErr != errAny && !errors.Is(err, tt.wantErr)) {
					t.Fatalf("err = %v, want %v", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got.From.String() != tt.from {
				t.Errorf("from = %q, want %q", got.From, tt.from)
			}
			tt.want.From = got.From
			if !reflect.DeepEqual(*got, tt.want) {
				t.Errorf("got  %+v\nwant %+v", *got, tt.want)
			}
		})
	}
}

// errAny stands for any error in the table.
var errAny = errors.New("any error")

func TestOccupantFrom(t *testing.T) {
	tests := []struct {
		name string
		p    presence
		want Occupant
	}{
		{"xep-0172 nick first", presence{XNick: "Alice", Name: "Alice A.", ID: "@a:x"}, Occupant{Nick: "n", DisplayName: "Alice", UserID: "@a:x"}},
		{"identity name second", presence{Name: "Bob B.", Avatar: "https://x/b.png"}, Occupant{Nick: "n", DisplayName: "Bob B.", AvatarURL: "https://x/b.png"}},
		{"nick last", presence{RealJID: "c@x/r"}, Occupant{Nick: "n", DisplayName: "n", RealJID: "c@x/r"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := occupantFrom(&tt.p, "n"); got != tt.want {
				t.Errorf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}
