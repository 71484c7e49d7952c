package sipuri

import (
	"errors"
	"strings"
	"testing"
)

var m = Mapper{Homeserver: "hs.example", Domain: "matrix.example.org", Prefix: DefaultPrefix}

func TestMapperValidate(t *testing.T) {
	tests := []struct {
		name string
		m    Mapper
		ok   bool
	}{
		{"ok", m, true},
		{"homeserver with port", Mapper{"hs.example:8448", "matrix.example.org", "_sip_"}, true},
		{"IP domain", Mapper{"hs.example", "192.0.2.1", "_sip_"}, true},
		{"empty prefix", Mapper{"hs.example", "matrix.example.org", ""}, false},
		{"upper case prefix", Mapper{"hs.example", "matrix.example.org", "_SIP_"}, false},
		{"upper case domain", Mapper{"hs.example", "Matrix.example.org", "_sip_"}, false},
		{"domain with port", Mapper{"hs.example", "matrix.example.org:5060", "_sip_"}, false},
		{"empty homeserver", Mapper{"", "matrix.example.org", "_sip_"}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.m.Validate(); (err == nil) != tt.ok {
				t.Fatalf("Validate(%+v) = %v, want ok=%v", tt.m, err, tt.ok)
			}
		})
	}
}

func TestGhostRoundTrip(t *testing.T) {
	tests := []struct {
		name, aor, want string
	}{
		{"plain", "sip:alice@example.org", "_sip_alice=40example.org"},
		{"upper case user", "sip:Alice@example.org", "_sip__alice=40example.org"},
		{"underscore", "sip:a_b@example.org", "_sip_a__b=40example.org"},
		{"telephone number", "sip:+4930123@example.org", "_sip_+4930123=40example.org"},
		{"escaped at sign", "sip:a%40b@example.org", "_sip_a=40b=40example.org"},
		{"non-ascii", "sip:j%C3%BCrgen@example.org", "_sip_j=c3=bcrgen=40example.org"},
		{"slash and equals", "sip:a/b=c@example.org", "_sip_a=2fb=3dc=40example.org"},
		{"IPv6", "sip:bob@[2001:db8::1]", "_sip_bob=40=5b2001=3adb8=3a=3a1=5d"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, err := ParseAOR(tt.aor)
			if err != nil {
				t.Fatal(err)
			}
			got, err := m.GhostLocalpart(a)
			if err != nil || got != tt.want {
				t.Fatalf("GhostLocalpart(%s) = %q, %v; want %q", a, got, err, tt.want)
			}
			if !validLocalpart(got) || !m.IsGhost(got) {
				t.Fatalf("%q is not a valid ghost localpart", got)
			}
			back, err := m.GhostAOR(got)
			if err != nil || back != a {
				t.Fatalf("GhostAOR(%q) = %#v, %v; want %#v", got, back, err, a)
			}
		})
	}
}

func TestGhostLocalpartRejects(t *testing.T) {
	tests := []struct {
		name string
		a    AOR
		want error
	}{
		{"bridge's own domain", AOR{"alice", "matrix.example.org"}, ErrLoop},
		{"not canonical", AOR{"alice", "Example.org"}, ErrInvalidAOR},
		{"zero", AOR{}, ErrInvalidAOR},
		{"user ID too long", AOR{strings.Repeat("%", 80), "example.org"}, ErrTooLong},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got, err := m.GhostLocalpart(tt.a); !errors.Is(err, tt.want) {
				t.Fatalf("GhostLocalpart(%#v) = %q, %v; want %v", tt.a, got, err, tt.want)
			}
		})
	}
}

func TestGhostAORRejects(t *testing.T) {
	tests := []struct {
		name, localpart string
	}{
		{"no prefix", "alice=40example.org"},
		{"prefix only", "_sip_"},
		{"no host", "_sip_alice"},
		{"empty user", "_sip_=40example.org"},
		{"non-canonical spelling", "_sip_=61lice=40example.org"},
		{"upper case hex", "_sip_alice=4Aexample.org"},
		{"upper case host", "_sip_alice=40_example.org"},
		{"bad escape", "_sip_alice=4"},
		{"bad underscore", "_sip_alice_1=40example.org"},
		{"trailing underscore", "_sip_alice=40example.org_"},
		{"character never written", "_sip_alice/x=40example.org"},
		{"bridge's own domain", "_sip_alice=40matrix.example.org"},
		{"port smuggled in", "_sip_alice=40example.org=3a5060"},
		{"control character", "_sip_a=0ab=40example.org"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if a, err := m.GhostAOR(tt.localpart); !errors.Is(err, ErrNotMapped) {
				t.Fatalf("GhostAOR(%q) = %#v, %v; want ErrNotMapped", tt.localpart, a, err)
			}
		})
	}
}

