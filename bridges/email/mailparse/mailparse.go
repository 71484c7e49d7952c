// Package mailparse reads one raw RFC 5322 message and returns what a Matrix room shows
// of it: the sender and recipients, the threading ids, the subject, a plain text body, an
// HTML body sanitized for Matrix's formatted_body, the attachments and the inline images,
// whether the mail was sent automatically, and the details of a delivery-status report.
//
// Parse is built for mail as it arrives, not as the RFCs describe it: any charset that
// github.com/emersion/go-message/charset knows, Latin-1 and Windows-1252 text without
// a declared charset, unknown charset names, unquoted boundaries, broken base64 and
// quoted-printable, missing Content-Type and RFC 2231 parameters are all read on a best
// effort basis. Every string it returns is valid UTF-8. The package knows nothing of
// Matrix rooms or of IMAP and SMTP connections.
package mailparse

import (
	"errors"
	"fmt"
	"strings"
	"time"
)

// ErrMalformed is wrapped by the error of Parse for a message whose header block is
// broken or lacks a usable From field. The Mail returned with it holds what could be read.
var ErrMalformed = errors.New("mailparse: malformed message")

// errPanic marks a recovered panic, so that the fuzz tests can tell one from an ordinary
// malformed message.
var errPanic = errors.New("internal parser failure")

// DefaultMaxPartBytes is the default of Options.MaxPartBytes.
const DefaultMaxPartBytes = 25 << 20

// DefaultMaxHTMLBytes is the default of Options.MaxHTMLBytes.
const DefaultMaxHTMLBytes = 256 << 10

// MaxRawHeader is the most of the header block that Mail.RawHeader keeps, in bytes.
const MaxRawHeader = 64 << 10

// Mail is what Parse reads from a message. Ids are given without their angle brackets.
type Mail struct {
	// MessageID is the Message-ID; "" when missing or unusable (the caller synthesises one).
	MessageID string
	// InReplyTo is the first id of In-Reply-To.
	InReplyTo string
	// References are the ids of References, in order.
	References []string
	// From is the first address of From.
	From Address
	// To, Cc and ReplyTo are the addresses of these fields; unparseable entries are skipped.
	To, Cc  []Address
	ReplyTo []Address
	// Subject is the decoded Subject (RFC 2047, any charset), with line breaks as spaces.
	Subject string
	// Date is the Date field; zero when missing or unparseable.
	Date time.Time
	// Text is the plain text body with "\n" line endings and no trailing white space: the
	// text/plain parts, or text derived from the HTML when a part has only HTML.
	Text string
	// HTML is the body for Matrix's formatted_body, "" when the mail has no HTML part. It
	// is sanitized with the tags and attributes Matrix allows. Images are kept only when
	// they show an inline part, as <img src="cid:ID"> where ID is exactly that Part's
	// ContentID, for the caller to rewrite to an mxc: URI; other images become their alt text.
	HTML string
	// Attachments are the parts that are not body text: those with Content-Disposition
	// attachment or a file name, non-text parts, attached messages (message/rfc822), and
	// inline parts that the HTML does not show. Every attachment has a FileName.
	Attachments []Part
	// Inline are the parts that the HTML shows by Content-ID.
	Inline []Part
	// Auto is set for mail sent automatically: Auto-Submitted other than "no", Precedence
	// bulk, list or junk, a List-Id, an X-Auto-Response-Suppress field, or a
	// delivery-status report. A bridge must not answer such mail automatically.
	Auto bool
	// Bounce is the delivery-status report (RFC 3464) the message carries, else nil.
	Bounce *Bounce
	// FullHTML is the whole HTML body as received (decoded to UTF-8, not sanitized) when it
	// was larger than Options.MaxHTMLBytes: HTML and, for a mail without a text part, Text
	// then show its beginning only. "" otherwise. A caller offers it as a file.
	FullHTML string
	// RawHeader is the header block as received, with invalid UTF-8 replaced by U+FFFD,
	// capped at MaxRawHeader bytes; for "show raw headers" notices.
	RawHeader string
}

// Address is a mailbox: a display name, which may be "", and an address.
type Address struct {
	Name, Email string
}

// String is the address for display, "Name <email>" or the address alone when it has no
// name; it is not quoted or encoded for a header (compose does that).
func (a Address) String() string {
	if a.Name == "" {
		return a.Email
	}
	return a.Name + " <" + a.Email + ">"
}

