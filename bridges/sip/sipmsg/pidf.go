package sipmsg

import (
	"bytes"
	"encoding/xml"
	"fmt"
	"hash/fnv"
	"io"
	"strings"
)

// Presence is what the bridge reads from a PIDF document.
type Presence struct {
	Entity   string // the presentity, e.g. "pres:alice@example.org"
	Open     bool   // some tuple has <basic>open</basic>
	Note     string // the first note of the document, else of a tuple, else of a person; may be empty
	Activity string // the first RPID activity (RFC 4480), e.g. "away", "busy", "on-the-phone"; may be empty
}

// ParsePIDF reads an application/pidf+xml document (RFC 3863), with the data model
// (RFC 4479) person notes and RPID activities (RFC 4480) that clients add. max <= 0 means
// DefaultMaxBytes. Errors wrap ErrTooLarge or ErrMalformed.
func ParsePIDF(body []byte, max int) (Presence, error) {
	if max <= 0 {
		max = DefaultMaxBytes
	}
	if len(body) > max {
		return Presence{}, fmt.Errorf("%w: %d bytes, the limit is %d", ErrTooLarge, len(body), max)
	}
	if err := checkXML("pidf", body, max); err != nil {
		return Presence{}, err
	}
	d := xml.NewDecoder(io.LimitReader(bytes.NewReader(body), int64(max)))
	d.Strict = true
	var (
		p                    Presence
		stack                []xml.Name
		text                 strings.Builder
		docNote, tupleNote   string
		personNote, activity string
		activityDepth        = -1 // depth of <activities>, -1 outside
	)
	in := func(i int, ns, local string) bool {
		return i >= 0 && i < len(stack) && stack[i].Space == ns && stack[i].Local == local
	}
	for {
		tok, err := d.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			return Presence{}, fmt.Errorf("%w: pidf: %v", ErrMalformed, err)
		}
		switch t := tok.(type) {
		case xml.StartElement:
			depth := len(stack)
			if depth == 0 {
				if t.Name.Space != NSPIDF || t.Name.Local != "presence" {
					return Presence{}, fmt.Errorf("%w: pidf: root element is {%s}%s, want {%s}presence", ErrMalformed, t.Name.Space, t.Name.Local, NSPIDF)
				}
				for _, a := range t.Attr {
					if a.Name.Space == "" && a.Name.Local == "entity" {
						p.Entity = a.Value
					}
				}
			}
			if t.Name.Local == "activities" && t.Name.Space == NSRPID && activityDepth < 0 {
				activityDepth = depth
			} else if activityDepth >= 0 && depth == activityDepth+1 && activity == "" && t.Name.Local != "note" {
				activity = t.Name.Local
			}
			stack = append(stack, t.Name)
			text.Reset()
		case xml.CharData:
			if text.Len() < max {
				text.Write(t)
			}
		case xml.EndElement:
			depth := len(stack) - 1
			s := strings.TrimSpace(text.String())
			switch {
			case depth == 3 && in(1, NSPIDF, "tuple") && in(2, NSPIDF, "status") && in(3, NSPIDF, "basic"):
				switch s {
				case "open":
					p.Open = true
				case "closed":
				default:
					return Presence{}, fmt.Errorf("%w: pidf: <basic> %q, want open or closed", ErrMalformed, s)
				}
			case depth == 1 && in(1, NSPIDF, "note") && docNote == "":
				docNote = s
			case depth == 2 && in(1, NSPIDF, "tuple") && in(2, NSPIDF, "note") && tupleNote == "":
				tupleNote = s
			case depth == 2 && in(1, NSDataModel, "person") && in(2, NSDataModel, "note") && personNote == "":
				personNote = s
			case activityDepth >= 0 && depth == activityDepth+1 && stack[depth].Local == "other" && activity == "other":
				if s != "" {
					activity = s
				}
			}
			if depth == activityDepth {
				activityDepth = -1
			}
			stack = stack[:depth]
			text.Reset()
		}
	}
	if p.Entity == "" {
		return Presence{}, fmt.Errorf("%w: pidf: <presence> has no entity attribute", ErrMalformed)
	}
	p.Activity = activity
	for _, n := range []string{docNote, tupleNote, personNote} {
		if n != "" {
			p.Note = n
			break
		}
	}
	return p, nil
}

// PIDF is a presence document (RFC 3863) for entity with one tuple: basic status open or
// closed and, when note is not empty, a note. entity is a URI; one without a scheme gets
// "pres:" ("alice@example.org" -> "pres:alice@example.org"). The tuple id is derived from
// the entity, so the same presentity keeps the same tuple.
func PIDF(entity string, open bool, note string) (contentType string, body []byte) {
	if !strings.Contains(entity, ":") {
		entity = "pres:" + entity
	}
	h := fnv.New32a()
	h.Write([]byte(entity))
	basic := "closed"
	if open {
		basic = "open"
	}
	var b strings.Builder
	b.WriteString(xmlDecl)
	b.WriteString(`<presence xmlns="` + NSPIDF + `" entity="` + escape(entity) + `">` + "\n")
	fmt.Fprintf(&b, "  <tuple id=\"t%08x\">\n", h.Sum32())
	b.WriteString("    <status>\n      <basic>" + basic + "</basic>\n    </status>\n")
	if note != "" {
		b.WriteString("    <note>" + escape(note) + "</note>\n")
	}
	b.WriteString("  </tuple>\n</presence>\n")
	return TypePIDF, []byte(b.String())
}
