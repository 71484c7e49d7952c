package xmsg

import (
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"strings"
	"unicode/utf8"
)

// maxDepth bounds element nesting; a chat stanza is a few levels deep, XHTML-IM a few more.
const maxDepth = 128

// xmlURL is the namespace that the reserved prefix "xml" stands for.
const xmlURL = "http://www.w3.org/XML/1998/namespace"

// node is an element or, when name.Local is "", a run of character data. Parsed trees
// carry resolved namespaces; trees built for output carry local names and explicit xmlns
// attributes instead.
type node struct {
	name  xml.Name
	attrs []xml.Attr
	kids  []*node
	chars string // the text of a character data node
	raw   bool   // chars is markup, written as it is (output trees only)
}

// parseTree reads one element with everything in it. Comments, processing instructions
// and directives are dropped; anything but white space outside the root is an error.
func parseTree(raw []byte) (*node, error) {
	d := xml.NewDecoder(bytes.NewReader(raw))
	d.Strict = true
	var root *node
	var stack []*node
	for {
		tok, err := d.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, err
		}
		switch t := tok.(type) {
		case xml.StartElement:
			if len(stack) == 0 && root != nil {
				return nil, errors.New("more than one root element")
			}
			if len(stack) >= maxDepth {
				return nil, fmt.Errorf("elements nested deeper than %d", maxDepth)
			}
			n := &node{name: t.Name, attrs: t.Attr}
			if len(stack) == 0 {
				root = n
			} else {
				parent := stack[len(stack)-1]
				parent.kids = append(parent.kids, n)
			}
			stack = append(stack, n)
		case xml.EndElement:
			if len(stack) == 0 {
				return nil, errors.New("unbalanced end element")
			}
			stack = stack[:len(stack)-1]
		case xml.CharData:
			if len(stack) == 0 {
				if len(bytes.TrimSpace(t)) > 0 {
					return nil, errors.New("text outside the root element")
				}
				continue
			}
			parent := stack[len(stack)-1]
			if k := len(parent.kids); k > 0 && parent.kids[k-1].isText() {
				parent.kids[k-1].chars += string(t)
			} else {
				parent.kids = append(parent.kids, &node{chars: string(t)})
			}
		}
	}
	switch {
	case root == nil:
		return nil, errors.New("no root element")
	case len(stack) != 0:
		return nil, errors.New("unclosed element")
	}
	return root, nil
}

func (n *node) isText() bool { return n.name.Local == "" }

// attr is the value of the attribute local without namespace, "" when absent.
func (n *node) attr(local string) string {
	return n.attrNS("", local)
}

// attrNS is the value of the attribute {space}local, "" when absent.
func (n *node) attrNS(space, local string) string {
	for _, a := range n.attrs {
		if a.Name.Space == space && a.Name.Local == local {
			return a.Value
		}
	}
	return ""
}

// hasAttr reports whether the attribute local without namespace is present.
func (n *node) hasAttr(local string) bool {
	for _, a := range n.attrs {
		if a.Name.Space == "" && a.Name.Local == local {
			return true
		}
	}
	return false
}

// elements are the element children of n.
func (n *node) elements() []*node {
	var out []*node
	for _, k := range n.kids {
		if !k.isText() {
			out = append(out, k)
		}
	}
	return out
}

// child is the first element child {space}local, nil when there is none.
func (n *node) child(space, local string) *node {
	for _, k := range n.kids {
		if k.name.Local == local && k.name.Space == space {
			return k
		}
	}
	return nil
}

// text is the character data directly inside n.
func (n *node) text() string {
	var b strings.Builder
	for _, k := range n.kids {
		if k.isText() {
			b.WriteString(k.chars)
		}
	}
	return b.String()
}

// elem builds an output element; ns, when not "", becomes its xmlns attribute, and attrs
// are name, value pairs of which those with an empty value are left out.
func elem(local, ns string, attrs ...string) *node {
	n := &node{name: xml.Name{Local: local}}
	if ns != "" {
		n.attrs = append(n.attrs, xml.Attr{Name: xml.Name{Local: "xmlns"}, Value: ns})
	}
	for i := 0; i+1 < len(attrs); i += 2 {
		if attrs[i+1] != "" {
			n.attrs = append(n.attrs, xml.Attr{Name: xml.Name{Local: attrs[i]}, Value: attrs[i+1]})
		}
	}
	return n
}

