package richtext

import (
	"strings"

	"golang.org/x/net/html"

	"github.com/switchboard-matrix/switchboard/internal/htmltext"
)

// plainOptions render Matrix HTML or XHTML-IM as an XMPP body with XEP-0393 styling:
// "• " bullets, links as "text <url>", Matrix mentions as their text.
var plainOptions = htmltext.Options{
	Styling:    true,
	Bullet:     "• ",
	LinkFormat: "%s <%s>",
	SafeURL:    safeURL,
	TextOnly:   isMention,
	Skip:       skipContent,
	MaxDepth:   -1, // fragment and parseXHTMLTree bound the tree at maxNesting already
}

// plainText is the styled plain text of root's children.
func plainText(root *html.Node) string {
	return htmltext.Render(root, plainOptions)
}

// isMention reports whether href is a Matrix mention: a matrix.to link to a user.
func isMention(href string) bool {
	return strings.HasPrefix(href, "https://matrix.to/#/@")
}
