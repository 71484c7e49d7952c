package richtext

import (
	"bytes"
	"encoding/xml"
	"errors"
	"io"
	"testing"
)

func TestToMatrixStyling(t *testing.T) {
	tests := []struct {
		name, body, want string
	}{
		{"no styling", "just text & <stuff>", ""},
		{"multiple lines without styling", "a\nb", ""},
		{"strong, emphasis, strike, code", "*bold* _it_ ~gone~ `co*de*` & <x>",
			"<strong>bold</strong> <em>it</em> <del>gone</del> <code>co*de*</code> &amp; &lt;x&gt;"},
		{"nested spans", "*_both_* and _*both*_", "<strong><em>both</em></strong> and <em><strong>both</strong></em>"},
		{"span must not start with white space", "a * b * c", ""},
		{"span must not end with white space", "*a *b", ""},
		{"span must open after white space", "2*3*4 snake_case_name", ""},
		{"empty span", "** __", ""},
		{"spans do not cross lines", "*a\nb*", ""},
		{"first closing directive wins", "*a _b* c_", "<strong>a _b</strong> c_"},
		{"code span not styled further", "`*x*`", "<code>*x*</code>"},
		{"backtick run is text", "```x``` y", ""},
		{"quote", "> quoted *line*\n> second\n\nanswer", "<blockquote>quoted <strong>line</strong><br>second</blockquote>answer"},
		{"nested quote", "> a\n>> b\n> > c", "<blockquote>a<blockquote>b<br>c</blockquote></blockquote>"},
		{"preformatted block", "look:\n```go\nx := *y* < 1\n```\ndone", "look:<pre><code>x := *y* &lt; 1</code></pre>done"},
		{"unclosed preformatted block runs to the end", "```\na\n*b*", "<pre><code>a\n*b*</code></pre>"},
		{"preformatted block in a quote", "> ```\n> code\n> ```\nafter", "<blockquote><pre><code>code</code></pre></blockquote>after"},
		{"line breaks kept around spans", "a\n*b*\n\nc", "a<br><strong>b</strong><br><br>c"},
		{"script stays text", "*<script>alert(1)</script>*", "<strong>&lt;script&gt;alert(1)&lt;/script&gt;</strong>"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			plain, formatted := ToMatrix(tt.body, "")
			if plain != tt.body {
				t.Errorf("plain = %q; want the body %q", plain, tt.body)
			}
			if formatted != tt.want {
				t.Errorf("formatted = %q\nwant        %q", formatted, tt.want)
			}
		})
	}
}

func TestToMatrixXHTML(t *testing.T) {
	tests := []struct {
		name, body, xhtml, wantPlain, wantFormatted string
	}{
		{"recommended profile", "hi there", `<p>hi <strong>there</strong><br/><em>x</em> <cite>c</cite></p>`,
			"hi there", "<p>hi <strong>there</strong><br><em>x</em> <em>c</em></p>"},
		{"span styles", "x", `<span style="font-weight: bold; font-style: italic">bi</span> <span style="text-decoration: underline line-through">ud</span> ` +
			`<span style="color: #F00; background-color: #00ff00">c</span> <span style="color: red; position: fixed">n</span>`,
			"x", `<strong><em>bi</em></strong> <u><del>ud</del></u> <font data-mx-color="#ff0000" data-mx-bg-color="#00ff00">c</font> n`},
		{"links", "x", `<a href="https://x.example/?a=1&amp;b=2" onclick="x()">ok</a> <a href="javascript:alert(1)">bad</a> <a href="xmpp:room@muc.example?join">room</a>`,
			"x", `<a href="https://x.example/?a=1&amp;b=2">ok</a> bad <a href="xmpp:room@muc.example?join">room</a>`},
		{"images become links", "x", `<img src="https://x.example/a.png" alt="a cat"/><img src="data:image/png;base64,AAAA" alt="inline"/>`,
			"x", `<a href="https://x.example/a.png">a cat</a>inline`},
		{"dangerous elements dropped", "x", `<script>alert(1)</script><style>*{}</style><p onmouseover="x">safe</p><iframe src="https://x"/>`,
			"x", "<p>safe</p>"},
		{"text only needs no formatting", "hi", `hi`, "hi", ""},
		{"HTML entities read as HTML", "x", `a&nbsp;<b>b</b>`, "x", "a\u00a0<b>b</b>"},
		{"not well-formed read as HTML", "x", `<b>bold <i>both</b>`, "x", "<b>bold <i>both</i></b>"},
		{"plain derived when the body is empty", "", `<p>a <strong>b</strong></p>`, "a *b*", "<p>a <strong>b</strong></p>"},
		{"lists", "x", `<ol start="3"><li>a</li></ol><ul><li>b</li></ul>`, "x", `<ol start="3"><li>a</li></ol><ul><li>b</li></ul>`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			plain, formatted := ToMatrix(tt.body, tt.xhtml)
			if plain != tt.wantPlain {
				t.Errorf("plain = %q; want %q", plain, tt.wantPlain)
			}
			if formatted != tt.wantFormatted {
				t.Errorf("formatted = %q\nwant        %q", formatted, tt.wantFormatted)
			}
		})
	}
}

func TestRoundTripMatrixXMPPMatrix(t *testing.T) {
	const formatted = `<p>Hello <strong>bold</strong> <em>it</em> <a href="https://x.example/">link</a></p><blockquote><p>quote</p></blockquote><ul><li>item</li></ul>`
	_, xhtml := FromMatrix("", FormatHTML, formatted)
	_, back := ToMatrix("x", xhtml)
	if back != formatted {
		t.Fatalf("Matrix → XMPP → Matrix = %q\nwant %q", back, formatted)
	}
}

// checkXML reports whether s is well-formed inner XML.
func checkXML(s string) error {
	d := xml.NewDecoder(bytes.NewReader([]byte("<body>" + s + "</body>")))
	depth, roots := 0, 0
	for {
		tok, err := d.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			return err
		}
		switch tok.(type) {
		case xml.StartElement:
			if depth == 0 {
				roots++
			}
			depth++
		case xml.EndElement:
			depth--
		}
	}
	if roots != 1 || depth != 0 {
		return errors.New("content escapes its body")
	}
	return nil
}
