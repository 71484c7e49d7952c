package mailparse

import (
	stdhtml "html"
	"net/url"
	"regexp"
	"strings"

	"github.com/microcosm-cc/bluemonday"
	"golang.org/x/net/html"
	"golang.org/x/net/html/atom"
)

// matrixPolicy allows the HTML that the Matrix spec lists for m.room.message (the same
// elements as bridges/xmpp/richtext), links with safe schemes, and images only with a
// cid: source, which the caller rewrites to an mxc: URI.
var matrixPolicy = func() *bluemonday.Policy {
	p := bluemonday.NewPolicy()
	p.AllowElements("font", "del", "h1", "h2", "h3", "h4", "h5", "h6", "blockquote", "p", "a",
		"ul", "ol", "sup", "sub", "li", "b", "i", "u", "strong", "em", "s", "strike", "code", "hr",
		"br", "div", "table", "thead", "tbody", "tr", "th", "td", "caption", "pre", "span",
		"details", "summary", "img")
	p.AllowAttrs("href").OnElements("a")
	p.AllowURLSchemes("http", "https", "mailto", "cid")
	p.RequireParseableURLs(true)
	p.AllowRelativeURLs(false)
	p.AllowAttrs("src").Matching(cidSrc).OnElements("img")
	p.AllowAttrs("alt", "title").OnElements("img")
	p.AllowAttrs("width", "height").Matching(regexp.MustCompile(`^[0-9]{1,4}$`)).OnElements("img")
	hexColor := regexp.MustCompile(`^#[0-9a-fA-F]{6}$`)
	p.AllowAttrs("data-mx-color", "data-mx-bg-color").Matching(hexColor).OnElements("font", "span")
	p.AllowAttrs("color").Matching(hexColor).OnElements("font")
	p.AllowAttrs("start").Matching(regexp.MustCompile(`^[0-9]{1,9}$`)).OnElements("ol")
	return p
}()

// cidSrc matches the image sources kept: a cid: URL of a Content-ID that needs no escaping.
var cidSrc = regexp.MustCompile(`^cid:[!$&'()*+,\-.0-9:;=@A-Z\[\]^_a-z{|}~]+$`)

// skipContent are elements dropped together with their content.
var skipContent = map[string]bool{
	"script": true, "style": true, "head": true, "title": true, "template": true,
	"iframe": true, "object": true, "embed": true, "noscript": true, "svg": true, "math": true,
	"textarea": true, "select": true, "button": true, "frame": true, "frameset": true,
	"noembed": true, "noframes": true, "xmp": true, "plaintext": true, "applet": true,
	"audio": true, "video": true,
}

// maxNesting bounds the element depth the renderers recurse into; deeper content is kept
// as text. Real mail nests a few dozen levels; this keeps hostile input linear.
const maxNesting = 100

// parseHTMLBody parses an HTML document or fragment and returns its body element.
func parseHTMLBody(s string) *html.Node {
	doc, err := html.Parse(strings.NewReader(s))
	body := &html.Node{Type: html.ElementNode, Data: "body", DataAtom: atom.Body}
	if err != nil {
		body.AppendChild(&html.Node{Type: html.TextNode, Data: s})
		return body
	}
	if found := findElement(doc, "body"); found != nil {
		body = found
	}
	limitDepth(body)
	return body
}

// findElement is the first element named name in n, in document order.
func findElement(n *html.Node, name string) *html.Node {
	stack := []*html.Node{n}
	for len(stack) > 0 {
		c := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		if c.Type == html.ElementNode && c.Data == name {
			return c
		}
		for k := c.LastChild; k != nil; k = k.PrevSibling {
			stack = append(stack, k)
		}
	}
	return nil
}

// elements are the elements below n named name, in document order.
func elements(n *html.Node, name string) []*html.Node {
	var out []*html.Node
	stack := []*html.Node{n}
	for len(stack) > 0 {
		c := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		if c.Type == html.ElementNode && c.Data == name && c != n {
			out = append(out, c)
		}
		for k := c.LastChild; k != nil; k = k.PrevSibling {
			stack = append(stack, k)
		}
	}
	return out
}

