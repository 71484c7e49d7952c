package email

import (
	"context"
	"errors"
	"fmt"
	"net/mail"
	"slices"
	"strings"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"

	"github.com/switchboard-matrix/switchboard/appservice"
	"github.com/switchboard-matrix/switchboard/bridges/email/compose"
)

// sentRecord is what is written, in one write, the moment the SMTP server accepted a
// mail (its 250 after DATA, before QUIT): all that the room's side of the mail needs.
// Kept under "sent:<key>"; a redelivered event finds it and completes the room's side
// without sending again.
type sentRecord struct {
	Meta    mailMeta     `json:"meta"`
	RootKey string       `json:"root_key"`
	Room    id.RoomID    `json:"room"`
	Event   id.EventID   `json:"event"`
	Thread  *threadState `json:"thread,omitempty"` // of a conversation the mail opened
}

// sendReply sends a Matrix message in a mail's thread as a reply from the mailbox, or a
// "!mail" command as a new mail, and runs "!email" commands in a thread. The mail's
// Message-ID derives from the event ID; the server's acceptance is recorded before QUIT,
// so a redelivered event is not sent twice.
func (b *Bridge) sendReply(ctx context.Context, mb *MailboxConfig, evt *event.Event) error {
	content := evt.Content.AsMessage()
	domain := mb.Address[strings.LastIndexByte(mb.Address, '@')+1:]
	msgID := compose.NewMessageID(evt.ID.String(), domain)
	key := mailKey(mb.Name, msgID)
	if _, _, err := b.host.Store().MessageByRemote(ctx, key); err == nil {
		return nil // sent before a crash
	}
	var rec sentRecord
	if err := b.getJSON(ctx, "sent:"+key, &rec); err == nil {
		return b.completeSent(ctx, key, rec) // accepted by the server before a crash
	} else if !errors.Is(err, appservice.ErrNotFound) {
		return err
	}
	out := compose.Outgoing{
		From: compose.Address{Name: mb.DisplayName, Email: mb.Address}, MessageID: msgID,
		Date: time.UnixMilli(evt.Timestamp), Text: content.Body,
		Headers: map[string]string{"X-Switchboard-Event": evt.ID.String()},
	}
	var rootKey string
	var newThread *threadState
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
		if strings.HasPrefix(content.Body, "!email") {
			answer, err := b.emailCommand(ctx, mb, rootKey, content.Body)
			if err != nil {
				return err
			}
			return b.commandAnswer(ctx, evt, answer)
		}
		lastKey, err := b.host.Store().GetKV(ctx, "thread-last:"+rootKey)
		if err != nil || lastKey == "" {
			lastKey = rootKey
		}
		var parent mailMeta
		if err := b.getJSON(ctx, "mail:"+lastKey, &parent); err != nil {
			return appservice.RoomError{Msg: "the mail this thread answers is not known", Permanent: true, Cause: err}
		}
		st, err := b.threadState(ctx, mb, rootKey)
		if err != nil {
			return appservice.RoomError{Msg: "the mail this thread answers is not known", Permanent: true, Cause: err}
		}
		for _, a := range st.Recipients {
			if !sameAddress(a, mb.Address) {
				out.To = append(out.To, compose.Address{Email: a})
			}
		}
		if len(out.To) == 0 {
			return appservice.RoomError{Msg: "this conversation has no recipients; add one with !email add <address>", Permanent: true}
		}
		out.Subject = compose.ReplySubject(parent.Subject)
		out.InReplyTo = parent.MessageID
		out.References = compose.ReplyReferences(parent.References, parent.MessageID)
	case strings.HasPrefix(content.Body, "!mail "):
		if err := parseMailCommand(content.Body, &out); err != nil {
			return roomError{what: "invalid !mail command", msg: err.Error(), permanent: true}
		}
		rootKey = key
		newThread = &threadState{}
		for _, a := range append(append([]compose.Address(nil), out.To...), out.Cc...) {
			newThread.Recipients = addAddress(newThread.Recipients, a.Email)
		}
		newThread.Known = slices.Clone(newThread.Recipients)
	case strings.HasPrefix(content.Body, "!email"):
		return appservice.RoomError{Msg: "!email commands work in a mail conversation's thread", Permanent: true}
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
		return roomError{what: "the mail could not be written", msg: "the mail could not be written: " + err.Error(), permanent: true, cause: err}
	}
	rcpts := make([]string, 0, len(out.To)+len(out.Cc))
	for _, a := range append(append([]compose.Address(nil), out.To...), out.Cc...) {
		rcpts = append(rcpts, a.Email)
	}
	rec = sentRecord{
		Meta:    mailMeta{MessageID: msgID, References: out.References, Subject: out.Subject, From: mb.Address, ReplyTo: rcpts},
		RootKey: rootKey, Room: evt.RoomID, Event: evt.ID, Thread: newThread,
	}
	// Written even when ctx ends meanwhile (a stop): the server has the mail.
	accepted := func() error { return b.putJSON(context.WithoutCancel(ctx), "sent:"+key, rec) }
	if err := sendSMTP(ctx, mb.SMTP, mb.Address, rcpts, raw, msgID, accepted); err != nil {
		return err
	}
	return b.completeSent(ctx, key, rec)
}

