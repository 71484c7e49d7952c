package xid

import (
	"errors"
	"testing"

	"maunium.net/go/mautrix/id"
	"mellium.im/xmpp/jid"
)

var m = Mapper{Homeserver: "example.org", Component: "matrix.example.org", Prefix: DefaultPrefix}

func TestGhostRoundTrip(t *testing.T) {
	tests := []struct {
		name, jid string
		want      id.UserID
	}{
		{"plain", "alice@xmpp.example", "@_xmpp_alice=40xmpp.example:example.org"},
		{"resource dropped", "alice@xmpp.example/phone", "@_xmpp_alice=40xmpp.example:example.org"},
		{"underscore", "a_b@x.example", "@_xmpp_a__b=40x.example:example.org"},
		{"non-ascii", "jürgen@x.example", "@_xmpp_j=c3=bcrgen=40x.example:example.org"},
		{"XEP-0106 escaped localpart", `d\27artagnan@x.example`, "@_xmpp_d=5c27artagnan=40x.example:example.org"},
		{"domain only", "x.example", "@_xmpp_x.example:example.org"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			j := jid.MustParse(tt.jid)
			got, err := m.GhostUserID(j)
			if err != nil || got != tt.want {
				t.Fatalf("GhostUserID(%s) = %s, %v; want %s", tt.jid, got, err, tt.want)
			}
			back, err := m.JIDForGhost(got)
			if err != nil || !back.Equal(j.Bare()) {
				t.Fatalf("JIDForGhost(%s) = %s, %v; want %s", got, back, err, j.Bare())
			}
		})
	}
}

func TestJIDForGhostRejects(t *testing.T) {
	tests := []struct {
		name   string
		userID id.UserID
	}{
		{"other homeserver", "@_xmpp_alice=40x.example:evil.example"},
		{"no prefix", "@alice:example.org"},
		{"prefix only", "@_xmpp_:example.org"},
		{"non-canonical spelling", "@_xmpp_=61lice=40x.example:example.org"},
		{"bad escape", "@_xmpp_alice=4:example.org"},
		{"resource smuggled in", "@_xmpp_alice=40x.example=2fphone:example.org"},
		{"invalid JID", "@_xmpp_=40=40:example.org"},
		{"not a user ID", "alice"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if j, err := m.JIDForGhost(tt.userID); !errors.Is(err, ErrNotMapped) {
				t.Fatalf("JIDForGhost(%s) = %s, %v; want ErrNotMapped", tt.userID, j, err)
			}
		})
	}
}

func TestPuppetRoundTrip(t *testing.T) {
	tests := []struct {
		name    string
		userID  id.UserID
		want    string
		wantErr bool
	}{
		{"plain", "@alice:example.org", `alice\40example.org@matrix.example.org`, false},
		{"other server with port", "@bob:other.example:8448", `bob\40other.example\3a8448@matrix.example.org`, false},
		{"slash and equals", "@a/b=c:example.org", `a\2fb=c\40example.org@matrix.example.org`, false},
		{"upper case is not representable", "@Alice:example.org", "", true},
		{"invalid user ID", "alice", "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			j, err := m.PuppetJID(tt.userID)
			if tt.wantErr {
				if err == nil {
					t.Fatalf("PuppetJID(%s) = %s, want an error", tt.userID, j)
				}
				return
			}
			if err != nil || j.String() != tt.want {
				t.Fatalf("PuppetJID(%s) = %s, %v; want %s", tt.userID, j, err, tt.want)
			}
			back, err := m.UserIDForPuppet(j)
			if err != nil || back != tt.userID {
				t.Fatalf("UserIDForPuppet(%s) = %s, %v", j, back, err)
			}
		})
	}
}

func TestUserIDForPuppetRejects(t *testing.T) {
	for _, s := range []string{
		`alice\40example.org@other.component`, // not our component
		`matrix.example.org`,                  // no localpart
		`alice@matrix.example.org`,            // no server
		`\40example.org@matrix.example.org`,   // no user localpart
	} {
		if u, err := m.UserIDForPuppet(jid.MustParse(s)); !errors.Is(err, ErrNotMapped) {
			t.Errorf("UserIDForPuppet(%s) = %s, %v; want ErrNotMapped", s, u, err)
		}
	}
}

