// Package compose writes the mail that the email bridge sends for a Matrix message: an
// RFC 5322 message with CRLF line endings, non-ASCII header text encoded with RFC 2047,
// text bodies in quoted-printable, an HTML alternative and base64 attachments when there
// are any, and the threading headers of a reply. It also derives reply subjects,
// References and deterministic Message-IDs. The package knows nothing of Matrix events or
// of SMTP connections.
package compose

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"mime"
	netmail "net/mail"
	"sort"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/emersion/go-message/mail"

	"github.com/switchboard-matrix/switchboard/bridges/email/mailparse"
)

// ErrInvalid is wrapped by every error of Build.
var ErrInvalid = errors.New("compose: invalid message")

// ErrHeaderInjection is wrapped by the error of Build for a line break in a value that
// goes into a header (an address, a name, the subject, an id, a file name, an extra
// header). It wraps ErrInvalid.
var ErrHeaderInjection = fmt.Errorf("%w: line break in a header value", ErrInvalid)

// Address is a mailbox, the same type as mailparse.Address so that the addresses of a
// parsed mail can be answered directly.
type Address = mailparse.Address

// Attachment is a file sent with the mail.
type Attachment struct {
	// FileName is the name the recipient sees; required.
	FileName string
	// ContentType is the media type, such as "application/pdf"; "" or an invalid one
	// means application/octet-stream. multipart/* and message/* types are sent as
	// application/octet-stream, since they may not be base64-encoded.
	ContentType string
	Data        []byte
}

// Outgoing is a mail to send. From, To and MessageID are required.
type Outgoing struct {
	// From is the mailbox the bridge sends as.
	From Address
	// To must have at least one address; Cc may be empty.
	To, Cc []Address
	// Subject may be "" and may hold any text without line breaks.
	Subject string
	// InReplyTo is the Message-ID of the mail answered, without <>; "" for a new thread.
	InReplyTo string
	// References are the ids of the thread (see ReplyReferences), without <>.
	References []string
	// MessageID is the id of this mail, without <>; required. Derive it from the Matrix
	// event ID (see NewMessageID) so that a resend has the same id.
	MessageID string
	// Date is the Date field; zero means now.
	Date time.Time
	// Text is the plain text body; "\n", "\r\n" and "\r" line endings are all accepted.
	Text string
	// HTML is an optional HTML body; the mail is then multipart/alternative.
	HTML string
	// Attachments make the mail multipart/mixed.
	Attachments []Attachment
	// Headers are extra header fields, such as "X-Switchboard-Event". Fields that Build
	// writes itself (From, To, Subject, Message-ID, Content-*, …) and Bcc are refused.
	// Auto-Submitted is not set unless given here.
	Headers map[string]string
}

// reserved header fields that Build writes itself or that must not be set this way.
var reserved = map[string]bool{
	"From": true, "To": true, "Cc": true, "Bcc": true, "Subject": true, "Date": true,
	"Message-Id": true, "In-Reply-To": true, "References": true, "Mime-Version": true,
	"Sender": true, "Reply-To": true, "Return-Path": true,
}

