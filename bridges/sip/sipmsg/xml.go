package sipmsg

import (
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	validator "github.com/mattermost/xml-roundtrip-validator"
)

// XML namespaces of the documents read and written here.
const (
	NSComposing = "urn:ietf:params:xml:ns:im-iscomposing"
	NSIMDN      = "urn:ietf:params:xml:ns:imdn"
	NSPIDF      = "urn:ietf:params:xml:ns:pidf"
	NSDataModel = "urn:ietf:params:xml:ns:pidf:data-model"
	NSRPID      = "urn:ietf:params:xml:ns:pidf:rpid"
)

// maxXMLDepth bounds element nesting; the documents read here are a few levels deep.
const maxXMLDepth = 32

// checkXML refuses what the XML readers here must never see: text that is not well formed,
// DTDs and entity declarations, processing instructions other than a leading XML
// declaration, more or less than one root element, nesting deeper than maxXMLDepth, and
// XML that does not survive an encoding/xml round trip. what names the document in errors.
func checkXML(what string, body []byte, max int) error {
	d := xml.NewDecoder(io.LimitReader(bytes.NewReader(body), int64(max)))
	d.Strict = true
	depth, roots, first := 0, 0, true
	for ; ; first = false {
		tok, err := d.RawToken()
		if err == io.EOF {
			break
		}
		if err != nil {
			return fmt.Errorf("%w: %s: %v", ErrMalformed, what, err)
		}
		switch t := tok.(type) {
		case xml.Directive:
			return fmt.Errorf("%w: %s: DTD or other <! directive is not allowed", ErrMalformed, what)
		case xml.ProcInst:
			if t.Target != "xml" || !first {
				return fmt.Errorf("%w: %s: processing instruction <?%s?> is not allowed", ErrMalformed, what, t.Target)
			}
		case xml.StartElement:
			if depth == 0 {
				roots++
			}
			depth++
			if depth > maxXMLDepth {
				return fmt.Errorf("%w: %s: elements nested deeper than %d", ErrMalformed, what, maxXMLDepth)
			}
		case xml.EndElement:
			depth--
		case xml.CharData:
			if depth == 0 && len(bytes.TrimSpace(t)) > 0 {
				return fmt.Errorf("%w: %s: text outside the root element", ErrMalformed, what)
			}
		}
	}
	switch {
	case depth != 0:
		return fmt.Errorf("%w: %s: unclosed element", ErrMalformed, what)
	case roots != 1:
		return fmt.Errorf("%w: %s: %d root elements, want 1", ErrMalformed, what, roots)
	}
	if err := validator.Validate(bytes.NewReader(body)); err != nil {
		// Only the position: the validator's text quotes tokens, which may be message text.
		var ve validator.XMLValidationError
		if errors.As(err, &ve) {
			return fmt.Errorf("%w: %s: XML does not round-trip (line %d, column %d)", ErrMalformed, what, ve.Line, ve.Column)
		}
		return fmt.Errorf("%w: %s: XML does not round-trip", ErrMalformed, what)
	}
	return nil
}

// decodeXML checks body with checkXML and unmarshals it into v, whose root element must be
// {ns}local.
func decodeXML(what string, body []byte, max int, ns, local string, v any, root *xml.Name) error {
	if err := checkXML(what, body, max); err != nil {
		return err
	}
	d := xml.NewDecoder(io.LimitReader(bytes.NewReader(body), int64(max)))
	d.Strict = true
	if err := d.Decode(v); err != nil {
		return fmt.Errorf("%w: %s: %v", ErrMalformed, what, err)
	}
	if root.Space != ns || root.Local != local {
		return fmt.Errorf("%w: %s: root element is {%s}%s, want {%s}%s", ErrMalformed, what, root.Space, root.Local, ns, local)
	}
	return nil
}

// parseTime reads an XML Schema dateTime (RFC 3339); "" is the zero time.
func parseTime(what, s string) (time.Time, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return time.Time{}, nil
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("%w: %s %q is not an RFC 3339 date-time", ErrMalformed, what, s)
	}
	return t, nil
}

// escape is s escaped for XML text or a double-quoted attribute.
func escape(s string) string {
	var b strings.Builder
	_ = xml.EscapeText(&b, []byte(s))
	return b.String()
}

const xmlDecl = `<?xml version="1.0" encoding="UTF-8"?>` + "\n"

// parseComposing reads an application/im-iscomposing+xml document (RFC 3994).
func parseComposing(body []byte, max int) (*Composing, error) {
	var doc struct {
		XMLName     xml.Name
		State       string `xml:"state"`
		LastActive  string `xml:"lastactive"`
		ContentType string `xml:"contenttype"`
		Refresh     string `xml:"refresh"`
	}
	if err := decodeXML("isComposing", body, max, NSComposing, "isComposing", &doc, &doc.XMLName); err != nil {
		return nil, err
	}
	c := &Composing{State: strings.TrimSpace(doc.State), ContentType: strings.TrimSpace(doc.ContentType)}
	switch c.State {
	case "active", "idle":
	case "":
		return nil, fmt.Errorf("%w: isComposing: no <state>", ErrMalformed)
	default:
		return nil, fmt.Errorf("%w: isComposing: <state> %q, want active or idle", ErrMalformed, c.State)
	}
	if r := strings.TrimSpace(doc.Refresh); r != "" {
		n, err := strconv.Atoi(r)
		if err != nil || n <= 0 {
			return nil, fmt.Errorf("%w: isComposing: <refresh> %q is not a positive integer", ErrMalformed, r)
		}
		c.Refresh = n
	}
	var err error
	if c.LastActive, err = parseTime("isComposing: <lastactive>", doc.LastActive); err != nil {
		return nil, err
	}
	return c, nil
}

