// Package sipmsg reads and writes the bodies of the SIP bridge's messages: text/plain and
// text/html (sanitized), message/cpim envelopes (RFC 3862) with the IMDN headers of RFC 5438,
// isComposing indications (RFC 3994), IMDN notifications (RFC 5438) and PIDF presence
// documents (RFC 3863). It also degrades Matrix HTML to readable plain text.
//
// It is pure code: no SIP transport and nothing of Matrix. Every parser is bounded by a
// size limit; the XML parsers refuse DTDs, entity declarations and processing instructions
// and XML that does not survive an encoding/xml round trip.
package sipmsg

import (
	"errors"
	"fmt"
	"mime"
	"strings"
	"time"
	"unicode/utf8"
)

// Errors of Parse and ParsePIDF; each is wrapped with what was wrong. A SIP handler answers
// ErrUnsupportedType with 415 (and Accept), ErrTooLarge with 413 and ErrMalformed with 400.
var (
	ErrUnsupportedType = errors.New("sipmsg: unsupported content type")
	ErrTooLarge        = errors.New("sipmsg: body too large")
	ErrMalformed       = errors.New("sipmsg: malformed body")
)

// DefaultMaxBytes is the size limit used when Parse or ParsePIDF get max <= 0.
const DefaultMaxBytes = 64 << 10

// Media types known to Parse.
const (
	TypePlain     = "text/plain"
	TypeHTML      = "text/html"
	TypeCPIM      = "message/cpim"
	TypeComposing = "application/im-iscomposing+xml"
	TypeIMDN      = "message/imdn+xml"
	TypePIDF      = "application/pidf+xml"
)

// Kind is what a parsed body carries.
type Kind int

// Kinds of Content.
const (
	KindText         Kind = iota + 1 // a chat message: Plain (and maybe HTML)
	KindComposing                    // an isComposing indication: Composing
	KindNotification                 // an IMDN: IMDN
)

// String is the kind's name.
func (k Kind) String() string {
	switch k {
	case KindText:
		return "text"
	case KindComposing:
		return "composing"
	case KindNotification:
		return "notification"
	}
	return fmt.Sprintf("Kind(%d)", int(k))
}

// Content is one parsed body.
type Content struct {
	Kind Kind

	// For KindText: Plain is always set (derived from HTML when only HTML came; it may be
	// empty for an empty body), with line breaks as "\n". HTML is set only when HTML came,
	// and then it is sanitized (SanitizeHTML).
	Plain string
	HTML  string

	// From a message/cpim envelope; zero without one.
	MessageID    string    // imdn.Message-ID
	WantDelivery bool      // imdn.Disposition-Notification has positive-delivery
	WantDisplay  bool      // imdn.Disposition-Notification has display
	CPIMFrom     string    // URI of the CPIM From header, without display name or <>
	CPIMTo       string    // URI of the first CPIM To header
	DateTime     time.Time // CPIM DateTime

	Composing *Composing // set for KindComposing
	IMDN      *IMDN      // set for KindNotification
}

// Composing is an isComposing indication (RFC 3994).
type Composing struct {
	State       string    // "active" or "idle"
	Refresh     int       // seconds until the active state lapses without a refresh; 0 when absent
	ContentType string    // what is being composed, e.g. "text"; may be empty
	LastActive  time.Time // zero when absent
}

// Active reports whether the state is "active".
func (c *Composing) Active() bool { return c.State == "active" }

// IMDN is a disposition notification (RFC 5438).
type IMDN struct {
	MessageID    string    // imdn.Message-ID of the message this notification is about
	Type         string    // "delivery", "display" or "processing"
	Status       string    // e.g. "delivered", "displayed", "failed", "forbidden", "error"
	Datetime     time.Time // when the original message was sent
	RecipientURI string    // may be empty
}

// Accept is the value for an Accept header listing the types Parse reads (for a 415).
func Accept() string {
	return strings.Join([]string{TypePlain, TypeHTML, TypeCPIM, TypeComposing, TypeIMDN}, ", ")
}

