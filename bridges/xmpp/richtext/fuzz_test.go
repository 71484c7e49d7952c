package richtext

import (
	"regexp"
	"strings"
	"testing"

	"golang.org/x/net/html"
)

// eventHandler finds on*= attributes in markup.
var eventHandler = regexp.MustCompile(`(?i)<[^>]*[\s/"']on[a-z]*\s*=`)

// checkMarkup fails when markup has a script, an event handler attribute, an element
// outside allowed or a link with an unsafe scheme.
func checkMarkup(t *testing.T, what, markup string, allowed map[string]bool) {
	t.Helper()
	if strings.Contains(strings.ToLower(markup), "<script") || eventHandler.MatchString(markup) {
		t.Fatalf("%s %q has a script or an event handler", what, markup)
	}
	for _, n := range parseHTML(markup) {
		var walk func(*html.Node)
		walk = func(n *html.Node) {
			if n.Type == html.ElementNode {
				if !allowed[n.Data] {
					t.Fatalf("%s %q has element <%s>", what, markup, n.Data)
				}
				for _, a := range n.Attr {
					if strings.HasPrefix(strings.ToLower(a.Key), "on") || a.Key == "href" && !safeURL(a.Val) {
						t.Fatalf("%s %q has attribute %s=%q", what, markup, a.Key, a.Val)
					}
				}
			}
			for c := n.FirstChild; c != nil; c = c.NextSibling {
				walk(c)
			}
		}
		walk(n)
	}
}

var (
	xhtmlIMElements = map[string]bool{"a": true, "blockquote": true, "br": true, "cite": true, "code": true,
		"em": true, "li": true, "ol": true, "p": true, "pre": true, "span": true, "strong": true, "ul": true}
	matrixAllowed = func() map[string]bool {
		m := map[string]bool{"font": true, "a": true, "ol": true, "br": true, "hr": true}
		for k := range matrixElements {
			m[k] = true
		}
		return m
	}()
)

func FuzzToMatrix(f *testing.F) {
	f.Add("*bold* _it_ ~s~ `c`\n> q\n```\npre\n```", "")
	f.Add("x", `<p>hi <span style="font-weight: bold; color: #f00">b</span><a href="javascript:x">j</a><img src="https://x/a.png" alt="a"/></p>`)
	f.Add("x", `<script>alert(1)</script><p onclick="x">y</p><a href=" JaVaScRiPt:alert(1)">z</a>`)
	f.Add("", `<b>unclosed <i>html &nbsp;`)
	f.Fuzz(func(t *testing.T, body, xhtml string) {
		_, formatted := ToMatrix(body, xhtml)
		checkMarkup(t, "formatted", formatted, matrixAllowed)
	})
}

func FuzzFromMatrix(f *testing.F) {
	f.Add("x", `<mx-reply><blockquote>q</blockquote></mx-reply><p>Hello <b>bold</b> <a href="https://x.example">l</a></p><ul><li>a</li></ul>`)
	f.Add("x", `<pre><code>a &lt; b</code></pre><table><tr><td>1</td></tr></table><font color="#ff0000">r</font>`)
	f.Add("x", `<script>alert(1)</script><img src=x onerror=alert(1)><a href="javascript:alert(1)" onclick="x">j</a>`)
	f.Add("x", "<b>\x00\x01\uFFFE</b>]]>&amp;")
	f.Fuzz(func(t *testing.T, body, formatted string) {
		_, xhtml := FromMatrix(body, FormatHTML, formatted)
		if err := checkXML(xhtml); err != nil {
			t.Fatalf("xhtml %q is not well-formed XML: %v", xhtml, err)
		}
		checkMarkup(t, "xhtml", xhtml, xhtmlIMElements)
	})
}
