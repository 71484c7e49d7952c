package email

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"html"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/rs/zerolog"
	"maunium.net/go/mautrix"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"

	"github.com/switchboard-matrix/switchboard/appservice"
	"github.com/switchboard-matrix/switchboard/bridges/email/mailparse"
)

// Store keys: a mail is "mid:<mailbox>:<Message-ID>" (its message-map key, also for the
// mails the room sends); "mail:<key>" holds what a reply needs (mailMeta); "rootkey:<key>"
// the key of its thread's root (its own key for a root), written when the mail is queued;
// "thread-last:<root key>" the key of the thread's latest mail.

func mailKey(mailbox, messageID string) string { return "mid:" + mailbox + ":" + messageID }

// mailMeta is what a reply to a mail needs.
type mailMeta struct {
	MessageID  string   `json:"message_id"`
	References []string `json:"references,omitempty"`
	Subject    string   `json:"subject"`
	From       string   `json:"from"`
	FromName   string   `json:"from_name,omitempty"`
	ReplyTo    []string `json:"reply_to,omitempty"`
	Cc         []string `json:"cc,omitempty"`
}

func (b *Bridge) putJSON(ctx context.Context, key string, v any) error {
	raw, _ := json.Marshal(v)
	return b.host.Store().PutKV(ctx, key, string(raw))
}

func (b *Bridge) getJSON(ctx context.Context, key string, v any) error {
	raw, err := b.host.Store().GetKV(ctx, key)
	if err != nil {
		return err
	}
	if raw == "" {
		return appservice.ErrNotFound
	}
	return json.Unmarshal([]byte(raw), v)
}

