package richtext

import "testing"

func TestFromMatrix(t *testing.T) {
	tests := []struct {
		name                    string
		body, format, formatted string
		wantPlain, wantXHTML    string
	}{
		{
			name: "plain text only", body: "hi <there>", wantPlain: "hi <there>",
		},
		{
			name: "formatted body ignored without the HTML format", body: "hi", formatted: "<b>hi</b>", wantPlain: "hi",
		},
		{
			name: "inline styles", body: "x", format: FormatHTML,
			formatted: `Hello <b>bold</b>, <strong>strong</strong>, <i>it</i>, <em> em </em>, <del>del</del>, <s>s</s>, <code>a &lt; b</code>`,
			wantPlain: "Hello *bold*, *strong*, _it_, _em_ , ~del~, ~s~, `a < b`",
			wantXHTML: `Hello <strong>bold</strong>, <strong>strong</strong>, <em>it</em>, <em> em </em>, ` +
				`<span style="text-decoration: line-through">del</span>, <span style="text-decoration: line-through">s</span>, <code>a &lt; b</code>`,
		},
		{
			name: "links and mentions", body: "x", format: FormatHTML,
			formatted: `<a href="https://matrix.to/#/@alice:example.org">Alice</a>: see <a href="https://x.example/a?b=1&amp;c=2">this</a>, ` +
				`<a href="https://x.example/">https://x.example/</a>, <a href="mailto:bob@x.example">bob@x.example</a> and <a href="javascript:alert(1)">that</a>`,
			wantPlain: "Alice: see this <https://x.example/a?b=1&c=2>, https://x.example/, mailto:bob@x.example and that",
			wantXHTML: `<a href="https://matrix.to/#/@alice:example.org">Alice</a>: see <a href="https://x.example/a?b=1&amp;c=2">this</a>, ` +
				`<a href="https://x.example/">https://x.example/</a>, <a href="mailto:bob@x.example">bob@x.example</a> and that`,
		},
		{
			name: "paragraphs and line breaks", body: "x", format: FormatHTML,
			formatted: "<p>one<br>two</p>\n<p>three</p>",
			wantPlain: "one\ntwo\n\nthree",
			wantXHTML: "<p>one<br/>two</p>\n<p>three</p>",
		},
		{
			name: "lists", body: "x", format: FormatHTML,
			formatted: "<ul>\n<li>a</li>\n<li>b\n<ul><li>c</li></ul></li>\n</ul>\n<ol start=\"9\"><li>x</li><li>y<br>z</li></ol>",
			wantPlain: "• a\n• b\n  • c\n\n9. x\n10. y\n    z",
			wantXHTML: "<ul>\n<li>a</li>\n<li>b\n<ul><li>c</li></ul></li>\n</ul>\n<ol><li>x</li><li>y<br/>z</li></ol>",
		},
		{
			name: "quote and code block", body: "x", format: FormatHTML,
			formatted: "<blockquote>\n<p>q1</p>\n<p>q2</p>\n</blockquote>\n<pre><code class=\"language-go\">if a &lt; b {\n}\n</code></pre>\n",
			wantPlain: "> q1\n>\n> q2\n\n```\nif a < b {\n}\n```",
			wantXHTML: "<blockquote>\n<p>q1</p>\n<p>q2</p>\n</blockquote>\n<pre><code>if a &lt; b {\n}\n</code></pre>\n",
		},
		{
			name: "reply fallback removed", body: "> <@a:b> q\n\nanswer", format: FormatHTML,
			formatted: `<mx-reply><blockquote><a href="https://matrix.to/#/!r:b/$e">In reply to</a> q</blockquote></mx-reply>answer <b>now</b>`,
			wantPlain: "answer *now*",
			wantXHTML: "answer <strong>now</strong>",
		},
		{
			name: "dangerous and unknown markup", body: "x", format: FormatHTML,
			formatted: `<script>alert(1)</script><style>p{}</style><h2 onclick="x()">Title</h2><font color="#00ff00" onmouseover="x">green</font>` +
				`<span data-mx-color="red">named</span><img src="mxc://a/b" alt=":cat:"><iframe src="https://x"></iframe>`,
			wantPlain: "*Title*\n\ngreennamed:cat:",
			wantXHTML: `<p><strong>Title</strong></p><span style="color: #00ff00">green</span>named:cat:`,
		},
		{
			name: "table", body: "x", format: FormatHTML,
			formatted: "<table><tr><th>a</th><th>b</th></tr><tr><td>1</td><td>2</td></tr></table>",
			wantPlain: "a | b\n1 | 2",
			wantXHTML: "a b<br/>1 2",
		},
		{
			name: "no text falls back to the body", body: "image", format: FormatHTML,
			formatted: `<img src="mxc://a/b">`,
			wantPlain: "image",
		},
		{
			name: "characters XML does not allow", body: "x", format: FormatHTML,
			formatted: "<b>a\x01b</b>",
			wantPlain: "*a\x01b*",
			wantXHTML: "<strong>a\uFFFDb</strong>",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			plain, xhtml := FromMatrix(tt.body, tt.format, tt.formatted)
			if plain != tt.wantPlain {
				t.Errorf("plain = %q\nwant    %q", plain, tt.wantPlain)
			}
			if xhtml != tt.wantXHTML {
				t.Errorf("xhtml = %q\nwant    %q", xhtml, tt.wantXHTML)
			}
			if err := checkXML(xhtml); err != nil {
				t.Errorf("xhtml %q is not well-formed: %v", xhtml, err)
			}
		})
	}
}

func TestStripMatrixReply(t *testing.T) {
	tests := []struct {
		name, body, formatted, wantBody, wantFormatted string
	}{
		{"reply", "> <@a:b> hi\n> there\n\nanswer", "<mx-reply><blockquote>hi</blockquote></mx-reply>answer", "answer", "answer"},
		{"upper case element", "> q\nanswer", "<MX-REPLY>x</MX-REPLY><b>answer</b>", "answer", "<b>answer</b>"},
		{"no fallback", "answer\n> not a fallback", "answer", "answer\n> not a fallback", "answer"},
		{"unclosed element left alone", "answer", "<mx-reply>x", "answer", "<mx-reply>x"},
		{"only a quote", "> q", "", "", ""},
		{"non-ASCII before the element", "x", "İ<mx-reply>q</mx-reply>a", "x", "İa"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			body, formatted := StripMatrixReply(tt.body, tt.formatted)
			if body != tt.wantBody || formatted != tt.wantFormatted {
				t.Fatalf("StripMatrixReply = %q, %q; want %q, %q", body, formatted, tt.wantBody, tt.wantFormatted)
			}
		})
	}
}
