package sipua

import (
	"strings"
	"testing"
)

func TestSafeReason(t *testing.T) {
	tests := []struct{ name, in, want string }{
		{"plain", "Busy Here", "Busy Here"},
		{"line breaks", "Bad Request: x\r\nVia: evil", "Bad Request: x  Via: evil"},
		{"control characters", "a\x00b\x7fc", "a b c"},
		{"too long", strings.Repeat("é", 150), strings.Repeat("é", 100)},
		{"cut inside a rune", "x" + strings.Repeat("é", 150), "x" + strings.Repeat("é", 99)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := SafeReason(tt.in); got != tt.want {
				t.Errorf("SafeReason(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}