// textContent is the text inside n, without that of skipped elements.
func textContent(n *html.Node) string {
	var b strings.Builder
	stack := []*html.Node{n}
	for len(stack) > 0 {
		c := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		switch {
		case c.Type == html.TextNode:
			b.WriteString(c.Data)
			continue
		case c.Type == html.ElementNode && c != n && skipContent[c.Data]:
			continue
		}
		for k := c.LastChild; k != nil; k = k.PrevSibling {
			stack = append(stack, k)
		}
	}
	return b.String()
}

// limitDepth replaces the content of elements nested deeper than maxNesting by its text.
func limitDepth(root *html.Node) {
	type item struct {
		n     *html.Node
		depth int
	}
	stack := []item{{root, 0}}
	for len(stack) > 0 {
		it := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		for c := it.n.FirstChild; c != nil; c = c.NextSibling {
			if c.Type != html.ElementNode {
				continue
			}
			if it.depth >= maxNesting {
				text := textContent(c)
				for c.FirstChild != nil {
					c.RemoveChild(c.FirstChild)
				}
				c.AppendChild(&html.Node{Type: html.TextNode, Data: text})
				continue
			}
			stack = append(stack, item{c, it.depth + 1})
		}
	}
}

func attr(n *html.Node, key string) string {
	for _, a := range n.Attr {
		if a.Namespace == "" && a.Key == key {
			return a.Val
		}
	}
	return ""
}

// fixImages keeps the images that show one of the inline parts (cids maps a lower-case
// Content-ID to the part's own), with src rewritten to exactly "cid:" + ContentID, and
// replaces every other image by its alt text.
func fixImages(root *html.Node, cids map[string]string) {
	for _, img := range elements(root, "img") {
		src := strings.TrimSpace(attr(img, "src"))
		if len(src) > 4 && strings.EqualFold(src[:4], "cid:") {
			id, err := url.PathUnescape(src[4:])
			if err != nil {
				id = src[4:]
			}
			if cid, ok := cids[strings.ToLower(id)]; ok && cidSrc.MatchString("cid:"+cid) {
				var attrs []html.Attribute
				for _, a := range img.Attr {
					switch a.Key {
					case "alt", "title", "width", "height":
						attrs = append(attrs, a)
					}
				}
				img.Attr = append(attrs, html.Attribute{Key: "src", Val: "cid:" + cid})
				continue
			}
		}
		if alt := attr(img, "alt"); strings.TrimSpace(alt) != "" {
			img.Parent.InsertBefore(&html.Node{Type: html.TextNode, Data: alt}, img)
		}
		img.Parent.RemoveChild(img)
	}
}

// fixLinks drops the href of links that are not http, https or mailto, keeping the text.
func fixLinks(root *html.Node) {
	for _, a := range elements(root, "a") {
		if safeLink(attr(a, "href")) {
			continue
		}
		attrs := a.Attr[:0]
		for _, at := range a.Attr {
			if at.Key != "href" {
				attrs = append(attrs, at)
			}
		}
		a.Attr = attrs
	}
}

// safeLink reports whether href is an absolute http, https or mailto URL.
func safeLink(href string) bool {
	u, err := url.Parse(strings.TrimSpace(href))
	if err != nil {
		return false
	}
	switch strings.ToLower(u.Scheme) {
	case "http", "https":
		return u.Host != ""
	case "mailto":
		return u.Opaque != ""
	}
	return false
}

// sanitizeHTML renders the children of root and passes them through matrixPolicy.
func sanitizeHTML(root *html.Node) string {
	var b strings.Builder
	for c := root.FirstChild; c != nil; c = c.NextSibling {
		if err := html.Render(&b, c); err != nil {
			break
		}
	}
	out := strings.TrimSpace(matrixPolicy.Sanitize(b.String()))
	return strings.ToValidUTF8(out, "\uFFFD")
}

// shownCIDs are the Content-IDs that the images of sanitized HTML show.
func shownCIDs(sanitized string) map[string]bool {
	shown := map[string]bool{}
	for _, img := range elements(parseHTMLBody(sanitized), "img") {
		if src := attr(img, "src"); strings.HasPrefix(src, "cid:") {
			shown[src[4:]] = true
		}
	}
	return shown
}

// plainToHTML is plain text as HTML, line breaks as <br>.
func plainToHTML(text string) string {
	return strings.ReplaceAll(stdhtml.EscapeString(text), "\n", "<br>")
}
