package xmsg

import (
	"errors"
	"reflect"
	"testing"
	"time"

	"mellium.im/xmpp/jid"
)

func TestParsePresence(t *testing.T) {
	occupant := jid.MustParse("room@muc.xmpp.example/Alice")
	realJID := jid.MustParse("alice@xmpp.example/phone")
	tests := []struct {
		name string
		raw  string
		want *Presence
	}{
		{
			name: "available with show, status, priority, nick and avatar",
			raw: `<presence xmlns='jabber:client' from='alice@xmpp.example/phone' id='p1'><show> away </show>` +
				`<status xml:lang='de'>weg</status><status>out</status><priority>5</priority>` +
				`<nick xmlns='http://jabber.org/protocol/nick'>Alice</nick>` +
				`<x xmlns='vcard-temp:x:update'><photo> 0123abcd </photo></x></presence>`,
			want: &Presence{ID: "p1", From: realJID, Show: "away", Status: "out", Priority: 5, Nick: "Alice", PhotoHash: ptr("0123abcd")},
		},
		{
			name: "no avatar",
			raw:  `<presence><x xmlns='vcard-temp:x:update'><photo/></x></presence>`,
			want: &Presence{PhotoHash: ptr("")},
		},
		{
			name: "avatar not ready",
			raw:  `<presence><x xmlns='vcard-temp:x:update'/></presence>`,
			want: &Presence{},
		},
		{
			name: "priority unreadable and out of range",
			raw:  `<presence><priority>x</priority><priority>5</priority></presence>`,
			want: &Presence{},
		},
		{
			name: "priority clamped",
			raw:  `<presence><priority>-1000</priority></presence>`,
			want: &Presence{Priority: -128},
		},
		{
			name: "MUC join",
			raw: `<presence to='room@muc.xmpp.example/Alice'><x xmlns='http://jabber.org/protocol/muc'>` +
				`<history maxstanzas='0' since='2024-05-01T10:00:00Z'/><password>pw</password></x></presence>`,
			want: &Presence{To: occupant, MUC: &MUCJoin{MaxStanzas: ptr(0), Since: time.Date(2024, 5, 1, 10, 0, 0, 0, time.UTC), Password: "pw"}},
		},
		{
			name: "MUC self presence after a nick change",
			raw: `<presence type='unavailable' from='room@muc.xmpp.example/Alice'><x xmlns='http://jabber.org/protocol/muc#user'>` +
				`<item affiliation='member' role='participant' nick='Alicia' jid='alice@xmpp.example/phone'/>` +
				`<item affiliation='owner'/><status code='303'/><status code='110'/></x></presence>`,
			want: &Presence{Type: "unavailable", From: occupant, MUCUser: &MUCUser{Affiliation: "member", Role: "participant",
				Nick: "Alicia", JID: realJID, Statuses: []int{303, 110}}},
		},
		{
			name: "kicked",
			raw: `<presence type='unavailable' from='room@muc.xmpp.example/Alice'><x xmlns='http://jabber.org/protocol/muc#user'>` +
				`<item affiliation='none' role='none' jid='not a jid@'><actor nick='Mod'/><reason>spam</reason></item><status code='307'/></x></presence>`,
			want: &Presence{Type: "unavailable", From: occupant, MUCUser: &MUCUser{Affiliation: "none", Role: "none",
				Actor: "Mod", Reason: "spam", Statuses: []int{307}}},
		},
		{
			name: "error",
			raw: `<presence type='error' from='room@muc.xmpp.example/Alice'><error type='cancel'>` +
				`<conflict xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></presence>`,
			want: &Presence{Type: "error", From: occupant, Error: &StanzaError{Type: "cancel", Condition: "conflict"}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParsePresence([]byte(tt.raw))
			if err != nil {
				t.Fatalf("ParsePresence: %v", err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("ParsePresence =\n%+v\nwant\n%+v", got, tt.want)
			}
		})
	}
}

func TestParsePresenceErrors(t *testing.T) {
	tests := []struct {
		name, raw string
		want      error
	}{
		{"message", `<message/>`, ErrNotPresence},
		{"component namespace is fine, other is not", `<presence xmlns='urn:x'/>`, ErrNotPresence},
		{"malformed", `<presence><x></presence>`, ErrMalformed},
		{"bad to", `<presence to='a@b@c'/>`, ErrMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if p, err := ParsePresence([]byte(tt.raw)); !errors.Is(err, tt.want) {
				t.Fatalf("ParsePresence = %+v, %v; want %v", p, err, tt.want)
			}
		})
	}
}

func TestPresenceRoundTrip(t *testing.T) {
	tests := []struct {
		name string
		p    *Presence
	}{
		{"empty", &Presence{}},
		{"available", &Presence{ID: "p1", From: jid.MustParse("a@b.example/r"), To: jid.MustParse("c@d.example"),
			Show: "dnd", Status: "busy <really> & more\n", Priority: -3, Nick: "Ä", PhotoHash: ptr("abc")}},
		{"unavailable without avatar", &Presence{Type: "unavailable", PhotoHash: ptr("")}},
		{"join", &Presence{To: jid.MustParse("room@muc.example/nick"), MUC: &MUCJoin{MaxStanzas: ptr(20), Since: time.Date(2020, 1, 2, 3, 4, 5, 0, time.UTC), Password: "p&w"}}},
		{"join without history", &Presence{MUC: &MUCJoin{}}},
		{"MUC user", &Presence{MUCUser: mucMessage.MUCUser}},
		{"error", &Presence{Type: "error", Error: &StanzaError{Type: "wait", Condition: "resource-constraint", Text: "slow"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			raw, err := tt.p.Marshal()
			if err != nil {
				t.Fatalf("Marshal: %v", err)
			}
			got, err := ParsePresence(raw)
			if err != nil {
				t.Fatalf("ParsePresence(%s): %v", raw, err)
			}
			if !reflect.DeepEqual(got, tt.p) {
				t.Fatalf("round trip through %s:\n%+v\nwant\n%+v", raw, got, tt.p)
			}
		})
	}
}

func TestMarshalPresenceErrors(t *testing.T) {
	tests := []struct {
		name string
		p    *Presence
	}{
		{"priority out of range", &Presence{Priority: 128}},
		{"bad condition", &Presence{Error: &StanzaError{Condition: "a b"}}},
		{"history since year 10000", &Presence{MUC: &MUCJoin{Since: time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if raw, err := tt.p.Marshal(); !errors.Is(err, ErrInvalid) {
				t.Fatalf("Marshal = %s, %v; want ErrInvalid", raw, err)
			}
		})
	}
}

func TestMUCUserHas(t *testing.T) {
	u := &MUCUser{Statuses: []int{110, 303}}
	if !u.Has(StatusSelf) || !u.Has(StatusNickChanged) || u.Has(StatusKicked) {
		t.Fatalf("Has is wrong for %v", u.Statuses)
	}
	var none *MUCUser
	if none.Has(StatusSelf) {
		t.Fatal("nil MUCUser has a status")
	}
}
