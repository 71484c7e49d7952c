package htmltext

import (
	"strings"
	"testing"
	"unicode/utf8"
)

// FuzzPlain checks that Plain never panics, returns valid UTF-8 for valid UTF-8 input and
// never shows the content of a skipped element.
func FuzzPlain(f *testing.F) {
	for _, seed := range []string{
		"<p>a<br>b</p>", `<a href="https://x">y</a>`, "<ul><li>a<ol><li>b</li></ol></li></ul>",
		"<blockquote><blockquote>q</blockquote></blockquote>", "<pre>x\n y</pre>", "<code>a<br>`b</code>",
		"<mx-reply><blockquote>r</blockquote></mx-reply>t", "&amp;&lt;&#0;&#xD800;", "<table><tr><td>1",
		strings.Repeat("<ul><li>", 80) + "<b>x</b>", "<h1><s> s </s></h1><ol start=999999999><li>a",
	} {
		f.Add(seed, false)
		f.Add(seed, true)
	}
	f.Fuzz(func(t *testing.T, s string, styling bool) {
		if len(s) > 1<<14 {
			return
		}
		o := Options{Styling: styling}
		if styling {
			o = styled
		}
		out := Plain(s, o)
		if utf8.ValidString(s) && !utf8.ValidString(out) {
			t.Fatalf("Plain(%q) = %q, not UTF-8", s, out)
		}
		const marker = "SKIPPEDCONTENT"
		if !strings.Contains(s, marker) {
			if got := Plain("<script>"+marker+"</script>"+s, o); strings.Contains(got, marker) {
				t.Fatalf("Plain(<script>%q) = %q, shows the script", s, got)
			}
		}
	})
}