// completeSent records the room's side of a mail the server accepted: what a reply to
// it and a bounce of it need, its event in the message map, and its thread's latest mail.
// Every step may be repeated.
func (b *Bridge) completeSent(ctx context.Context, key string, rec sentRecord) error {
	if err := b.putJSON(ctx, "mail:"+key, rec.Meta); err != nil {
		return err
	}
	if err := b.host.Store().PutKV(ctx, "rootkey:"+key, rec.RootKey); err != nil {
		return err
	}
	if rec.Thread != nil {
		if err := b.putJSON(ctx, threadStateKey(rec.RootKey), rec.Thread); err != nil {
			return err
		}
	}
	if err := b.host.Store().PutMessage(ctx, key, rec.Room, rec.Event); err != nil {
		return err
	}
	return b.host.Store().PutKV(ctx, "thread-last:"+rec.RootKey, key)
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

// attachFile adds a Matrix file to the mail. A file of an encrypted room (content.file)
// is downloaded and decrypted by the core: the mail carries the plaintext.
func (b *Bridge) attachFile(ctx context.Context, out *compose.Outgoing, c *event.MessageEventContent) error {
	url := c.URL
	if c.File != nil {
		url = c.File.URL
	}
	if _, err := url.Parse(); err != nil {
		return appservice.RoomError{Msg: "the file has no valid media URL", Permanent: true}
	}
	data, err := b.host.Bot().DownloadFile(ctx, c, b.cfg.MaxAttachmentBytes)
	if _, refused := appservice.ScanRefusal(err); refused || errors.Is(err, appservice.ErrScannerUnavailable) {
		return err // refused by the virus scanner (the sender is told why), or held
	}
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

// sendSMTP submits one mail and calls accepted the moment the server has taken it (the
// answer to DATA), before QUIT: a crash after that answer and before the record is the
// only window in which a redelivered event sends the mail once more. A 4xx answer (or a
// network failure) is retried by the dispatcher with backoff; a 5xx answer fails the
// Matrix event at once with the server's reason. envelopeID is given as ENVID when the
// server offers DSN, so that its bounces name it.
func sendSMTP(ctx context.Context, s ServerConfig, from string, to []string, raw []byte, envelopeID string, accepted func() error) error {
	tlsCfg, err := tlsConfig(s)
	if err != nil {
		return err
	}
	var c *smtp.Client
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
	opts := &smtp.MailOptions{EnvelopeID: envelopeID, UTF8: !isASCII(from) || slices.ContainsFunc(to, func(a string) bool { return !isASCII(a) })}
	if err := c.Mail(from, opts); err != nil {
		return classifySMTP("send", err)
	}
	for _, rcpt := range to {
		if err := c.Rcpt(rcpt, nil); err != nil {
			return classifySMTP("send", err)
		}
	}
	w, err := c.Data()
	if err != nil {
		return classifySMTP("send", err)
	}
	if _, err := w.Write(raw); err != nil {
		return classifySMTP("send", err)
	}
	if err := w.Close(); err != nil {
		return classifySMTP("send", err)
	}
	if err := accepted(); err != nil {
		return fmt.Errorf("email: record a sent mail: %w", err)
	}
	_ = c.Quit() // the mail is the server's now; a failed QUIT changes nothing
	return nil
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}
