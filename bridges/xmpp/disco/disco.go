// Package disco writes and reads XEP-0030 service discovery payloads and computes
// XEP-0115 entity capabilities. It works on the payload elements only (the query inside
// an iq, the c element inside a presence); the iq envelope is package iq's. It knows
// nothing of Matrix.
package disco

import (
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"

	"mellium.im/xmpp/jid"
)

// Namespaces.
const (
	NSInfo  = "http://jabber.org/protocol/disco#info"
	NSItems = "http://jabber.org/protocol/disco#items"
	NSCaps  = "http://jabber.org/protocol/caps"
	NSData  = "jabber:x:data" // XEP-0004 data forms
)

// ErrMalformed marks a payload that is not a disco#info query; it is wrapped with the
// detail.
var ErrMalformed = errors.New("disco: malformed")

// Identity is one identity of an entity.
type Identity struct {
	Category, Type, Name string
	Lang                 string // xml:lang, may be empty
}

// Info is the answer to a disco#info query.
type Info struct {
	Node       string // may be empty
	Identities []Identity
	Features   []string
	Forms      []Form // XEP-0128 extended information, may be nil
}

// Form is a XEP-0004 data form of type "result" as XEP-0128 uses it: its FORM_TYPE field
// (a hidden field) names it.
type Form struct {
	Fields []Field
}

// Field is one field of a Form.
type Field struct {
	Var    string
	Type   string // e.g. "hidden" for FORM_TYPE; may be empty
	Values []string
}

// FormType returns the value of the form's FORM_TYPE field, "" when it has none.
func (f Form) FormType() string {
	for _, fl := range f.Fields {
		if fl.Var == "FORM_TYPE" && len(fl.Values) > 0 {
			return fl.Values[0]
		}
	}
	return ""
}

// Value returns the first value of the field named v and whether the form has it.
func (f Form) Value(v string) (string, bool) {
	for _, fl := range f.Fields {
		if fl.Var == v && len(fl.Values) > 0 {
			return fl.Values[0], true
		}
	}
	return "", false
}

// Marshal writes the info as a disco#info query element, identities, features and forms
// in their order in i.
func (i Info) Marshal() []byte {
	var b bytes.Buffer
	b.WriteString("<query xmlns='" + NSInfo + "'")
	if i.Node != "" {
		attr(&b, "node", i.Node)
	}
	b.WriteByte('>')
	for _, id := range i.Identities {
		b.WriteString("<identity")
		attr(&b, "category", id.Category)
		attr(&b, "type", id.Type)
		if id.Name != "" {
			attr(&b, "name", id.Name)
		}
		if id.Lang != "" {
			attr(&b, "xml:lang", id.Lang)
		}
		b.WriteString("/>")
	}
	for _, f := range i.Features {
		b.WriteString("<feature")
		attr(&b, "var", f)
		b.WriteString("/>")
	}
	for _, f := range i.Forms {
		b.WriteString("<x xmlns='" + NSData + "' type='result'>")
		for _, fl := range f.Fields {
			b.WriteString("<field")
			attr(&b, "var", fl.Var)
			if fl.Type != "" {
				attr(&b, "type", fl.Type)
			}
			b.WriteByte('>')
			for _, v := range fl.Values {
				b.WriteString("<value>")
				_ = xml.EscapeText(&b, []byte(v))
				b.WriteString("</value>")
			}
			b.WriteString("</field>")
		}
		b.WriteString("</x>")
	}
	b.WriteString("</query>")
	return b.Bytes()
}

// wire is the disco#info query as encoding/xml reads it.
type wire struct {
	XMLName    xml.Name `xml:"http://jabber.org/protocol/disco#info query"`
	Node       string   `xml:"node,attr"`
	Identities []struct {
		Category string `xml:"category,attr"`
		Type     string `xml:"type,attr"`
		Name     string `xml:"name,attr"`
		Lang     string `xml:"http://www.w3.org/XML/1998/namespace lang,attr"`
	} `xml:"http://jabber.org/protocol/disco#info identity"`
	Features []struct {
		Var string `xml:"var,attr"`
	} `xml:"http://jabber.org/protocol/disco#info feature"`
	Forms []struct {
		Type   string `xml:"type,attr"`
		Fields []struct {
			Var    string   `xml:"var,attr"`
			Type   string   `xml:"type,attr"`
			Values []string `xml:"jabber:x:data value"`
		} `xml:"jabber:x:data field"`
	} `xml:"jabber:x:data x"`
}

// ParseInfo reads inner, a disco#info query element (IQ.Inner of a disco#info result).
// Forms of a type other than "result" are left out.
func ParseInfo(inner []byte) (*Info, error) {
	var w wire
	if err := xml.Unmarshal(inner, &w); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	info := &Info{Node: w.Node}
	for _, id := range w.Identities {
		info.Identities = append(info.Identities, Identity(id))
	}
	for _, f := range w.Features {
		info.Features = append(info.Features, f.Var)
	}
	for _, f := range w.Forms {
		if f.Type != "result" {
			continue
		}
		var form Form
		for _, fl := range f.Fields {
			form.Fields = append(form.Fields, Field(fl))
		}
		info.Forms = append(info.Forms, form)
	}
	return info, nil
}

// InfoQuery writes the payload of a disco#info request for node ("" for none).
func InfoQuery(node string) []byte { return query(NSInfo, node) }

// ItemsQuery writes the payload of a disco#items request for node ("" for none).
func ItemsQuery(node string) []byte { return query(NSItems, node) }

func query(ns, node string) []byte {
	var b bytes.Buffer
	b.WriteString("<query xmlns='" + ns + "'")
	if node != "" {
		attr(&b, "node", node)
	}
	b.WriteString("/>")
	return b.Bytes()
}

// Item is one item of a disco#items answer.
type Item struct {
	JID  jid.JID
	Node string // may be empty
	Name string // may be empty
}

// MarshalItems writes a disco#items query element for node ("" for none) with items.
func MarshalItems(node string, items []Item) []byte {
	var b bytes.Buffer
	b.WriteString("<query xmlns='" + NSItems + "'")
	if node != "" {
		attr(&b, "node", node)
	}
	b.WriteByte('>')
	for _, it := range items {
		b.WriteString("<item")
		attr(&b, "jid", it.JID.String())
		if it.Node != "" {
			attr(&b, "node", it.Node)
		}
		if it.Name != "" {
			attr(&b, "name", it.Name)
		}
		b.WriteString("/>")
	}
	b.WriteString("</query>")
	return b.Bytes()
}

// ParseItems reads inner, a disco#items query element. Items whose jid is not a valid JID
// are left out.
func ParseItems(inner []byte) (node string, items []Item, err error) {
	var w struct {
		XMLName xml.Name `xml:"http://jabber.org/protocol/disco#items query"`
		Node    string   `xml:"node,attr"`
		Items   []struct {
			JID  string `xml:"jid,attr"`
			Node string `xml:"node,attr"`
			Name string `xml:"name,attr"`
		} `xml:"http://jabber.org/protocol/disco#items item"`
	}
	if err := xml.Unmarshal(inner, &w); err != nil {
		return "", nil, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	for _, it := range w.Items {
		j, err := jid.Parse(it.JID)
		if err != nil {
			continue
		}
		items = append(items, Item{JID: j, Node: it.Node, Name: it.Name})
	}
	return w.Node, items, nil
}

// attr writes ` name='value'` with value escaped.
func attr(b *bytes.Buffer, name, value string) {
	b.WriteByte(' ')
	b.WriteString(name)
	b.WriteString("='")
	_ = xml.EscapeText(b, []byte(value))
	b.WriteByte('\'')
}
