package fetch

import (
	"net/url"
	"strings"
	"testing"
	"unicode"
)

// FuzzFileName: whatever the Content-Disposition header and URL path, the file name is
// non-empty, at most 255 bytes, valid UTF-8 and free of slashes and control characters.
func FuzzFileName(f *testing.F) {
	f.Add(`attachment; filename="../../a.txt"`, "/x/y%20z.png")
	f.Add(`attachment; filename*=UTF-8''tr%C3%A8s.jpg`, "/")
	f.Add(`inline`, "")
	f.Fuzz(func(t *testing.T, disposition, p string) {
		name := fileName(disposition, &url.URL{Path: p})
		if name == "" || len(name) > maxFileName || strings.ContainsAny(name, `/\`) || !utf8Valid(name) {
			t.Fatalf("fileName(%q, %q) = %q", disposition, p, name)
		}
		for _, r := range name {
			if unicode.IsControl(r) || unicode.Is(unicode.Cf, r) {
				t.Fatalf("fileName(%q, %q) = %q has %U", disposition, p, name, r)
			}
		}
	})
}

func utf8Valid(s string) bool { return strings.ToValidUTF8(s, "\uFFFD") == s }