func TestIsGhost(t *testing.T) {
	if !m.IsGhost("_sip_alice=40example.org") || !m.IsGhost("_sip_garbage") || m.IsGhost("alice") || m.IsGhost("_xmpp_alice") {
		t.Fatal("IsGhost does not follow the prefix")
	}
	if !(Mapper{}).IsGhost("alice") {
		t.Fatal("with no prefix every localpart must count as a ghost (fail closed)")
	}
}

func TestUserRoundTrip(t *testing.T) {
	tests := []struct {
		name, userID, want string
	}{
		{"own homeserver", "@alice:hs.example", "alice"},
		{"own homeserver, all simple characters", "@a.b_c-d/e+f9:hs.example", "a.b_c-d/e+f9"},
		{"other homeserver", "@bob:other.example", "bob=40other.example"},
		{"other homeserver with port", "@bob:other.example:8448", "bob=40other.example=3a8448"},
		{"IPv6 homeserver", "@bob:[2001:db8::1]:8448", "bob=40=5b2001=3adb8=3a=3a1=5d=3a8448"},
		{"historical upper case", "@Alice:hs.example", "Alice=40hs.example"},
		{"equals sign is escaped", "@a=b:hs.example", "a=3db=40hs.example"},
		{"leading slash is escaped", "@/a:hs.example", "=2fa=40hs.example"},
		{"leading slash on another server", "@//:0", "=2f/=400"},
		{"historical punctuation", `@a"#%<>@[\]^{|}!~*'():hs.example`, `a=22=23=25=3c=3e=40=5b=5c=5d=5e=7b=7c=7d!~*'()=40hs.example`},
		{"other server's ghost-like user", "@_sip_x:other.example", "_sip_x=40other.example"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, err := m.UserAOR(tt.userID)
			want := AOR{tt.want, m.Domain}
			if err != nil || a != want {
				t.Fatalf("UserAOR(%q) = %#v, %v; want %#v", tt.userID, a, err, want)
			}
			if strings.Contains(a.URI(), "%") {
				t.Fatalf("URI %q needs percent-escaping", a.URI())
			}
			back, err := m.MatrixUser(a)
			if err != nil || back != tt.userID {
				t.Fatalf("MatrixUser(%s) = %q, %v; want %q", a, back, err, tt.userID)
			}
		})
	}
}

func TestUserAORRejects(t *testing.T) {
	tests := []struct {
		name, userID string
		want         error
	}{
		{"ghost of this bridge", "@_sip_alice=40example.org:hs.example", ErrLoop},
		{"anything in the ghost namespace", "@_sip_:hs.example", ErrLoop},
		{"not a user ID", "alice", nil},
		{"no server", "@alice", nil},
		{"empty localpart", "@:hs.example", nil},
		{"space in localpart", "@al ice:hs.example", nil},
		{"non-ascii localpart", "@jürgen:hs.example", nil},
		{"bad server", "@alice:hs_example", nil},
		{"bad port", "@alice:hs.example:84a8", nil},
		{"too long", "@" + strings.Repeat("a", 250) + ":hs.example", nil},
		{"AOR too long", "@" + strings.Repeat("#", 80) + ":hs.example", ErrTooLong},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, err := m.UserAOR(tt.userID)
			if err == nil || (tt.want != nil && !errors.Is(err, tt.want)) {
				t.Fatalf("UserAOR(%q) = %#v, %v; want error %v", tt.userID, a, err, tt.want)
			}
		})
	}
}

func TestMatrixUserRejects(t *testing.T) {
	tests := []struct {
		name string
		a    AOR
	}{
		{"other domain", AOR{"alice", "example.org"}},
		{"ghost of this bridge", AOR{"_sip_alice", m.Domain}},
		{"escaped ghost of this bridge", AOR{"_sip_alice=40hs.example", m.Domain}},
		{"simple user escaped", AOR{"alice=40hs.example", m.Domain}},
		{"upper case hex", AOR{"bob=40other.example=3A8448", m.Domain}},
		{"escaped when not needed", AOR{"b=6fb=40other.example", m.Domain}},
		{"no server", AOR{"bob=3d", m.Domain}},
		{"bad escape", AOR{"bob=4", m.Domain}},
		{"character needing escape", AOR{"bob;x=40other.example", m.Domain}},
		{"upper case without escape", AOR{"Alice", m.Domain}},
		{"colon", AOR{"a:b", m.Domain}},
		{"leading slash not escaped", AOR{"/a=40hs.example", m.Domain}},
		{"simple with leading slash", AOR{"/a", m.Domain}},
		{"empty", AOR{"", m.Domain}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if u, err := m.MatrixUser(tt.a); !errors.Is(err, ErrNotMapped) {
				t.Fatalf("MatrixUser(%#v) = %q, %v; want ErrNotMapped", tt.a, u, err)
			}
		})
	}
}
