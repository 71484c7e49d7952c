package htmltext_test

import (
	"fmt"

	"github.com/switchboard-matrix/switchboard/internal/htmltext"
)

func ExamplePlain() {
	const h = `<p>See <a href="https://example.org/doc">the doc</a>, <b>now</b>:</p><ol><li>one</li><li>two</li></ol>`
	fmt.Println(htmltext.Plain(h, htmltext.Options{}))
	fmt.Println("--")
	fmt.Println(htmltext.Plain(h, htmltext.Options{Styling: true, LinkFormat: "%s <%s>"}))
	// Output:
	// See the doc (https://example.org/doc), now:
	//
	// 1. one
	// 2. two
	// --
	// See the doc <https://example.org/doc>, *now*:
	//
	// 1. one
	// 2. two
}
