package mailparse

import (
	"testing"
)

func TestStripQuotedText(t *testing.T) {
	tests := []struct{ name, in, want string }{
		{"trailing quote with attribution", "Yes.\n\nOn Mon, 1 Apr 2024, Alice <a@x> wrote:\n> Ok?\n> \n", "Yes."},
		{"attribution wrapped over two lines", "Yes.\nOn Mon, 1 Apr 2024 at 10:00, Alice\n<a@x> wrote:\n\n> Ok?", "Yes."},
		{"german attribution", "Ja.\n\nAm 01.04.2024 um 10:00 schrieb Alice <a@x>:\n> Ok?", "Ja."},
		{"interleaved reply kept", "> Question one?\nAnswer one.\n> Question two?\nAnswer two.", "> Question one?\nAnswer one.\n> Question two?\nAnswer two."},
		{"quote without attribution", "Sure.\n> earlier\n>> older", "Sure."},
		{"outlook separator", "Fine.\n\n-----Original Message-----\nFrom: A\nSent: Mon\nSubject: x\n\nold", "Fine."},
		{"outlook header block", "Fine.\n________________________________\nFrom: Alice <a@x>\nSent: Monday\nTo: Bob\nSubject: Plan\n\nold", "Fine."},
		{"german outlook block", "Gut.\n\nVon: Alice\nGesendet: Montag\nAn: Bob\nBetreff: Plan\n\nalt", "Gut."},
		{"a From: line alone is content", "Note the header\nFrom: somebody\nwas odd.", "Note the header\nFrom: somebody\nwas odd."},
		{"only a quote is kept", "> all quoted\n> here", "> all quoted\n> here"},
		{"forward without comment kept", "-----Original Message-----\nFrom: A\nSent: B\nSubject: C\n\nbody", "-----Original Message-----\nFrom: A\nSent: B\nSubject: C\n\nbody"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := stripQuotedText(tt.in); got != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}

func TestStripQuotedHTML(t *testing.T) {
	tests := []struct{ name, in, want string }{
		{"gmail", `<div dir="ltr">Yes</div><br><div class="gmail_quote"><div class="gmail_attr">On Mon wrote:</div><blockquote class="gmail_quote">Ok?</blockquote></div>`,
			`<div>Yes</div><br/>`},
		{"apple and thunderbird cite", `<p>Yes</p><div class="moz-cite-prefix">On Mon wrote:</div><blockquote type="cite">Ok?</blockquote>`, `<p>Yes</p>`},
		{"outlook", `<div>Fine</div><hr><div id="divRplyFwdMsg"><b>From:</b> A</div><div>old</div><p>older</p>`, `<div>Fine</div>`},
		{"only a quote is kept", `<blockquote type="cite">all quoted</blockquote>`, `<blockquote>all quoted</blockquote>`},
		{"plain blockquote kept", `<p>See:</p><blockquote>a citation</blockquote>`, `<p>See:</p><blockquote>a citation</blockquote>`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			root := parseHTMLBody(tt.in)
			stripQuotedHTML(root)
			if got := sanitizeHTML(root); got != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}