// Build writes o as an RFC 5322 message. It fails, with an error wrapping ErrInvalid, for
// a missing or invalid From, To or MessageID, invalid UTF-8, a reserved or invalid extra
// header, and, wrapping ErrHeaderInjection, for a CR or LF in any value that goes into a
// header.
func Build(o Outgoing) ([]byte, error) {
	if err := validate(o); err != nil {
		return nil, err
	}
	h := header(o)
	text := strings.ReplaceAll(strings.ReplaceAll(o.Text, "\r\n", "\n"), "\r", "\n")
	var buf bytes.Buffer
	var err error
	switch {
	case len(o.Attachments) > 0:
		err = writeMixed(&buf, h, text, o.HTML, o.Attachments)
	case o.HTML != "":
		var w *mail.InlineWriter
		if w, err = mail.CreateInlineWriter(&buf, h); err == nil {
			err = writeAlternatives(w, text, o.HTML)
		}
	default:
		h.SetContentType("text/plain", map[string]string{"charset": "utf-8"})
		var w io.WriteCloser
		if w, err = mail.CreateSingleInlineWriter(&buf, h); err == nil {
			err = writeAndClose(w, text)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("%w: message %s: %v", ErrInvalid, o.MessageID, err)
	}
	return buf.Bytes(), nil
}

// header is the top-level header of o; o is valid.
func header(o Outgoing) mail.Header {
	var h mail.Header
	// textproto writes fields last added first; add them in reverse order.
	keys := make([]string, 0, len(o.Headers))
	for k := range o.Headers {
		keys = append(keys, k)
	}
	sort.Sort(sort.Reverse(sort.StringSlice(keys)))
	for _, k := range keys {
		h.Add(k, encodeText(o.Headers[k]))
	}
	if len(o.References) > 0 {
		h.SetMsgIDList("References", o.References)
	}
	if o.InReplyTo != "" {
		h.SetMsgIDList("In-Reply-To", []string{o.InReplyTo})
	}
	h.SetMessageID(o.MessageID)
	h.Set("Subject", encodeText(o.Subject))
	if len(o.Cc) > 0 {
		h.SetAddressList("Cc", addressList(o.Cc))
	}
	h.SetAddressList("To", addressList(o.To))
	h.SetAddressList("From", addressList([]Address{o.From}))
	date := o.Date
	if date.IsZero() {
		date = time.Now()
	}
	h.SetDate(date)
	return h
}

func addressList(list []Address) []*mail.Address {
	out := make([]*mail.Address, len(list))
	for i, a := range list {
		out[i] = &mail.Address{Name: a.Name, Address: a.Email}
	}
	return out
}

// writeMixed writes a multipart/mixed body: the text (or text and HTML alternatives),
// then the attachments in base64.
func writeMixed(buf *bytes.Buffer, h mail.Header, text, html string, attachments []Attachment) error {
	mw, err := mail.CreateWriter(buf, h)
	if err != nil {
		return err
	}
	if html != "" {
		iw, err := mw.CreateInline()
		if err != nil {
			return err
		}
		if err := writeAlternatives(iw, text, html); err != nil {
			return err
		}
	} else {
		var ih mail.InlineHeader
		ih.SetContentType("text/plain", map[string]string{"charset": "utf-8"})
		w, err := mw.CreateSingleInline(ih)
		if err != nil {
			return err
		}
		if err := writeAndClose(w, text); err != nil {
			return err
		}
	}
	for _, a := range attachments {
		var ah mail.AttachmentHeader
		ah.SetContentType(attachmentType(a.ContentType), map[string]string{"name": a.FileName})
		ah.SetFilename(a.FileName)
		w, err := mw.CreateAttachment(ah)
		if err != nil {
			return err
		}
		if _, err := w.Write(a.Data); err != nil {
			return err
		}
		if err := w.Close(); err != nil {
			return err
		}
	}
	return mw.Close()
}

// writeAlternatives writes the text/plain and text/html parts of a multipart/alternative.
func writeAlternatives(iw *mail.InlineWriter, text, html string) error {
	for _, p := range []struct{ mediaType, body string }{{"text/plain", text}, {"text/html", html}} {
		var ih mail.InlineHeader
		ih.SetContentType(p.mediaType, map[string]string{"charset": "utf-8"})
		w, err := iw.CreatePart(ih)
		if err != nil {
			return err
		}
		if err := writeAndClose(w, p.body); err != nil {
			return err
		}
	}
	return iw.Close()
}

func writeAndClose(w io.WriteCloser, s string) error {
	if _, err := io.WriteString(w, s); err != nil {
		w.Close()
		return err
	}
	return w.Close()
}

// attachmentType is the media type an attachment is sent as.
func attachmentType(ct string) string {
	mediaType, _, err := mime.ParseMediaType(ct)
	if err != nil || strings.HasPrefix(mediaType, "multipart/") || strings.HasPrefix(mediaType, "message/") {
		return "application/octet-stream"
	}
	return mediaType
}

// validate checks o before anything is written.
func validate(o Outgoing) error {
	if o.From.Email == "" {
		return fmt.Errorf("%w: no From address", ErrInvalid)
	}
	if len(o.To) == 0 {
		return fmt.Errorf("%w: no To address", ErrInvalid)
	}
	if o.MessageID == "" {
		return fmt.Errorf("%w: no Message-ID", ErrInvalid)
	}
	if err := checkID("Message-ID", o.MessageID); err != nil {
		return err
	}
	if !strings.Contains(o.MessageID, "@") {
		return fmt.Errorf("%w: Message-ID %q has no '@'", ErrInvalid, o.MessageID)
	}
	if o.InReplyTo != "" {
		if err := checkID("In-Reply-To", o.InReplyTo); err != nil {
			return err
		}
	}
	for _, ref := range o.References {
		if err := checkID("References", ref); err != nil {
			return err
		}
	}
	for _, a := range append(append([]Address{o.From}, o.To...), o.Cc...) {
		if err := checkAddress(a); err != nil {
			return err
		}
	}
	if err := checkHeaderText("Subject", o.Subject); err != nil {
		return err
	}
	for k, v := range o.Headers {
		if err := checkHeaderText("header "+k, k+v); err != nil {
			return err
		}
		if !validKey(k) {
			return fmt.Errorf("%w: %q is not a header field name", ErrInvalid, k)
		}
		if canonical := mimeKey(k); reserved[canonical] || strings.HasPrefix(canonical, "Content-") {
			return fmt.Errorf("%w: header %s is written by Build", ErrInvalid, canonical)
		}
	}
	for _, a := range o.Attachments {
		if a.FileName == "" {
			return fmt.Errorf("%w: an attachment has no file name", ErrInvalid)
		}
		if err := checkHeaderText("attachment name", a.FileName+a.ContentType); err != nil {
			return err
		}
	}
	if !utf8.ValidString(o.Text) || !utf8.ValidString(o.HTML) {
		return fmt.Errorf("%w: body of %s is not valid UTF-8", ErrInvalid, o.MessageID)
	}
	return nil
}

// checkHeaderText refuses line breaks and invalid UTF-8 in a header value.
func checkHeaderText(what, v string) error {
	if strings.ContainsAny(v, "\r\n") {
		return fmt.Errorf("%w (%s)", ErrHeaderInjection, what)
	}
	if !utf8.ValidString(v) {
		return fmt.Errorf("%w: %s is not valid UTF-8", ErrInvalid, what)
	}
	return nil
}

// checkID accepts a message id that can be written as "<id>": printable ASCII without
// white space or angle brackets.
func checkID(what, id string) error {
	if err := checkHeaderText(what, id); err != nil {
		return err
	}
	if id == "" || len(id) > 900 {
		return fmt.Errorf("%w: %s is empty or too long", ErrInvalid, what)
	}
	for i := 0; i < len(id); i++ {
		if c := id[i]; c <= ' ' || c > '~' || c == '<' || c == '>' {
			return fmt.Errorf("%w: %s %q is not a valid message id", ErrInvalid, what, id)
		}
	}
	return nil
}

// checkAddress accepts an address that net/mail reads back as itself.
func checkAddress(a Address) error {
	if err := checkHeaderText("address", a.Name+a.Email); err != nil {
		return err
	}
	parsed, err := netmail.ParseAddress("<" + a.Email + ">")
	if err != nil || parsed.Address != a.Email {
		return fmt.Errorf("%w: %q is not an email address", ErrInvalid, a.Email)
	}
	return nil
}

// validKey reports whether k is a header field name: printable ASCII without colon.
func validKey(k string) bool {
	if k == "" {
		return false
	}
	for i := 0; i < len(k); i++ {
		if c := k[i]; c < 33 || c > 126 || c == ':' {
			return false
		}
	}
	return true
}