// Parse reads a body of contentType (the Content-Type header value, parameters included).
// max <= 0 means DefaultMaxBytes. A message/cpim body is unwrapped once: its encapsulated
// content is parsed like a bare body, and a nested message/cpim is refused.
//
// text/plain and text/html must be UTF-8 (charset utf-8, us-ascii or none); other charsets
// are ErrUnsupportedType, bytes that are not UTF-8 ErrMalformed.
func Parse(contentType string, body []byte, max int) (*Content, error) {
	if max <= 0 {
		max = DefaultMaxBytes
	}
	if len(body) > max {
		return nil, fmt.Errorf("%w: %d bytes, the limit is %d", ErrTooLarge, len(body), max)
	}
	return parse(contentType, body, max, false)
}

// parse is Parse after the size check; inCPIM refuses a nested envelope.
func parse(contentType string, body []byte, max int, inCPIM bool) (*Content, error) {
	mt, params, err := parseMediaType(contentType)
	if err != nil {
		return nil, err
	}
	switch mt {
	case TypePlain, TypeHTML:
		text, err := decodeText(mt, params, body)
		if err != nil {
			return nil, err
		}
		if mt == TypePlain {
			return &Content{Kind: KindText, Plain: text}, nil
		}
		clean := SanitizeHTML(text)
		return &Content{Kind: KindText, Plain: HTMLToPlain(clean), HTML: clean}, nil
	case TypeCPIM:
		if inCPIM {
			return nil, fmt.Errorf("%w: message/cpim nested in message/cpim", ErrUnsupportedType)
		}
		return parseCPIM(body, max)
	case TypeComposing:
		c, err := parseComposing(body, max)
		if err != nil {
			return nil, err
		}
		return &Content{Kind: KindComposing, Composing: c}, nil
	case TypeIMDN:
		n, err := parseIMDN(body, max)
		if err != nil {
			return nil, err
		}
		return &Content{Kind: KindNotification, IMDN: n}, nil
	}
	return nil, fmt.Errorf("%w: %s", ErrUnsupportedType, mt)
}

// parseMediaType reads a Content-Type value; the type comes back lower case.
func parseMediaType(contentType string) (string, map[string]string, error) {
	if strings.TrimSpace(contentType) == "" {
		return "", nil, fmt.Errorf("%w: no content type", ErrUnsupportedType)
	}
	mt, params, err := mime.ParseMediaType(contentType)
	if err != nil {
		return "", nil, fmt.Errorf("%w: content type: %v", ErrMalformed, err)
	}
	return mt, params, nil
}

// decodeText checks the charset and the bytes of a text body and normalizes CRLF to LF.
func decodeText(mt string, params map[string]string, body []byte) (string, error) {
	switch cs := strings.ToLower(params["charset"]); cs {
	case "", "utf-8", "utf8":
		if !utf8.Valid(body) {
			return "", fmt.Errorf("%w: %s body is not valid UTF-8", ErrMalformed, mt)
		}
	case "us-ascii", "ascii":
		for i, b := range body {
			if b >= 0x80 {
				return "", fmt.Errorf("%w: %s body declared us-ascii has a non-ASCII byte at offset %d", ErrMalformed, mt, i)
			}
		}
	default:
		return "", fmt.Errorf("%w: %s with charset %q (only utf-8 and us-ascii)", ErrUnsupportedType, mt, cs)
	}
	s := strings.ReplaceAll(string(body), "\r\n", "\n")
	return s, nil
}

// Text is the body for a chat message. It is text/plain;charset=utf-8 with plain unless
// html is not empty: then it is text/html;charset=utf-8 with html sanitized (SanitizeHTML).
// Many SIP clients show text/html as raw markup, so a caller passes html only for a peer
// known to render it (one that listed text/html in its Accept, or configured so); for the
// others it passes "" and, for a Matrix formatted_body, HTMLToPlain of it as plain.
// When html sanitizes to nothing but white space, plain is sent.
func Text(plain, html string) (contentType string, body []byte) {
	if html != "" {
		if clean := SanitizeHTML(html); strings.TrimSpace(clean) != "" {
			return "text/html;charset=utf-8", []byte(clean)
		}
	}
	return "text/plain;charset=utf-8", []byte(plain)
}
