package addr

import (
	"errors"
	"strings"
	"testing"

	"maunium.net/go/mautrix/id"
)

var m = Mapper{Homeserver: "example.org", Prefix: DefaultPrefix}

func TestGhostRoundTrip(t *testing.T) {
	tests := []struct {
		name, address string
		want          id.UserID
		canonical     string
	}{
		{"plain", "alice@example.org", "@_email_alice=40example.org:example.org", "alice@example.org"},
		{"upper case local part kept, domain folded", "Alice@Example.org", "@_email__alice=40example.org:example.org", "Alice@example.org"},
		{"display name ignored", `"Alice A." <alice@example.org>`, "@_email_alice=40example.org:example.org", "alice@example.org"},
		{"underscore and plus", "a_b+tag@x.example", "@_email_a__b+tag=40x.example:example.org", "a_b+tag@x.example"},
		{"non-ascii local part", "jürgen@x.example", "@_email_j=c3=bcrgen=40x.example:example.org", "jürgen@x.example"},
		{"domain literal", "root@[192.0.2.1]", "@_email_root=40=5b192.0.2.1=5d:example.org", "root@[192.0.2.1]"},
		{"dots", "first.last@sub.x.example", "@_email_first.last=40sub.x.example:example.org", "first.last@sub.x.example"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := m.GhostUserID(tt.address)
			if err != nil || got != tt.want {
				t.Fatalf("GhostUserID(%q) = %s, %v; want %s", tt.address, got, err, tt.want)
			}
			back, err := m.AddressForGhost(got)
			if err != nil || back != tt.canonical {
				t.Fatalf("AddressForGhost(%s) = %q, %v; want %q", got, back, err, tt.canonical)
			}
		})
	}
}

func TestGhostUserIDRejects(t *testing.T) {
	tests := []struct{ name, address string }{
		{"empty", ""},
		{"no domain", "alice"},
		{"no domain after at", "alice@"},
		{"no local part", "@example.org"},
		{"two addresses", "a@x.example, b@x.example"},
		{"quoted local part", `"a b"@x.example`},
		{"too long", strings.Repeat("a", 64) + "@" + strings.Repeat("b.", 95) + "example"},
		{"header injection", "alice@example.org\r\nBcc: x@y"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got, err := m.GhostUserID(tt.address); !errors.Is(err, ErrInvalidAddress) {
				t.Fatalf("GhostUserID(%q) = %s, %v; want ErrInvalidAddress", tt.address, got, err)
			}
		})
	}
}

func TestAddressForGhostRejects(t *testing.T) {
	tests := []struct {
		name   string
		userID id.UserID
	}{
		{"other homeserver", "@_email_alice=40example.org:evil.example"},
		{"no prefix", "@alice:example.org"},
		{"prefix only", "@_email_:example.org"},
		{"non-canonical spelling", "@_email_=61lice=40example.org:example.org"},
		{"upper-case domain", "@_email_alice=40_example.org:example.org"},
		{"bad escape", "@_email_alice=4:example.org"},
		{"no domain", "@_email_alice:example.org"},
		{"display name smuggled in", "@_email_=22a=22 =3ca=40x=3e:example.org"},
		{"not a user ID", "alice"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if a, err := m.AddressForGhost(tt.userID); !errors.Is(err, ErrNotMapped) {
				t.Fatalf("AddressForGhost(%s) = %q, %v; want ErrNotMapped", tt.userID, a, err)
			}
		})
	}
}

// FuzzGhostMapping: every address with a ghost maps back to its canonical form, which has
// the same ghost; every user ID that maps to an address is the ghost of that address.
func FuzzGhostMapping(f *testing.F) {
	for _, s := range []string{"alice@example.org", "Alice@Example.ORG", "jürgen@x.example", "a_b=c@d", "Bob <bob@x.example>", "root@[::1]"} {
		f.Add(s, "@_email_"+id.EncodeUserLocalpart(s)+":example.org")
	}
	f.Fuzz(func(t *testing.T, address, userID string) {
		if ghost, err := m.GhostUserID(address); err == nil {
			back, err := m.AddressForGhost(ghost)
			if err != nil {
				t.Fatalf("address %q -> %s -> %v", address, ghost, err)
			}
			if canonical, _ := Canonical(address); back != canonical {
				t.Fatalf("address %q -> %s -> %q, want %q", address, ghost, back, canonical)
			}
			if again, err := m.GhostUserID(back); err != nil || again != ghost {
				t.Fatalf("canonical %q -> %s, %v; want %s", back, again, err, ghost)
			}
		}
		if a, err := m.AddressForGhost(id.UserID(userID)); err == nil {
			if again, err := m.GhostUserID(a); err != nil || again != id.UserID(userID) {
				t.Fatalf("user ID %q -> %q -> %s, %v: not canonical", userID, a, again, err)
			}
		}
	})
}
