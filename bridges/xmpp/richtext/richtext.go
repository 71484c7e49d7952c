// Package richtext converts message formatting between Matrix and XMPP for the XMPP bridge:
// Matrix HTML (format org.matrix.custom.html) to an XMPP body with XEP-0393 Message Styling
// and an XEP-0071 XHTML-IM body, and XHTML-IM or styled text back to Matrix HTML. Every
// HTML it writes is built from an allow list and, towards Matrix, passed through a
// bluemonday policy as well; links keep only the http, https, mailto and xmpp schemes.
// The package knows the Matrix formats but nothing of the appservice.
package richtext

import (
	"net/url"
	"strings"

	"golang.org/x/net/html"
	"golang.org/x/net/html/atom"
)

// FormatHTML is the Matrix "format" of HTML formatted bodies.
const FormatHTML = "org.matrix.custom.html"

// skipContent are elements dropped together with their content in both directions.
var skipContent = map[string]bool{
	"mx-reply": true, "script": true, "style": true, "head": true, "title": true, "template": true,
	"iframe": true, "object": true, "embed": true, "noscript": true, "svg": true, "math": true,
	"textarea": true, "select": true, "button": true, "frame": true, "frameset": true, "noembed": true,
	"noframes": true, "xmp": true, "plaintext": true, "applet": true, "audio": true, "video": true,
}

// safeURL reports whether href is an absolute http, https, mailto or xmpp URL.
func safeURL(href string) bool {
	u, err := url.Parse(strings.TrimSpace(href))
	if err != nil {
		return false
	}
	switch strings.ToLower(u.Scheme) {
	case "http", "https":
		return u.Host != ""
	case "mailto", "xmpp":
		return u.Opaque != "" || u.Path != ""
	}
	return false
}

// attr is the value of n's attribute key, "" when absent.
func attr(n *html.Node, key string) string {
	for _, a := range n.Attr {
		if a.Namespace == "" && a.Key == key {
			return a.Val
		}
	}
	return ""
}

// textContent is all the text inside n, as it is.
func textContent(n *html.Node) string {
	var b strings.Builder
	var walk func(*html.Node)
	walk = func(n *html.Node) {
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			switch c.Type {
			case html.TextNode:
				b.WriteString(c.Data)
			case html.ElementNode:
				if !skipContent[c.Data] {
					walk(c)
				}
			}
		}
	}
	walk(n)
	return b.String()
}

// parseHTML parses a fragment of HTML as the content of a <div>.
func parseHTML(s string) []*html.Node {
	ctx := &html.Node{Type: html.ElementNode, Data: "div", DataAtom: atom.Div}
	nodes, err := html.ParseFragment(strings.NewReader(s), ctx)
	if err != nil {
		return nil
	}
	return nodes
}

// maxNesting bounds the element depth the renderers recurse into; deeper content is kept
// as text. Real messages nest a few levels; this keeps hostile input linear.
const maxNesting = 64

// limitDepth replaces the content of elements nested deeper than maxNesting below n by
// their text.
func limitDepth(n *html.Node, depth int) {
	for c := n.FirstChild; c != nil; c = c.NextSibling {
		if c.Type != html.ElementNode {
			continue
		}
		if depth >= maxNesting {
			text := textContent(c)
			for c.FirstChild != nil {
				c.RemoveChild(c.FirstChild)
			}
			c.AppendChild(&html.Node{Type: html.TextNode, Data: text})
			continue
		}
		limitDepth(c, depth+1)
	}
}

// fragment wraps parsed nodes in one parent so that they can be walked as its children.
func fragment(nodes []*html.Node) *html.Node {
	root := &html.Node{Type: html.ElementNode, Data: "div", DataAtom: atom.Div}
	for _, n := range nodes {
		if n.Parent != nil {
			n.Parent.RemoveChild(n)
		}
		root.AppendChild(n)
	}
	limitDepth(root, 0)
	return root
}
