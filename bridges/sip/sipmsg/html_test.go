package sipmsg

import (
	"strings"
	"testing"
)

func TestHTMLToPlain(t *testing.T) {
	tests := []struct {
		name, html, want string
	}{
		{"text", "hello", "hello"},
		{"entities", "a &amp; b &lt;c&gt; &quot;d&quot; &#x1F600; caf&eacute;", `a & b <c> "d" 😀 café`},
		{"br", "one<br>two<br/>three", "one\ntwo\nthree"},
		{"paragraphs", "<p>one</p><p>two</p>", "one\n\ntwo"},
		{"white space collapsed", "<p>  a \n  b  </p>", "a b"},
		{"inline markup dropped", "<b>bold</b> <i>it</i> <u>u</u> <del>x</del> <font data-mx-color=\"#ff0000\">red</font>", "bold it u x red"},
		{"link", `see <a href="https://example.org/x">the page</a>!`, "see the page (https://example.org/x)!"},
		{"link text is the url", `<a href="https://example.org/">https://example.org/</a>`, "https://example.org/"},
		{"link text is the url without slash", `<a href="https://example.org/">https://example.org</a>`, "https://example.org/"},
		{"link text is the url without scheme", `<a href="https://example.org/a">example.org/a</a>`, "https://example.org/a"},
		{"mailto", `<a href="mailto:a@example.org">a@example.org</a>`, "mailto:a@example.org"},
		{"empty link text", `<a href="https://example.org/"></a>`, "https://example.org/"},
		{"javascript link", `<a href="javascript:alert(1)">click</a>`, "click"},
		{"relative link", `<a href="/x">x</a>`, "x"},
		{"mention", `<a href="https://matrix.to/#/@alice:example.org">Alice</a>: hi`, "Alice: hi"},
		{"unordered list", "<ul><li>one</li><li>two</li></ul>", "- one\n- two"},
		{"ordered list with start", `<ol start="3"><li>c</li><li>d</li></ol>`, "3. c\n4. d"},
		{"nested list", "<ul><li>a<ul><li>b</li></ul></li><li>c</li></ul>", "- a\n  - b\n- c"},
		{"list item with paragraphs", "<ol><li><p>x</p><p>y</p></li></ol>", "1. x\n   y"},
		{"blockquote", "<blockquote><p>quoted</p><p>more</p></blockquote><p>reply</p>", "> quoted\n>\n> more\n\nreply"},
		{"nested blockquote", "<blockquote>a<blockquote>b</blockquote></blockquote>", "> a\n>\n> > b"},
		{"inline code kept", "run <code>ls  -l &lt;dir&gt;</code> now", "run ls -l <dir> now"},
		{"pre kept verbatim", "<pre><code>if x {\n    y()\n}\n</code></pre>", "if x {\n    y()\n}"},
		{"pre between paragraphs", "<p>code:</p><pre>a  b</pre><p>done</p>", "code:\n\na  b\n\ndone"},
		{"mx-reply dropped", `<mx-reply><blockquote><a href="https://matrix.to/#/!r:x/$e">In reply to</a> <a href="https://matrix.to/#/@b:x">@b:x</a><br>original</blockquote></mx-reply>the answer`, "the answer"},
		{"script and style dropped", "<style>p{}</style>x<script>alert(1)</script>", "x"},
		{"heading and hr", "<h1>Title</h1><hr><p>text</p>", "Title\n\n---\n\ntext"},
		{"table", "<table><tr><th>a</th><th>b</th></tr><tr><td>1</td><td>2</td></tr></table>", "a | b\n1 | 2"},
		{"divs are lines", "<div>a</div><div>b</div>", "a\nb"},
		{"image alt", `<img src="mxc://x/y" alt="a cat">`, "a cat"},
		{"unclosed tags", "<b>bold <i>both", "bold both"},
		{"empty", "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := HTMLToPlain(tt.html); got != tt.want {
				t.Errorf("HTMLToPlain(%q) =\n%q\nwant\n%q", tt.html, got, tt.want)
			}
		})
	}
}

func TestHTMLToPlainDeep(t *testing.T) {
	deep := strings.Repeat("<blockquote>", 500) + "x" + strings.Repeat("</blockquote>", 500)
	if got := HTMLToPlain(deep); !strings.Contains(got, "x") {
		t.Errorf("deeply nested text lost: %q", got)
	}
}

func TestSanitizeHTML(t *testing.T) {
	tests := []struct {
		name, html, want string
	}{
		{"allowed kept", `<b>b</b><code class="language-go">x</code><ol start="2"><li>i</li></ol>`, `<b>b</b><code class="language-go">x</code><ol start="2"><li>i</li></ol>`},
		{"script dropped", `a<script>alert(1)</script>`, `a`},
		{"event handler dropped", `<b onclick="x()">b</b>`, `<b>b</b>`},
		{"javascript href dropped", `<a href="javascript:x()">l</a>`, `l`},
		{"sip href kept", `<a href="sip:alice@example.org">alice</a>`, `<a href="sip:alice@example.org">alice</a>`},
		{"image dropped", `<img src="https://example.org/x.png">`, ``},
		{"bad color dropped", `<font color="red; x">r</font>`, `r`},
		{"iframe dropped", `<iframe src="https://example.org"></iframe>t`, `t`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := SanitizeHTML(tt.html); got != tt.want {
				t.Errorf("SanitizeHTML(%q) = %q, want %q", tt.html, got, tt.want)
			}
		})
	}
}