// add appends the non-nil kids and returns n.
func (n *node) add(kids ...*node) *node {
	for _, k := range kids {
		if k != nil {
			n.kids = append(n.kids, k)
		}
	}
	return n
}

// setText appends s as character data (when not empty) and returns n.
func (n *node) setText(s string) *node {
	if s != "" {
		n.kids = append(n.kids, &node{chars: s})
	}
	return n
}

// write serializes an output tree: names and attributes as given, empty elements
// self-closed, text escaped.
func (n *node) write(b *strings.Builder) {
	if n.isText() {
		if n.raw {
			b.WriteString(n.chars)
		} else {
			Escape(b, n.chars, false)
		}
		return
	}
	b.WriteByte('<')
	b.WriteString(n.name.Local)
	for _, a := range n.attrs {
		b.WriteByte(' ')
		b.WriteString(a.Name.Local)
		b.WriteString(`="`)
		Escape(b, a.Value, true)
		b.WriteByte('"')
	}
	if len(n.kids) == 0 {
		b.WriteString("/>")
		return
	}
	b.WriteByte('>')
	for _, k := range n.kids {
		k.write(b)
	}
	b.WriteString("</")
	b.WriteString(n.name.Local)
	b.WriteByte('>')
}

// writeXHTML serializes the content of a parsed XHTML element without namespace prefixes
// or declarations: elements outside the XHTML namespace are dropped with their content,
// and so are attributes in a namespace (xml:lang included) and repeated attributes.
func writeXHTML(b *strings.Builder, n *node) {
	for _, k := range n.kids {
		if k.isText() {
			Escape(b, k.chars, false)
			continue
		}
		if k.name.Space != NSXHTML || strings.Contains(k.name.Local, ":") {
			continue
		}
		b.WriteByte('<')
		b.WriteString(k.name.Local)
		seen := map[string]bool{}
		for _, a := range k.attrs {
			name := a.Name.Local
			if a.Name.Space != "" || name == "xmlns" || strings.Contains(name, ":") || seen[name] {
				continue
			}
			seen[name] = true
			b.WriteByte(' ')
			b.WriteString(name)
			b.WriteString(`="`)
			Escape(b, a.Value, true)
			b.WriteByte('"')
		}
		if len(k.kids) == 0 {
			b.WriteString("/>")
			continue
		}
		b.WriteByte('>')
		writeXHTML(b, k)
		b.WriteString("</")
		b.WriteString(k.name.Local)
		b.WriteByte('>')
	}
}

// parseXHTML reads inner XML as the content of an XHTML <body/> and serializes it again in
// the form writeXHTML produces.
func parseXHTML(inner string) (string, error) {
	const open, end = `<body xmlns="` + NSXHTML + `">`, `</body>`
	root, err := parseTree([]byte(open + inner + end))
	if err != nil {
		return "", err
	}
	if root.name.Space != NSXHTML || root.name.Local != "body" {
		return "", errors.New("content escapes its <body/>")
	}
	var b strings.Builder
	writeXHTML(&b, root)
	return b.String(), nil
}

// Escape writes s as XML character data or, when attr is set, as an attribute value in
// double quotes. Characters that XML 1.0 does not allow, and invalid UTF-8, become U+FFFD.
func Escape(b *strings.Builder, s string, attr bool) {
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		i += size
		switch {
		case r == utf8.RuneError && size == 1:
			b.WriteRune(utf8.RuneError)
		case r == '&':
			b.WriteString("&amp;")
		case r == '<':
			b.WriteString("&lt;")
		case r == '>':
			b.WriteString("&gt;")
		case r == '\r':
			b.WriteString("&#xD;")
		case attr && r == '"':
			b.WriteString("&quot;")
		case attr && r == '\n':
			b.WriteString("&#xA;")
		case attr && r == '\t':
			b.WriteString("&#x9;")
		case !isXMLChar(r):
			b.WriteRune(utf8.RuneError)
		default:
			b.WriteRune(r)
		}
	}
}

// EscapeAttr returns s escaped for an attribute value in double quotes (see Escape).
func EscapeAttr(s string) string {
	var b strings.Builder
	Escape(&b, s, true)
	return b.String()
}

// isXMLChar reports whether XML 1.0 allows r in a document.
func isXMLChar(r rune) bool {
	return r == 0x09 || r == 0x0A || r == 0x0D ||
		r >= 0x20 && r <= 0xD7FF ||
		r >= 0xE000 && r <= 0xFFFD ||
		r >= 0x10000 && r <= 0x10FFFF
}
