package richtext_test

import (
	"fmt"

	"github.com/switchboard-matrix/switchboard/bridges/xmpp/richtext"
)

func Example() {
	// Matrix to XMPP: a body with XEP-0393 styling and an XHTML-IM body.
	plain, xhtml := richtext.FromMatrix("Hello **world**", richtext.FormatHTML,
		`<p>Hello <strong>world</strong>, see <a href="https://example.org">this</a></p>`)
	fmt.Println(plain)
	fmt.Println(xhtml)

	// XMPP to Matrix: styled text becomes HTML.
	_, formatted := richtext.ToMatrix("> quoted\n*Bold* and `code`", "")
	fmt.Println(formatted)
	// Output:
	// Hello *world*, see this <https://example.org>
	// <p>Hello <strong>world</strong>, see <a href="https://example.org">this</a></p>
	// <blockquote>quoted</blockquote><strong>Bold</strong> and <code>code</code>
}
