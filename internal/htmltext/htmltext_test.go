package htmltext

import (
	"strings"
	"testing"
)

// styled are the options of the XMPP bridge's XEP-0393 body.
var styled = Options{
	Styling: true, Bullet: "• ", LinkFormat: "%s <%s>",
	TextOnly: func(href string) bool { return strings.HasPrefix(href, "https://matrix.to/#/@") },
}

func TestPlain(t *testing.T) {
	tests := []struct {
		name, html, want string
	}{
		{"text", "hello", "hello"},
		{"entities", "a &amp; b &lt;c&gt; &#x1F600; caf&eacute;", "a & b <c> 😀 café"},
		{"br", "one<br>two<br/>three", "one\ntwo\nthree"},
		{"paragraphs", "<p>one</p><p>two</p>", "one\n\ntwo"},
		{"white space collapsed", "<p>  a \n  b  </p>", "a b"},
		{"inline markup dropped", "<b>bold</b> <i>it</i> <del>x</del> <code>a  b</code>", "bold it x a b"},
		{"heading", "<h1>Title</h1><p>text</p>", "Title\n\ntext"},
		{"link", `see <a href="https://example.org/x">the page</a>!`, "see the page (https://example.org/x)!"},
		{"link text is the url", `<a href="https://example.org/">https://example.org</a>`, "https://example.org/"},
		{"link text is the url without scheme", `<a href="https://example.org/a">example.org/a</a>`, "https://example.org/a"},
		{"mailto", `<a href="mailto:a@example.org">a@example.org</a>`, "mailto:a@example.org"},
		{"empty link text", `<a href="https://example.org/"></a>`, "https://example.org/"},
		{"unsafe link", `<a href="javascript:alert(1)">click</a>`, "click"},
		{"scheme not allowed by default", `<a href="xmpp:a@example.org">a</a>`, "a"},
		{"no text-only links by default", `<a href="https://matrix.to/#/@a:x">A</a>`, "A (https://matrix.to/#/@a:x)"},
		{"unordered list", "<ul><li>one</li><li>two</li></ul>", "- one\n- two"},
		{"ordered list with start", `<ol start="3"><li>c</li><li>d</li></ol>`, "3. c\n4. d"},
		{"nested list", "<ul><li>a<ul><li>b</li></ul></li><li>c</li></ul>", "- a\n  - b\n- c"},
		{"empty items not numbered", "<ol><li></li><li>b</li></ol>", "1. b"},
		{"text and lists directly in a list", "<ul>a<li>b</li><ol><li>c</li></ol></ul>", "- a\n- b\n- 1. c"},
		{"item outside a list", "<div><li>x</li></div>", "- x"},
		{"list item with paragraphs", "<ol><li><p>x</p><p>y</p></li></ol>", "1. x\n   y"},
		{"blockquote", "<blockquote><p>q</p><p>r</p></blockquote><p>s</p>", "> q\n>\n> r\n\ns"},
		{"pre kept", "<pre><code>if x {\n    y()\n}\n\n</code></pre>", "if x {\n    y()\n}"},
		{"br in pre", "<pre>a<br>b</pre>", "a\nb"},
		{"hr", "<p>a</p><hr><p>b</p>", "a\n\n---\n\nb"},
		{"table", "<table><tr><th>a</th><th>b</th></tr><tr><td>1</td><td>2</td></tr></table>", "a | b\n1 | 2"},
		{"divs are lines", "<div>a</div><div>b</div>", "a\nb"},
		{"image alt", `<img src="mxc://x/y" alt="a cat">`, "a cat"},
		{"skipped by default", "<style>p{}</style>x<script>s()</script><iframe>f</iframe><svg><text>v</text></svg>", "x"},
		{"unknown elements kept", "<mx-reply>r</mx-reply>t", "rt"},
		{"empty", "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Plain(tt.html, Options{}); got != tt.want {
				t.Errorf("Plain(%q) =\n%q\nwant\n%q", tt.html, got, tt.want)
			}
		})
	}
}

func TestPlainStyled(t *testing.T) {
	tests := []struct {
		name, html, want string
	}{
		{"spans", "<b>b</b> <strong>s</strong> <i>i</i> <em> e </em> <del>d</del> <s>s</s> <strike>k</strike>", "*b* *s* _i_ _e_ ~d~ ~s~ ~k~"},
		{"span across lines left alone", "<b>a<br>b</b>", "a\nb"},
		{"code", "<code>a &lt; b</code>", "`a < b`"},
		{"code on one line", "<code>a\nb<br>c</code>", "`a b c`"},
		{"code with a backtick", "<code>a`b</code>", "a`b"},
		{"heading", "<h2>Title</h2>text", "*Title*\n\ntext"},
		{"pre", "<pre><code>if a {\n}\n\n</code></pre>", "```\nif a {\n}\n\n```"},
		{"link", `<a href="https://x.example/a">this</a>`, "this <https://x.example/a>"},
		{"mention", `<a href="https://matrix.to/#/@alice:example.org">Alice</a>: hi`, "Alice: hi"},
		{"mention without text", `<a href="https://matrix.to/#/@alice:example.org"></a>`, "https://matrix.to/#/@alice:example.org"},
		{"bullets", "<ul><li>a</li><li>b<ul><li>c</li></ul></li></ul>", "• a\n• b\n  • c"},
		{"quote", "<blockquote><b>q</b></blockquote>", "> *q*"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Plain(tt.html, styled); got != tt.want {
				t.Errorf("Plain(%q) =\n%q\nwant\n%q", tt.html, got, tt.want)
			}
		})
	}
}

func TestOptions(t *testing.T) {
	tests := []struct {
		name, html string
		opts       Options
		want       string
	}{
		{"safe url", `<a href="sip:a@example.org">a</a> <a href="https://x.example">x</a>`,
			Options{SafeURL: func(h string) bool { return strings.HasPrefix(h, "sip:") }}, "a (sip:a@example.org) x"},
		{"skip", "<mx-reply>r</mx-reply><iframe>f</iframe>t",
			Options{Skip: map[string]bool{"mx-reply": true}}, "ft"},
		{"bullet", "<ul><li>a</li></ul>", Options{Bullet: "* "}, "* a"},
		{"link format", `<a href="https://x.example/">x</a>`, Options{LinkFormat: "[%s](%s)"}, "[x](https://x.example/)"},
		{"max depth", "<blockquote><blockquote><b>x</b>  y</blockquote></blockquote>", Options{MaxDepth: 2}, "> > x y"},
		{"no max depth", strings.Repeat("<div>", 200) + "x", Options{MaxDepth: -1}, "x"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Plain(tt.html, tt.opts); got != tt.want {
				t.Errorf("Plain(%q) =\n%q\nwant\n%q", tt.html, got, tt.want)
			}
		})
	}
}

func TestPlainDeep(t *testing.T) {
	deep := strings.Repeat("<blockquote>", 500) + "x" + strings.Repeat("</blockquote>", 500)
	if got := Plain(deep, Options{}); !strings.Contains(got, "x") {
		t.Errorf("deeply nested text lost: %q", got)
	}
}