// eventOf returns the Matrix event of a mail key, waiting a little for one still queued
// (its "rootkey:" is recorded when it is queued).
func (b *Bridge) eventOf(ctx context.Context, key string) (id.EventID, error) {
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, evt, err := b.host.Store().MessageByRemote(ctx, key)
		if err == nil || !errors.Is(err, appservice.ErrNotFound) {
			return evt, err
		}
		if _, kerr := b.host.Store().GetKV(ctx, "rootkey:"+key); kerr != nil || time.Now().After(deadline) {
			return "", err
		}
		select {
		case <-ctx.Done():
			return "", ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// maxDisplayName bounds a ghost's display name taken from a mail, in bytes.
const maxDisplayName = 200

// filePart is a file posted in a mail's thread: a part of the mail, or the mail's whole
// text or HTML when its event had to be shortened. uri is set for a part uploaded already
// (an inline image of a dropped HTML body).
type filePart struct {
	mailparse.Part
	uri id.ContentURI
}

// post bridges one mail: a new thread for a new conversation, a reply in its thread
// otherwise. A mail that cannot be read becomes a notice with its raw header. A mail
// bridged in part before (a crash between its events) is completed (see postRun).
func (m *mailbox) post(ctx context.Context, validity uint32, uid imap.UID, raw []byte) error {
	mail, perr := mailparse.Parse(raw, mailparse.Options{MaxPartBytes: m.b.cfg.MaxAttachmentBytes, StripQuoted: m.cfg.StripQuoted})
	if mail == nil {
		mail = &mailparse.Mail{}
	}
	msgID := mail.MessageID
	if msgID == "" {
		sum := sha256.Sum256(raw)
		msgID = "no-message-id-" + hex.EncodeToString(sum[:12]) + "@" + m.cfg.Name
	}
	key := mailKey(m.cfg.Name, msgID)
	run, err := m.beginPost(ctx, key)
	if err != nil || run == nil {
		return err // nil: bridged before (a re-read after a crash), or a mail the room sent
	}
	log := zerolog.Ctx(ctx).With().Uint32("uid", uint32(uid)).Logger()
	if err := m.postMail(log.WithContext(ctx), run, msgID, mail, perr); err != nil {
		return err
	}
	return run.finish(ctx)
}

// postMail queues the events of a mail (see post).
func (m *mailbox) postMail(ctx context.Context, run *postRun, msgID string, mail *mailparse.Mail, perr error) error {
	b := m.b
	key := run.key
	if perr != nil {
		zerolog.Ctx(ctx).Warn().Err(perr).Msg("Malformed mail; posting a notice with its header")
		return m.notice(ctx, run, key, "", "⚠️ A mail could not be read ("+perr.Error()+"). Its header:", mail.RawHeader)
	}
	if mail.Bounce != nil {
		if thread, ok := m.bounceOfOurs(ctx, mail.Bounce); ok {
			return m.bounce(ctx, run, thread, mail)
		}
		// A report about no mail the room sent: an ordinary (automatic) mail from its
		// sender, not a notice of the bot's.
	}
	ghostID, err := b.mapper.GhostUserID(mail.From.Email)
	if err != nil {
		return m.notice(ctx, run, key, "", "⚠️ A mail from an address that cannot be shown ("+err.Error()+"). Its header:", mail.RawHeader)
	}
	ghost, err := b.host.Ghost(ghostID.Localpart())
	if err != nil {
		return err
	}
	name := mail.From.Name
	if name == "" {
		name = mail.From.Email
	}
	// A refused name (too long, say) must not hold up the mailbox: the ghost keeps its
	// address as its name.
	if err := ghost.SetDisplayName(ctx, cutText(name, maxDisplayName)); refused(err) {
		zerolog.Ctx(ctx).Warn().Str("errcode", refusal(err)).Msg("The homeserver refused a sender's display name")
	} else if err != nil {
		return err
	}
	if err := ghost.EnsureJoined(ctx, m.room); err != nil {
		return err
	}
	rootKey, root, parent := m.threadOf(ctx, mail)
	if rootKey == "" {
		rootKey = key
	}
	htmlBody, shown, refusedImages, err := m.inlineImages(ctx, run, ghost, mail)
	if err != nil {
		return err
	}
	content := &event.MessageEventContent{MsgType: event.MsgText, Body: mail.Text}
	if htmlBody != "" {
		content.Format, content.FormattedBody = event.FormatHTML, htmlBody
	}
	if root == "" {
		// A new conversation: the subject is the thread root's first line.
		content.Body = mail.Subject + "\n\n" + content.Body
		if content.FormattedBody == "" {
			content.FormattedBody = strings.ReplaceAll(html.EscapeString(mail.Text), "\n", "<br>")
			content.Format = event.FormatHTML
		}
		content.FormattedBody = "<p><strong>" + html.EscapeString(mail.Subject) + "</strong></p>" + content.FormattedBody
	} else {
		content.RelatesTo = &event.RelatesTo{Type: event.RelThread, EventID: root, IsFallingBack: true,
			InReplyTo: &event.InReplyTo{EventID: parent}}
	}
	if mail.Auto {
		content.Body = "[automatic mail] " + content.Body
		if content.FormattedBody != "" {
			content.FormattedBody = "<em>[automatic mail]</em> " + content.FormattedBody
		}
	}
	// Every event fits Matrix's size limit: a longer mail is shortened with a note, and
	// its whole text and HTML follow as files.
	fullText, fullHTML := content.Body, htmlBody
	if mail.FullHTML != "" {
		fullHTML = mail.FullHTML
	}
	htmlDropped, bodyCut := fitContent(content, maxContentBytes, trimNoteMail, mail.FullHTML != "")
	files := make([]filePart, 0, len(mail.Attachments)+len(mail.Inline)+len(shown)+2)
	for _, p := range mail.Attachments {
		files = append(files, filePart{Part: p})
	}
	for _, p := range mail.Inline {
		files = append(files, filePart{Part: p})
	}
	if htmlDropped {
		files = append(files, shown...) // no longer shown in place
	}
	if bodyCut {
		files = append(files, textFile("mail.txt", "text/plain", fullText))
	}
	if htmlDropped && fullHTML != "" {
		files = append(files, textFile("mail.html", "text/html", fullHTML))
	}

	meta := mailMeta{MessageID: msgID, References: mail.References, Subject: mail.Subject, From: mail.From.Email, FromName: mail.From.Name}
	for _, a := range mail.ReplyTo {
		meta.ReplyTo = append(meta.ReplyTo, a.Email)
	}
	if err := b.putJSON(ctx, "mail:"+key, meta); err != nil {
		return err
	}
	var st threadState
	var fresh []string
	if rootKey == key {
		if st, err = b.openThread(ctx, &m.cfg, key, meta); err != nil {
			return err
		}
	} else if st, err = b.threadState(ctx, &m.cfg, rootKey); err == nil {
		fresh = newcomers(&m.cfg, st, mail)
	} else if !errors.Is(err, appservice.ErrNotFound) {
		return err
	}
	if err := b.host.Store().PutKV(ctx, "rootkey:"+key, rootKey); err != nil {
		return err
	}
	// Recorded before the mail's first event: a run that completes the mail after a crash
	// does not write it again, over a reply the room may have sent meanwhile.
	if !run.resumed {
		if err := b.host.Store().PutKV(ctx, "thread-last:"+rootKey, key); err != nil {
			return err
		}
	}
	msg := appservice.Message{RoomID: m.room, Sender: ghostID, RemoteID: key, Content: content}
	if *m.cfg.DateAsEventTime {
		msg.Timestamp = mail.Date
	}
	if err := run.enqueue(ctx, msg); err != nil {
		return err
	}
	if len(fresh) > 0 {
		// Shown by the bot, so that no mail can fake or hide it.
		if err := m.notice(ctx, run, key+"|newcomer", root, newcomerNotice(st, fresh), ""); err != nil {
			return err
		}
	}
	return m.attachments(ctx, run, ghostID, mail.From.String(), rootKey, refusedImages, files)
}

// openThread returns the state of the conversation the mail key with meta opens, creating
// it only when it does not exist: a run that completes the mail after a crash keeps what
// room users changed meanwhile (!email add).
func (b *Bridge) openThread(ctx context.Context, mb *MailboxConfig, key string, meta mailMeta) (threadState, error) {
	var st threadState
	err := b.getJSON(ctx, threadStateKey(key), &st)
	if !errors.Is(err, appservice.ErrNotFound) {
		return st, err
	}
	st = newThreadState(mb, meta)
	return st, b.putJSON(ctx, threadStateKey(key), st)
}

// textFile is a text as a file part.
func textFile(name, contentType, text string) filePart {
	return filePart{Part: mailparse.Part{FileName: name, ContentType: contentType, Data: []byte(text), Size: int64(len(text))}}
}

// inlineImages uploads the images a mail's HTML shows (cid: sources) and points the HTML
// at their mxc: URIs; they are returned as shown, and posted as files only when the HTML
// cannot be shown. An image over the size limit keeps only its alt text; one the virus
// scanner refuses (now, or in an earlier run of the mail: see scan.go) too, and it is
// returned as refused.
func (m *mailbox) inlineImages(ctx context.Context, run *postRun, ghost *appservice.Intent, mail *mailparse.Mail) (string, []filePart, []refusedImage, error) {
	out := mail.HTML
	var rest []mailparse.Part
	var shown []filePart
	before, err := m.inlineRefusals(ctx, run.key)
	if err != nil {
		return "", nil, nil, err
	}
	var refusedNow []refusedImage
	for _, p := range mail.Inline {
		ref := `src="cid:` + p.ContentID + `"`
		if p.ContentID == "" || !strings.Contains(out, ref) {
			rest = append(rest, p)
			continue
		}
		if r, ok := before[p.ContentID]; ok {
			out = strings.ReplaceAll(out, ref, `src=""`)
			refusedNow = append(refusedNow, r)
			continue
		}
		if p.Data == nil || int64(len(p.Data)) > m.b.cfg.MaxAttachmentBytes {
			out = strings.ReplaceAll(out, ref, `src=""`)
			rest = append(rest, p) // shown as a notice, not lost silently
			continue
		}
		uri, err := m.upload(ctx, ghost, p.Data, p.ContentType, p.FileName)
		if reason, notClean := appservice.ScanRefusal(err); notClean {
			out = strings.ReplaceAll(out, ref, `src=""`)
			name := p.FileName
			if name == "" {
				name = "image"
			}
			refusedNow = append(refusedNow, refusedImage{ContentID: p.ContentID, Name: name, Reason: reason})
			continue
		}
		if refused(err) {
			out = strings.ReplaceAll(out, ref, `src=""`)
			rest = append(rest, p)
			continue
		} else if err != nil {
			return "", nil, nil, err
		}
		out = strings.ReplaceAll(out, ref, `src="`+uri.String()+`"`)
		shown = append(shown, filePart{Part: p, uri: uri})
	}
	if err := m.recordInlineRefusals(ctx, run.key, refusedNow, before); err != nil {
		return "", nil, nil, err
	}
	run.imagesRefused = len(refusedNow) > 0
	mail.Inline = rest
	return out, shown, refusedNow, nil
}

// threadOf finds the thread a mail belongs to by In-Reply-To and References: the root's
// key and event, and the parent's event; all empty for a new conversation.
func (m *mailbox) threadOf(ctx context.Context, mail *mailparse.Mail) (rootKey string, root, parent id.EventID) {
	candidates := []string{mail.InReplyTo}
	for i := len(mail.References) - 1; i >= 0; i-- {
		candidates = append(candidates, mail.References[i])
	}
	for _, c := range candidates {
		if c == "" {
			continue
		}
		key := mailKey(m.cfg.Name, c)
		evt, err := m.b.eventOf(ctx, key)
		if err != nil {
			continue
		}
		rk, _ := m.b.host.Store().GetKV(ctx, "rootkey:"+key)
		if rk == "" || rk == key {
			return key, evt, evt
		}
		if r, err := m.b.eventOf(ctx, rk); err == nil {
			return rk, r, evt
		}
	}
	return "", "", ""
}

// attachments posts the notices of a mail's refused inline images and its files into its
// thread; a file over the limit, or one the homeserver or the virus scanner refuses,
// becomes a notice. Files queued by an earlier run are not uploaded again.
func (m *mailbox) attachments(ctx context.Context, run *postRun, ghostID id.UserID, from, rootKey string, images []refusedImage, files []filePart) error {
	ghost, err := m.b.host.Ghost(ghostID.Localpart())
	if err != nil {
		return err
	}
	if len(files) == 0 && len(images) == 0 {
		return nil
	}
	root, err := m.b.eventOf(ctx, rootKey)
	if err != nil {
		return err
	}
	if err := m.postInlineRefusals(ctx, run, root, from, images); err != nil {
		return err
	}
	for i, p := range files {
		if i < run.files {
			continue
		}
		partKey := run.key + "|part" + strconv.Itoa(i)
		if _, _, err := m.b.host.Store().MessageByRemote(ctx, partKey); err == nil {
			continue
		}
		name := p.FileName
		if name == "" {
			name = "attachment-" + strconv.Itoa(i+1)
		}
		rel := &event.RelatesTo{Type: event.RelThread, EventID: root, IsFallingBack: true, InReplyTo: &event.InReplyTo{EventID: root}}
		var content *event.MessageEventContent
		uri := p.uri
		if uri.IsEmpty() && p.Data != nil && int64(len(p.Data)) <= m.b.cfg.MaxAttachmentBytes {
			uri, err = m.upload(ctx, ghost, p.Data, p.ContentType, name)
			if reason, infected := appservice.ScanRefusal(err); infected {
				content = &event.MessageEventContent{MsgType: event.MsgNotice, RelatesTo: rel,
					Body: fmt.Sprintf("🛡️ The attachment %q from %s was not bridged: %s.", name, from, reason)}
			} else if refused(err) {
				content = &event.MessageEventContent{MsgType: event.MsgNotice, RelatesTo: rel,
					Body: fmt.Sprintf("The attachment %q could not be bridged: the homeserver refused the upload (%s).", name, refusal(err))}
			} else if err != nil {
				return err
			}
		}
		switch {
		case content != nil:
		case uri.IsEmpty():
			content = &event.MessageEventContent{MsgType: event.MsgNotice, RelatesTo: rel,
				Body: fmt.Sprintf("The attachment %q is larger than the bridge's limit of %d bytes and was not bridged.", name, m.b.cfg.MaxAttachmentBytes)}
		default:
			msgType := event.MsgFile
			if strings.HasPrefix(p.ContentType, "image/") {
				msgType = event.MsgImage
			}
			content = &event.MessageEventContent{MsgType: msgType, Body: name, FileName: name, URL: uri.CUString(), RelatesTo: rel,
				Info: &event.FileInfo{MimeType: p.ContentType, Size: int(p.Size)}}
			if p.Size == 0 {
				content.Info.Size = len(p.Data)
			}
		}
		sender := ghostID
		if content.MsgType == event.MsgNotice {
			sender = m.b.host.BotUserID()
		}
		if err := run.enqueue(ctx, appservice.Message{RoomID: m.room, Sender: sender, RemoteID: partKey, Content: content}); err != nil {
			return err
		}
		if err := run.fileQueued(ctx, i+1); err != nil {
			return err
		}
	}
	return nil
}

// upload checks a file for malware (Host.ScanFile) and stores it on the homeserver as
// ghost. A file the scanner refuses is not uploaded (appservice.ScanRefusal tells); one it
// holds (the mailbox's context ended while clamd was away) is an error like any other: the
// mail is read again later.
func (m *mailbox) upload(ctx context.Context, ghost *appservice.Intent, data []byte, contentType, name string) (id.ContentURI, error) {
	if err := m.b.host.ScanFile(ctx, appservice.Inbound, name, data); err != nil {
		return id.ContentURI{}, err
	}
	return ghost.UploadMedia(ctx, data, contentType, name)
}

// refused reports whether the homeserver answered an upload with a refusal that a retry
// cannot change (too large, not allowed): the bridge then shows a notice instead of
// retrying forever.
func refused(err error) bool {
	var he mautrix.HTTPError
	if !errors.As(err, &he) || he.Response == nil {
		return false
	}
	code := he.Response.StatusCode
	return code >= 400 && code < 500 && code != http.StatusTooManyRequests && code != http.StatusRequestTimeout
}

// refusal is the homeserver's error code of a refused request, for a notice.
func refusal(err error) string {
	var he mautrix.HTTPError
	if errors.As(err, &he) && he.RespError != nil && he.RespError.ErrCode != "" {
		return he.RespError.ErrCode
	}
	if errors.As(err, &he) && he.Response != nil {
		return "HTTP " + strconv.Itoa(he.Response.StatusCode)
	}
	return "refused"
}

// notice posts a bot notice of a mail's run under key, with an optional code block; one
// too long for an event is shortened, and its whole text follows as a file.
func (m *mailbox) notice(ctx context.Context, run *postRun, key string, thread id.EventID, text, code string) error {
	content := &event.MessageEventContent{MsgType: event.MsgNotice, Body: text}
	if code != "" {
		content.Body += "\n\n" + code
		content.Format = event.FormatHTML
		content.FormattedBody = html.EscapeString(text) + "<pre><code>" + html.EscapeString(code) + "</code></pre>"
	}
	if thread != "" {
		content.RelatesTo = &event.RelatesTo{Type: event.RelThread, EventID: thread, IsFallingBack: true, InReplyTo: &event.InReplyTo{EventID: thread}}
	}
	full := content.Body
	_, cut := fitContent(content, maxContentBytes, trimNoteNotice, false)
	if err := run.enqueue(ctx, appservice.Message{RoomID: m.room, Sender: m.b.host.BotUserID(), RemoteID: key, Content: content}); err != nil {
		return err
	}
	if !cut {
		return nil
	}
	fileKey := key + "|notice-file"
	if _, _, err := m.b.host.Store().MessageByRemote(ctx, fileKey); err == nil {
		return nil
	}
	bot := m.b.host.Bot()
	uri, err := bot.UploadMedia(ctx, []byte(full), "text/plain", "notice.txt")
	if err != nil {
		return err
	}
	file := &event.MessageEventContent{MsgType: event.MsgFile, Body: "notice.txt", FileName: "notice.txt", URL: uri.CUString(),
		Info: &event.FileInfo{MimeType: "text/plain", Size: len(full)}, RelatesTo: content.RelatesTo}
	return run.enqueue(ctx, appservice.Message{RoomID: m.room, Sender: m.b.host.BotUserID(), RemoteID: fileKey, Content: file})
}

// bounceOfOurs reports whether a delivery-status report is about a mail the room sent
// (by the Message-ID of the returned message or the Original-Envelope-Id, which the bridge
// gives as ENVID), and the thread of that mail.
func (m *mailbox) bounceOfOurs(ctx context.Context, bounce *mailparse.Bounce) (id.EventID, bool) {
	for _, ref := range []string{bounce.OriginalMessageID, bounce.OriginalEnvelopeID} {
		if ref == "" {
			continue
		}
		orig := mailKey(m.cfg.Name, ref)
		var meta mailMeta
		if err := m.b.getJSON(ctx, "mail:"+orig, &meta); err != nil || !sameAddress(meta.From, m.cfg.Address) {
			var rec sentRecord
			if err := m.b.getJSON(ctx, "sent:"+orig, &rec); err != nil {
				continue
			}
		}
		var thread id.EventID
		if rk, err := m.b.host.Store().GetKV(ctx, "rootkey:"+orig); err == nil && rk != "" {
			if evt, err := m.b.eventOf(ctx, rk); err == nil {
				thread = evt
			}
		}
		return thread, true
	}
	return "", false
}

// bounce shows a delivery-status report about a mail the room sent in that mail's thread,
// naming who sent the report.
func (m *mailbox) bounce(ctx context.Context, run *postRun, thread id.EventID, mail *mailparse.Mail) error {
	var lines []string
	for _, r := range mail.Bounce.Recipients {
		line := r.Address + ": " + r.Action
		if r.Status != "" {
			line += " (" + r.Status + ")"
		}
		if r.Diagnostic != "" {
			line += " " + r.Diagnostic
		}
		lines = append(lines, line)
	}
	text := "⚠️ A mail could not be delivered (report from " + mail.From.String() + ")"
	if len(lines) > 0 {
		text += ":\n" + strings.Join(lines, "\n")
	}
	return m.notice(ctx, run, run.key, thread, text, "")
}
