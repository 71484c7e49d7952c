package sipuri

import (
	"testing"
)

// FuzzParseAOR: ParseAOR never panics, and what it accepts is canonical: its URI and its
// String parse back to it, within MaxLen.
func FuzzParseAOR(f *testing.F) {
	for _, s := range []string{
		"sip:alice@example.org", "<sips:Alice%20B@Example.ORG:5061;transport=tls>", "alice@example.org",
		"sip:+49-30-123;phone-context=x@example.org;user=phone", "sip:bob@[2001:DB8::1]:5060", "tel:+4930",
		"sip:%2F/x@y.example", "sip:a:b@c", "sip:j%C3%BCrgen@192.0.2.1",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		a, err := ParseAOR(s)
		if err != nil {
			return
		}
		if len(a.URI()) > MaxLen {
			t.Fatalf("%q -> %q: longer than MaxLen", s, a.URI())
		}
		for _, form := range []string{a.URI(), a.String(), "<" + a.URI() + ">"} {
			if again, err := ParseAOR(form); err != nil || again != a {
				t.Fatalf("%q -> %#v -> %q -> %#v, %v", s, a, form, again, err)
			}
		}
		if err := a.Validate(); err != nil {
			t.Fatalf("%q -> %#v: %v", s, a, err)
		}
	})
}

// FuzzGhostRoundTrip: every accepted AOR that has a ghost maps back from it, the ghost
// localpart is a valid Matrix localpart, and every localpart that maps to an AOR is that
// AOR's ghost.
func FuzzGhostRoundTrip(f *testing.F) {
	for _, s := range []string{"sip:alice@example.org", "sip:A_b%40c@x.example", "sip:x@[::1]", "sip:x@matrix.example.org"} {
		a, _ := ParseAOR(s)
		g, _ := m.GhostLocalpart(a)
		f.Add(s, g)
	}
	f.Add("", "_sip_=61lice=40example.org")
	f.Fuzz(func(t *testing.T, aor, localpart string) {
		if a, err := ParseAOR(aor); err == nil {
			if g, err := m.GhostLocalpart(a); err == nil {
				if !validLocalpart(g) || !m.IsGhost(g) || len("@:"+g+m.Homeserver) > maxUserIDLen {
					t.Fatalf("%#v -> %q: not a valid ghost localpart", a, g)
				}
				if back, err := m.GhostAOR(g); err != nil || back != a {
					t.Fatalf("%#v -> %q -> %#v, %v", a, g, back, err)
				}
			}
		}
		if a, err := m.GhostAOR(localpart); err == nil {
			if again, err := m.GhostLocalpart(a); err != nil || again != localpart {
				t.Fatalf("%q -> %#v -> %q, %v: not canonical", localpart, a, again, err)
			}
		}
	})
}

// FuzzUserRoundTrip: every Matrix user that has an AOR maps back from it, the AOR is on
// the bridge's domain and needs no percent-escaping, ghosts of the bridge have none, and
// every AOR that maps to a user is that user's AOR.
func FuzzUserRoundTrip(f *testing.F) {
	f.Add("@alice:hs.example", "alice")
	f.Add("@Bob:other.example:8448", "Bob=40other.example=3a8448")
	f.Add("@_sip_x:hs.example", "_sip_x")
	f.Add("@a:[::1]", "a=40=5b=3a=3a1=5d")
	f.Fuzz(func(t *testing.T, userID, user string) {
		if a, err := m.UserAOR(userID); err == nil {
			if a.Host != m.Domain || a.Validate() != nil || escapeUser(a.User) != a.User {
				t.Fatalf("%q -> %#v: not a plain AOR on %s", userID, a, m.Domain)
			}
			if back, err := m.MatrixUser(a); err != nil || back != userID {
				t.Fatalf("%q -> %#v -> %q, %v", userID, a, back, err)
			}
			if local, server, _ := parseUserID(userID); server == m.Homeserver && m.IsGhost(local) {
				t.Fatalf("ghost %q mapped to %#v", userID, a)
			}
		}
		a := AOR{User: user, Host: m.Domain}
		if u, err := m.MatrixUser(a); err == nil {
			if again, err := m.UserAOR(u); err != nil || again != a {
				t.Fatalf("%#v -> %q -> %#v, %v: not canonical", a, u, again, err)
			}
		}
	})
}
