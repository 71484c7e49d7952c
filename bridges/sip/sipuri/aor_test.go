package sipuri

import (
	"errors"
	"strings"
	"testing"
)

func TestParseAOR(t *testing.T) {
	tests := []struct {
		name, in string
		want     AOR
		uri      string
	}{
		{"sip URI", "sip:alice@example.org", AOR{"alice", "example.org"}, "sip:alice@example.org"},
		{"sips URI", "sips:alice@example.org", AOR{"alice", "example.org"}, "sip:alice@example.org"},
		{"scheme case", "SIP:alice@example.org", AOR{"alice", "example.org"}, "sip:alice@example.org"},
		{"angle brackets", " <sip:alice@example.org> ", AOR{"alice", "example.org"}, "sip:alice@example.org"},
		{"bare", "alice@example.org", AOR{"alice", "example.org"}, "sip:alice@example.org"},
		{"user case kept, host lowered", "sip:Alice@EXAMPLE.Org", AOR{"Alice", "example.org"}, "sip:Alice@example.org"},
		{"port, params and headers dropped", "sip:alice@example.org:5060;transport=tcp;lr?subject=hi%20there", AOR{"alice", "example.org"}, "sip:alice@example.org"},
		{"trailing dot", "sip:alice@example.org.", AOR{"alice", "example.org"}, "sip:alice@example.org"},
		{"percent-decoded", "sip:%61lice%20b%40x@example.org", AOR{"alice b@x", "example.org"}, "sip:alice%20b%40x@example.org"},
		{"telephone user", "sip:+49-30-123;phone-context=example.org@example.org;user=phone", AOR{"+49-30-123;phone-context=example.org", "example.org"}, "sip:+49-30-123;phone-context=example.org@example.org"},
		{"user-unreserved and marks", "sip:a&=+$,;?/-_.!~*'()@x.example", AOR{"a&=+$,;?/-_.!~*'()", "x.example"}, "sip:a&=+$,;?/-_.!~*'()@x.example"},
		{"leading slashes", "sip:%2F/x@example.org", AOR{"//x", "example.org"}, "sip:%2F/x@example.org"},
		{"leading slashes escaped either way", "sip:%2F%2Fx@example.org", AOR{"//x", "example.org"}, "sip:%2F/x@example.org"},
		{"single leading slash", "sip:/x@example.org", AOR{"/x", "example.org"}, "sip:/x@example.org"},
		{"non-ascii user", "sip:j%C3%BCrgen@example.org", AOR{"jürgen", "example.org"}, "sip:j%C3%BCrgen@example.org"},
		{"IPv4", "sip:bob@192.0.2.1:5070", AOR{"bob", "192.0.2.1"}, "sip:bob@192.0.2.1"},
		{"IPv6 canonicalized", "sip:bob@[2001:DB8:0::1]:5070;transport=udp", AOR{"bob", "[2001:db8::1]"}, "sip:bob@[2001:db8::1]"},
		{"IPv4-mapped IPv6", "sip:bob@[::ffff:192.0.2.1]", AOR{"bob", "[::ffff:192.0.2.1]"}, "sip:bob@[::ffff:192.0.2.1]"},
		{"single label host", "sip:bob@localhost", AOR{"bob", "localhost"}, "sip:bob@localhost"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseAOR(tt.in)
			if err != nil || got != tt.want {
				t.Fatalf("ParseAOR(%q) = %#v, %v; want %#v", tt.in, got, err, tt.want)
			}
			if got.URI() != tt.uri {
				t.Fatalf("URI() = %q, want %q", got.URI(), tt.uri)
			}
			if again, err := ParseAOR(got.URI()); err != nil || again != got {
				t.Fatalf("ParseAOR(URI()) = %#v, %v", again, err)
			}
			if again, err := ParseAOR(got.String()); err != nil || again != got {
				t.Fatalf("ParseAOR(String()) = %#v, %v", again, err)
			}
		})
	}
}