// Part is an attachment or an inline part, with its transfer encoding decoded.
type Part struct {
	// ContentID is the Content-ID without angle brackets; "" when the part has none.
	ContentID string
	// FileName is the file name the mail gives, without any directory, or one made from the
	// content type ("attachment.pdf") when it gives none.
	FileName string
	// ContentType is the media type in lower case, without parameters.
	ContentType string
	// Data is the decoded content; nil when Truncated.
	Data []byte
	// Truncated is set when the part is larger than Options.MaxPartBytes.
	Truncated bool
	// Size is the decoded size in bytes, also when Truncated.
	Size int64
}

// Bounce is a delivery-status report.
type Bounce struct {
	// OriginalMessageID is the Message-ID of the mail that could not be delivered, from
	// the returned message or its headers; "" when the report does not include them.
	OriginalMessageID string
	// OriginalEnvelopeID is the report's Original-Envelope-Id (the ENVID the sender gave
	// at MAIL FROM), "" when absent.
	OriginalEnvelopeID string
	// Recipients are the per-recipient fields of the report.
	Recipients []BounceRecipient
}

// BounceRecipient is one recipient of a delivery-status report.
type BounceRecipient struct {
	// Address is the final recipient (or else the original recipient), without its type.
	Address string
	// Action is failed, delayed, delivered, relayed or expanded, in lower case.
	Action string
	// Status is the enhanced status code, such as "5.1.1".
	Status string
	// Diagnostic is the remote server's diagnostic, such as "550 5.1.1 User unknown",
	// without its type ("smtp;").
	Diagnostic string
}

// Options tune Parse. The zero value is ready to use.
type Options struct {
	// MaxPartBytes bounds the decoded size of a part; larger parts are returned with Data
	// nil and Truncated set, and larger text bodies are cut. Zero or less means
	// DefaultMaxPartBytes.
	MaxPartBytes int64
	// StripQuoted removes quoted history from the bodies: a trailing block of "> " lines,
	// "On … wrote:" blocks followed only by quoted lines, Outlook "-----Original
	// Message-----" and "From: … Sent: … Subject:" blocks, and in HTML the Gmail
	// (gmail_quote), Thunderbird and Apple Mail (blockquote type=cite) and Outlook
	// (divRplyFwdMsg) quotes. A body that would be left empty is kept as it is.
	StripQuoted bool
	// MaxHTMLBytes bounds the HTML that is parsed and sanitized, in all: parsing HTML
	// costs many times its size in memory, and a Matrix event holds less than 64 KiB
	// anyway. A larger HTML body is rendered from its beginning and returned whole in
	// Mail.FullHTML. Zero or less means DefaultMaxHTMLBytes.
	MaxHTMLBytes int64
}

func (o Options) maxPartBytes() int64 {
	if o.MaxPartBytes <= 0 {
		return DefaultMaxPartBytes
	}
	return o.MaxPartBytes
}

func (o Options) maxHTMLBytes() int {
	if o.MaxHTMLBytes <= 0 {
		return DefaultMaxHTMLBytes
	}
	return int(min(o.MaxHTMLBytes, 1<<30))
}

// Parse reads one raw RFC 5322 message. It never panics. For a message with a broken
// header block or without a usable From address it returns the Mail as far as it could be
// read, with RawHeader filled, and an error wrapping ErrMalformed. Problems in the body
// (unknown charsets, broken encodings, missing boundaries) are not errors: Parse reads
// what it can.
func Parse(raw []byte, opts Options) (m *Mail, err error) {
	m = &Mail{}
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("%w: %w: %v", ErrMalformed, errPanic, r)
		}
	}()
	head, body := splitHeader(skipMboxFrom(raw))
	m.RawHeader = rawHeaderText(head)
	h, problems := parseHeader(head)
	if len(h) == 0 {
		problems = append(problems, "no header fields")
	}
	readEnvelope(m, h)
	if m.From.Email == "" {
		problems = append(problems, "no usable From address")
	}
	readBody(m, h, body, opts)
	if len(problems) > 0 {
		return m, fmt.Errorf("%w: %s", ErrMalformed, strings.Join(problems, "; "))
	}
	return m, nil
}

// readEnvelope fills the fields of m that come from the top-level header.
func readEnvelope(m *Mail, h header) {
	m.MessageID = firstID(h.get("Message-Id"))
	m.InReplyTo = firstID(h.get("In-Reply-To"))
	m.References = msgIDs(h.get("References"))
	if from := parseAddressList(h.get("From")); len(from) > 0 {
		m.From = from[0]
	}
	m.To = parseAddressList(h.get("To"))
	m.Cc = parseAddressList(h.get("Cc"))
	m.ReplyTo = parseAddressList(h.get("Reply-To"))
	m.Subject = decodeHeaderText(h.get("Subject"))
	m.Date = parseDate(h.get("Date"))
	m.Auto = isAuto(h)
}