func TestRoomAliasRoundTrip(t *testing.T) {
	room := jid.MustParse("dispatch@conference.x.example")
	alias, err := m.RoomAlias(room)
	if err != nil || alias != "#_xmpp_dispatch=40conference.x.example:example.org" {
		t.Fatalf("RoomAlias = %s, %v", alias, err)
	}
	back, err := m.JIDForAlias(alias)
	if err != nil || !back.Equal(room) {
		t.Fatalf("JIDForAlias = %s, %v", back, err)
	}
	if _, err := m.JIDForAlias("#_xmpp_dispatch=40conference.x.example:evil.example"); !errors.Is(err, ErrNotMapped) {
		t.Fatalf("alias of another server accepted: %v", err)
	}
}

// FuzzGhostMapping: every JID maps to a ghost that maps back to its bare JID, and every
// user ID that maps to a JID is the canonical ghost of that JID.
func FuzzGhostMapping(f *testing.F) {
	for _, s := range []string{"alice@x.example", "jürgen@x.example/res", "x.example", "a_b=c@d", `\20x@y`} {
		f.Add(s, "@_xmpp_"+id.EncodeUserLocalpart(s)+":example.org")
	}
	f.Fuzz(func(t *testing.T, jidText, userID string) {
		if j, err := jid.Parse(jidText); err == nil {
			if ghost, err := m.GhostUserID(j); err == nil {
				back, err := m.JIDForGhost(ghost)
				if err != nil || !back.Equal(j.Bare()) {
					t.Fatalf("JID %q -> %s -> %s, %v", jidText, ghost, back, err)
				}
			}
		}
		if j, err := m.JIDForGhost(id.UserID(userID)); err == nil {
			if again, err := m.GhostUserID(j); err != nil || again != id.UserID(userID) {
				t.Fatalf("user ID %q -> %s -> %s, %v: not canonical", userID, j, again, err)
			}
		}
	})
}

// FuzzPuppetMapping: a Matrix user that has a puppet JID is the user that JID maps back
// to, and a JID that maps to a user is that user's puppet JID.
func FuzzPuppetMapping(f *testing.F) {
	f.Add("@alice:example.org", `alice\40example.org@matrix.example.org`)
	f.Add("@a/b:x.example:8448", `a\2fb\40x@matrix.example.org`)
	f.Fuzz(func(t *testing.T, userID, jidText string) {
		if j, err := m.PuppetJID(id.UserID(userID)); err == nil {
			back, err := m.UserIDForPuppet(j)
			if err != nil || back != id.UserID(userID) {
				t.Fatalf("user %q -> %s -> %s, %v", userID, j, back, err)
			}
		}
		if j, err := jid.Parse(jidText); err == nil {
			if u, err := m.UserIDForPuppet(j); err == nil {
				if again, err := m.PuppetJID(u); err != nil || !again.Equal(j) {
					t.Fatalf("JID %q -> %s -> %s, %v", jidText, u, again, err)
				}
			}
		}
	})
}

func TestEscape(t *testing.T) {
	tests := []struct{ raw, escaped string }{
		{"alice@example.org", `alice\40example.org`},
		{`space cadet`, `space\20cadet`},
		{`c:\net`, `c\3a\net`}, // XEP-0106's own examples
		{`c:\cool stuff`, `c\3a\cool\20stuff`},
		{`\5c`, `\5c5c`},
		{`back\slash`, `back\slash`},
		{`d'artagnan`, `d\27artagnan`},
		{`x/y&z<>"`, `x\2fy\26z\3c\3e\22`},
	}
	for _, tt := range tests {
		if got := escapeLocal(tt.raw); got != tt.escaped {
			t.Errorf("escapeLocal(%q) = %q, want %q", tt.raw, got, tt.escaped)
		}
		if got := unescapeLocal(tt.escaped); got != tt.raw {
			t.Errorf("unescapeLocal(%q) = %q, want %q", tt.escaped, got, tt.raw)
		}
	}
}

// FuzzEscape: unescaping an escaped string gives it back.
func FuzzEscape(f *testing.F) {
	f.Add(`c:\5ccool stuff@x`)
	f.Fuzz(func(t *testing.T, s string) {
		if got := unescapeLocal(escapeLocal(s)); got != s {
			t.Fatalf("round trip of %q gave %q", s, got)
		}
	})
}