func TestParseAORRejects(t *testing.T) {
	long := "sip:" + strings.Repeat("a", MaxLen-len("sip:@x.example")+1) + "@x.example"
	tests := []struct {
		name, in string
		want     error
	}{
		{"tel URI", "tel:+4930123456", ErrTelURI},
		{"tel URI upper case", "<TEL:+4930123456>", ErrTelURI},
		{"other scheme", "mailto:alice@example.org", ErrInvalidAOR},
		{"no user", "sip:example.org", ErrInvalidAOR},
		{"empty user", "sip:@example.org", ErrInvalidAOR},
		{"empty", "", ErrInvalidAOR},
		{"password", "sip:alice:secret@example.org", ErrInvalidAOR},
		{"hierarchical slashes", "sip://alice@example.org", ErrInvalidAOR},
		{"hierarchical slashes, bare", "//alice@example.org", ErrInvalidAOR},
		{"space in user", "sip:al ice@example.org", ErrInvalidAOR},
		{"angle bracket in user", "sip:al<ice@example.org", ErrInvalidAOR},
		{"unbalanced brackets", "<sip:alice@example.org", ErrInvalidAOR},
		{"display name", `"Alice" <sip:alice@example.org>`, ErrInvalidAOR},
		{"truncated escape", "sip:alice%4@example.org", ErrInvalidAOR},
		{"bad escape", "sip:alice%zz@example.org", ErrInvalidAOR},
		{"escaped NUL", "sip:alice%00@example.org", ErrInvalidAOR},
		{"escaped newline", "sip:alice%0a@example.org", ErrInvalidAOR},
		{"not UTF-8", "sip:alice%ff@example.org", ErrInvalidAOR},
		{"empty host", "sip:alice@", ErrInvalidAOR},
		{"underscore in host", "sip:alice@ex_ample.org", ErrInvalidAOR},
		{"non-ascii host", "sip:alice@exämple.org", ErrInvalidAOR},
		{"empty label", "sip:alice@example..org", ErrInvalidAOR},
		{"label with leading hyphen", "sip:alice@-example.org", ErrInvalidAOR},
		{"numeric top label", "sip:alice@example.123", ErrInvalidAOR},
		{"bad IPv4", "sip:alice@192.0.2.256", ErrInvalidAOR},
		{"IPv4 leading zero", "sip:alice@192.0.2.01", ErrInvalidAOR},
		{"bare IPv6", "sip:alice@2001:db8::1", ErrInvalidAOR},
		{"IPv4 in brackets", "sip:alice@[192.0.2.1]", ErrInvalidAOR},
		{"IPv6 zone", "sip:alice@[fe80::1%25eth0]", ErrInvalidAOR},
		{"unterminated IPv6", "sip:alice@[2001:db8::1", ErrInvalidAOR},
		{"empty port", "sip:alice@example.org:", ErrInvalidAOR},
		{"bad port", "sip:alice@example.org:65536", ErrInvalidAOR},
		{"port with letters", "sip:alice@example.org:50a", ErrInvalidAOR},
		{"space in params", "sip:alice@example.org;transport=tcp x", ErrInvalidAOR},
		{"second @", "sip:alice@example.org@evil.example", ErrInvalidAOR},
		{"too long", long, ErrTooLong},
		{"canonical form too long", strings.Repeat("a", MaxLen-len("@x.example")) + "@x.example", ErrTooLong},
		{"input too long", "sip:alice@example.org;" + strings.Repeat("x", MaxLen), ErrTooLong},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got, err := ParseAOR(tt.in); !errors.Is(err, tt.want) {
				t.Fatalf("ParseAOR(%q) = %#v, %v; want %v", tt.in, got, err, tt.want)
			}
		})
	}
}

func TestParseAORHidesPassword(t *testing.T) {
	_, err := ParseAOR("sip:alice:hunter2@example.org")
	if err == nil || strings.Contains(err.Error(), "hunter2") {
		t.Fatalf("error %v: want an error without the password", err)
	}
}

func TestAORValidate(t *testing.T) {
	tests := []struct {
		name string
		a    AOR
		ok   bool
	}{
		{"canonical", AOR{"Alice B", "example.org"}, true},
		{"upper case host", AOR{"alice", "Example.org"}, false},
		{"IPv6 not canonical", AOR{"alice", "[2001:db8:0::1]"}, false},
		{"empty user", AOR{"", "example.org"}, false},
		{"zero", AOR{}, false},
		{"host with port", AOR{"alice", "example.org:5060"}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.a.Validate(); (err == nil) != tt.ok {
				t.Fatalf("Validate(%#v) = %v, want ok=%v", tt.a, err, tt.ok)
			}
		})
	}
}
