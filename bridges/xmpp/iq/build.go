package iq

import (
	"bytes"
	"encoding/xml"

	"mellium.im/xmpp/jid"
)

// Error types of RFC 6120 section 8.3.2.
var errorTypes = map[string]bool{"auth": true, "cancel": true, "continue": true, "modify": true, "wait": true}

// Defined conditions of RFC 6120 section 8.3.3.
var conditions = map[string]bool{
	"bad-request": true, "conflict": true, "feature-not-implemented": true, "forbidden": true,
	"gone": true, "internal-server-error": true, "item-not-found": true, "jid-malformed": true,
	"not-acceptable": true, "not-allowed": true, "not-authorized": true, "policy-violation": true,
	"recipient-unavailable": true, "redirect": true, "registration-required": true,
	"remote-server-not-found": true, "remote-server-timeout": true, "resource-constraint": true,
	"service-unavailable": true, "subscription-required": true, "undefined-condition": true,
	"unexpected-request": true,
}

// Build writes an iq stanza of type typ with the given id and addresses (left out when
// zero) and payload, raw XML written unchanged (nil for none). The root has no xmlns.
func Build(typ, id string, from, to jid.JID, payload []byte) []byte {
	var b bytes.Buffer
	b.WriteString("<iq")
	attr(&b, "type", typ)
	attr(&b, "id", id)
	if !from.Equal(jid.JID{}) {
		attr(&b, "from", from.String())
	}
	if !to.Equal(jid.JID{}) {
		attr(&b, "to", to.String())
	}
	if len(payload) == 0 {
		b.WriteString("/>")
		return b.Bytes()
	}
	b.WriteByte('>')
	b.Write(payload)
	b.WriteString("</iq>")
	return b.Bytes()
}

// Result writes the result answering req: the same id, from and to swapped, with payload
// (nil for none).
func Result(req *IQ, payload []byte) []byte {
	return Build(TypeResult, req.ID, req.To, req.From, payload)
}

// ErrorReply writes the error answering req: the same id, from and to swapped, and a
// stanza error of type typ ("cancel" when it is not one of RFC 6120's) with condition
// ("undefined-condition" when it is not one of RFC 6120's) and, unless empty, text. It
// includes nothing of the request's payload.
func ErrorReply(req *IQ, typ, condition, text string) []byte {
	if !errorTypes[typ] {
		typ = "cancel"
	}
	if !conditions[condition] {
		condition = "undefined-condition"
	}
	var b bytes.Buffer
	b.WriteString("<error")
	attr(&b, "type", typ)
	b.WriteString("><")
	b.WriteString(condition)
	b.WriteString(" xmlns='" + NSStanzas + "'/>")
	if text != "" {
		b.WriteString("<text xmlns='" + NSStanzas + "'>")
		_ = xml.EscapeText(&b, []byte(text))
		b.WriteString("</text>")
	}
	b.WriteString("</error>")
	return Build(TypeError, req.ID, req.To, req.From, b.Bytes())
}

// attr writes ` name="value"` with value escaped.
func attr(b *bytes.Buffer, name, value string) {
	b.WriteByte(' ')
	b.WriteString(name)
	b.WriteString(`="`)
	_ = xml.EscapeText(b, []byte(value))
	b.WriteByte('"')
}
