package sipuri

import (
	"strings"
	"testing"
)

func TestDomainList(t *testing.T) {
	tests := []struct {
		name    string
		entries []string
		allowed []string
		refused []string
	}{
		{"empty admits nobody", nil, nil, []string{"example.org", "localhost", "127.0.0.1"}},
		{"exact", []string{"Example.org."}, []string{"example.org", "EXAMPLE.ORG", "example.org."}, []string{"sub.example.org", "example.org.evil", "badexample.org"}},
		{"wildcard subdomains only", []string{"*.example.org"}, []string{"a.example.org", "a.b.example.org"}, []string{"example.org", "aexample.org"}},
		{"star admits every valid host", []string{"*"}, []string{"example.org", "192.0.2.1", "[::1]"}, []string{"", "bad host", "example.org:5060"}},
		{"IP addresses", []string{"127.0.0.1", "::1", "[2001:db8::1]"}, []string{"127.0.0.1", "[::1]", "::1", "[2001:DB8:0::1]"}, []string{"127.0.0.2", "[::2]"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, err := ParseDomainList(tt.entries)
			if err != nil {
				t.Fatal(err)
			}
			for _, h := range tt.allowed {
				if !d.Allows(h) {
					t.Errorf("Allows(%q) = false, want true", h)
				}
			}
			for _, h := range tt.refused {
				if d.Allows(h) {
					t.Errorf("Allows(%q) = true, want false", h)
				}
			}
		})
	}
}

func TestParseDomainListRejects(t *testing.T) {
	tests := []struct {
		name    string
		entries []string
	}{
		{"empty entry", []string{""}},
		{"port", []string{"example.org:5060"}},
		{"bad host", []string{"exa mple.org"}},
		{"wildcard in the middle", []string{"a.*.example.org"}},
		{"wildcard on an IP", []string{"*.192.0.2.1"}},
		{"bare wildcard dot", []string{"*."}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if d, err := ParseDomainList(tt.entries); err == nil {
				t.Fatalf("ParseDomainList(%q) = %v, want an error", tt.entries, d)
			}
		})
	}
}

func TestParseDomainListNamesEveryBadEntry(t *testing.T) {
	_, err := ParseDomainList([]string{"good.example", "bad one", "*", "also:bad"})
	if err == nil || !strings.Contains(err.Error(), "bad one") || !strings.Contains(err.Error(), "also:bad") {
		t.Fatalf("error %v: want both bad entries named", err)
	}
}

func TestDomainListString(t *testing.T) {
	d, err := ParseDomainList([]string{"Example.org", "*.Example.net", "*"})
	if err != nil || d.String() != "example.org, *.example.net, *" {
		t.Fatalf("String() = %q, %v", d.String(), err)
	}
}
