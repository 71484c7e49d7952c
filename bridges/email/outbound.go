package email

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net/mail"
	"strings"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"

	"github.com/switchboard-matrix/switchboard/appservice"
	"github.com/switchboard-matrix/switchboard/bridges/email/compose"
)

// sendReply sends a Matrix message in a mail's thread as a reply from the mailbox, or a
// "!mail" command as a new mail. The mail's Message-ID derives from the event ID and it is
// recorded as sent once the SMTP server took it: a redelivered event is not sent twice.
func (b *Bridge) sendReply(ctx context.Context, mb *MailboxConfig, evt *event.Event) error {
	content := evt.Content.AsMessage()
	domain := mb.Address[strings.LastIndexByte(mb.Address, '@')+1:]
	msgID := compose.NewMessageID(evt.ID.String(), domain)
	key := mailKey(mb.Name, msgID)
	if _, _, err := b.host.Store().MessageByRemote(ctx, key); err == nil {
		return nil // sent before a crash
	}
	out := compose.Outgoing{
		From: compose.Address{Name: mb.DisplayName, Email: mb.Address}, MessageID: msgID,
		Date: time.UnixMilli(evt.Timestamp), Text: content.Body,
		Headers: map[string]string{"X-Switchboard-Event": evt.ID.String()},
	}
	var rootKey string
	rel := content.RelatesTo
	switch {
	case rel != nil && rel.Type == event.RelThread:
		rk, err := b.host.Store().MessageByEvent(ctx, rel.EventID)
		if err != nil {
			// Not found may be a mail whose send is still being confirmed after a restart:
			// retried with backoff, and only then reported.
			return appservice.RoomError{Msg: "this thread is not a mail conversation", Permanent: !errors.Is(err, appservice.ErrNotFound), Cause: err}
		}
		rootKey = rk
		lastKey, err := b.host.Store().GetKV(ctx, "thread-last:"+rootKey)
		if err != nil || lastKey == "" {
			lastKey = rootKey
		}
		var parent mailMeta
		if err := b.getJSON(ctx, "mail:"+lastKey, &parent); err != nil {
			return appservice.RoomError{Msg: "the mail this thread answers is not known", Permanent: true, Cause: err}
		}
		to := parent.ReplyTo
		if len(to) == 0 || parent.From == mb.Address {
			to = []string{parent.From}
		}
		if parent.From == mb.Address && len(parent.ReplyTo) > 0 {
			to = parent.ReplyTo // our own mail: reply to its recipients
		}
		for _, a := range to {
			out.To = append(out.To, compose.Address{Email: a})
		}
		out.Subject = compose.ReplySubject(parent.Subject)
		out.InReplyTo = parent.MessageID
		out.References = compose.ReplyReferences(parent.References, parent.MessageID)
	case strings.HasPrefix(content.Body, "!mail "):
		if err := parseMailCommand(content.Body, &out); err != nil {
			return appservice.RoomError{Msg: err.Error(), Permanent: true}
		}
		rootKey = key
	default:
		return nil // ordinary room talk
	}
	if content.MsgType == event.MsgImage || content.MsgType == event.MsgFile || content.MsgType == event.MsgAudio || content.MsgType == event.MsgVideo {
		if err := b.attachFile(ctx, &out, content); err != nil {
			return err
		}
	}
	raw, err := compose.Build(out)
	if err != nil {
		return appservice.RoomError{Msg: "the mail could not be written: " + err.Error(), Permanent: true}
	}
	rcpts := make([]string, 0, len(out.To)+len(out.Cc))
	for _, a := range append(append([]compose.Address(nil), out.To...), out.Cc...) {
		rcpts = append(rcpts, a.Email)
	}
	if err := sendSMTP(ctx, mb.SMTP, mb.Address, rcpts, raw); err != nil {
		return err
	}
	meta := mailMeta{MessageID: msgID, References: out.References, Subject: out.Subject, From: mb.Address, ReplyTo: rcpts}
	if err := b.putJSON(ctx, "mail:"+key, meta); err != nil {
		return err
	}
	if err := b.host.Store().PutKV(ctx, "rootkey:"+key, rootKey); err != nil {
		return err
	}
	if err := b.host.Store().PutMessage(ctx, key, evt.RoomID, evt.ID); err != nil {
		return err
	}
	return b.host.Store().PutKV(ctx, "thread-last:"+rootKey, key)
}