// ComposingBody is an isComposing indication (RFC 3994): state active (with contenttype
// text/plain and, when refresh > 0, a refresh interval in seconds) or idle.
func ComposingBody(active bool, refresh int) (contentType string, body []byte) {
	var b strings.Builder
	b.WriteString(xmlDecl)
	b.WriteString(`<isComposing xmlns="` + NSComposing + `">` + "\n")
	if active {
		b.WriteString("  <state>active</state>\n  <contenttype>text/plain</contenttype>\n")
		if refresh > 0 {
			b.WriteString("  <refresh>" + strconv.Itoa(refresh) + "</refresh>\n")
		}
	} else {
		b.WriteString("  <state>idle</state>\n")
	}
	b.WriteString("</isComposing>\n")
	return TypeComposing, []byte(b.String())
}

// imdnStatuses are the status values each notification type allows (RFC 5438 section 9).
var imdnStatuses = map[string][]string{
	"delivery":   {"delivered", "failed", "forbidden", "error"},
	"display":    {"displayed", "forbidden", "error"},
	"processing": {"processed", "stored", "forbidden", "error"},
}

// imdnStatus is the <status> element of a notification.
type imdnStatus struct {
	Status *struct {
		Values []struct {
			XMLName xml.Name
		} `xml:",any"`
	} `xml:"status"`
}

// parseIMDN reads a message/imdn+xml document (RFC 5438).
func parseIMDN(body []byte, max int) (*IMDN, error) {
	var doc struct {
		XMLName    xml.Name
		MessageID  string      `xml:"message-id"`
		DateTime   string      `xml:"datetime"`
		Recipient  string      `xml:"recipient-uri"`
		Delivery   *imdnStatus `xml:"delivery-notification"`
		Display    *imdnStatus `xml:"display-notification"`
		Processing *imdnStatus `xml:"processing-notification"`
	}
	if err := decodeXML("imdn", body, max, NSIMDN, "imdn", &doc, &doc.XMLName); err != nil {
		return nil, err
	}
	n := &IMDN{MessageID: strings.TrimSpace(doc.MessageID), RecipientURI: strings.TrimSpace(doc.Recipient)}
	if n.MessageID == "" {
		return nil, fmt.Errorf("%w: imdn: no <message-id>", ErrMalformed)
	}
	var err error
	if n.Datetime, err = parseTime("imdn: <datetime>", doc.DateTime); err != nil {
		return nil, err
	}
	var st *imdnStatus
	for _, c := range []struct {
		typ string
		st  *imdnStatus
	}{{"delivery", doc.Delivery}, {"display", doc.Display}, {"processing", doc.Processing}} {
		if c.st == nil {
			continue
		}
		if st != nil {
			return nil, fmt.Errorf("%w: imdn: both <%s-notification> and <%s-notification>", ErrMalformed, n.Type, c.typ)
		}
		n.Type, st = c.typ, c.st
	}
	if st == nil {
		return nil, fmt.Errorf("%w: imdn: no delivery-, display- or processing-notification", ErrMalformed)
	}
	if st.Status == nil || len(st.Status.Values) != 1 {
		return nil, fmt.Errorf("%w: imdn: <%s-notification> needs a <status> with exactly one element", ErrMalformed, n.Type)
	}
	n.Status = st.Status.Values[0].XMLName.Local
	for _, ok := range imdnStatuses[n.Type] {
		if n.Status == ok {
			return n, nil
		}
	}
	return nil, fmt.Errorf("%w: imdn: <%s/> is not a %s status", ErrMalformed, n.Status, n.Type)
}

// IMDNBody is a disposition notification (RFC 5438) for the message msgID (its
// imdn.Message-ID), sent by recipient (a URI; "" leaves the recipient-uri out). at is
// the DateTime of that message, which the notification repeats; the zero time leaves the
// datetime element out. status "displayed" makes a display notification; "processed"
// and "stored" a processing notification; "delivered", "failed", "forbidden", "error" a
// delivery notification; anything else a delivery notification with status error.
// Per RFC 5438 the body travels inside message/cpim: pass it to CPIM with innerType
// TypeIMDN, which adds the Content-Disposition: notification header.
func IMDNBody(msgID, status, recipient string, at time.Time) (contentType string, body []byte) {
	typ := "delivery"
	switch status {
	case "displayed":
		typ = "display"
	case "processed", "stored":
		typ = "processing"
	case "delivered", "failed", "forbidden", "error":
	default:
		status = "error"
	}
	var b strings.Builder
	b.WriteString(xmlDecl)
	b.WriteString(`<imdn xmlns="` + NSIMDN + `">` + "\n")
	b.WriteString("  <message-id>" + escape(msgID) + "</message-id>\n")
	if !at.IsZero() {
		b.WriteString("  <datetime>" + at.Format(time.RFC3339) + "</datetime>\n")
	}
	if recipient != "" {
		b.WriteString("  <recipient-uri>" + escape(recipient) + "</recipient-uri>\n")
		b.WriteString("  <original-recipient-uri>" + escape(recipient) + "</original-recipient-uri>\n")
	}
	b.WriteString("  <" + typ + "-notification>\n    <status>\n      <" + status + "/>\n    </status>\n  </" + typ + "-notification>\n")
	b.WriteString("</imdn>\n")
	return TypeIMDN, []byte(b.String())
}