// parseMailCommand reads "!mail to=a@b,c@d cc=e@f subject=Words up to the line end" and the
// body on the following lines.
func parseMailCommand(body string, out *compose.Outgoing) error {
	first, rest, _ := strings.Cut(strings.TrimPrefix(body, "!mail "), "\n")
	subj := ""
	if i := strings.Index(first, "subject="); i >= 0 {
		subj = strings.TrimSpace(first[i+len("subject="):])
		first = first[:i]
	}
	for _, f := range strings.Fields(first) {
		k, v, _ := strings.Cut(f, "=")
		for _, a := range strings.Split(v, ",") {
			if a == "" {
				continue
			}
			if _, err := mail.ParseAddress(a); err != nil {
				return fmt.Errorf("%q is not an email address", a)
			}
			switch k {
			case "to":
				out.To = append(out.To, compose.Address{Email: a})
			case "cc":
				out.Cc = append(out.Cc, compose.Address{Email: a})
			default:
				return fmt.Errorf("unknown field %q; use to=, cc= and subject=", k)
			}
		}
	}
	if len(out.To) == 0 {
		return errors.New("a new mail needs to=address: !mail to=a@example.org subject=Hello, then the text on the next lines")
	}
	out.Subject, out.Text = subj, strings.TrimSpace(rest)
	return nil
}

// attachFile adds a Matrix file to the mail.
func (b *Bridge) attachFile(ctx context.Context, out *compose.Outgoing, c *event.MessageEventContent) error {
	if c.File != nil {
		return appservice.RoomError{Msg: "encrypted files cannot be sent by mail", Permanent: true}
	}
	uri, err := c.URL.Parse()
	if err != nil {
		return appservice.RoomError{Msg: "the file has no valid media URL", Permanent: true}
	}
	data, err := b.host.Bot().DownloadMedia(ctx, uri, b.cfg.MaxAttachmentBytes)
	if err != nil {
		return appservice.RoomError{Msg: fmt.Sprintf("the file could not be attached (the limit is %d bytes)", b.cfg.MaxAttachmentBytes), Permanent: true, Cause: err}
	}
	name := c.FileName
	if name == "" {
		name = c.Body
	}
	ctype := "application/octet-stream"
	if c.Info != nil && c.Info.MimeType != "" {
		ctype = c.Info.MimeType
	}
	out.Attachments = append(out.Attachments, compose.Attachment{FileName: name, ContentType: ctype, Data: data})
	if out.Text == name {
		out.Text = ""
	}
	return nil
}

// sendSMTP submits one mail. A 4xx answer (or a network failure) is retried by the
// dispatcher with backoff; a 5xx answer fails the Matrix event at once with the server's
// reason.
func sendSMTP(ctx context.Context, s ServerConfig, from string, to []string, raw []byte) error {
	host, _, _ := strings.Cut(s.Address, ":")
	tlsCfg := &tls.Config{ServerName: host, InsecureSkipVerify: s.InsecureSkipVerify} // #nosec G402 -- opt-in for test servers
	var c *smtp.Client
	var err error
	switch s.TLS {
	case "implicit":
		c, err = smtp.DialTLS(s.Address, tlsCfg)
	case "none":
		c, err = smtp.Dial(s.Address)
	default:
		c, err = smtp.DialStartTLS(s.Address, tlsCfg)
	}
	if err != nil {
		return fmt.Errorf("email: connect to %s: %w", s.Address, err)
	}
	defer c.Close()
	stop := context.AfterFunc(ctx, func() { _ = c.Close() })
	defer stop()
	if err := c.Auth(sasl.NewPlainClient("", s.Username, s.Password)); err != nil {
		return classifySMTP("log in", err)
	}
	if err := c.SendMail(from, to, bytes.NewReader(raw)); err != nil {
		return classifySMTP("send", err)
	}
	return c.Quit()
}

func classifySMTP(what string, err error) error {
	var se *smtp.SMTPError
	if errors.As(err, &se) && se.Code >= 500 {
		return appservice.RoomError{Msg: fmt.Sprintf("the mail server refused it (%d %s)", se.Code, se.Message), Permanent: true, Cause: err}
	}
	return fmt.Errorf("email: %s: %w", what, err)
}

var _ = id.EventID("")
