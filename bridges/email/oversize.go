package email

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"strconv"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
	"maunium.net/go/mautrix/event"

	"github.com/switchboard-matrix/switchboard/appservice"
	"github.com/switchboard-matrix/switchboard/bridges/email/mailparse"
)

// maxOversizeHeader bounds the header read of a mail that is too large to be bridged.
const maxOversizeHeader = mailparse.MaxRawHeader

// postOversize shows a mail larger than max_mail_bytes without parsing it: a notice by
// the bot that names its sender and subject and shows its header, and the raw mail as a
// file when it is within max_attachment_bytes. Like post, it completes a mail shown in
// part before a crash.
func (m *mailbox) postOversize(ctx context.Context, c *imapclient.Client, validity uint32, info *imapclient.FetchMessageBuffer) error {
	header, err := fetchSection(c, info.UID, &imap.FetchItemBodySection{Specifier: imap.PartSpecifierHeader, Peek: true}, maxOversizeHeader)
	if err != nil {
		return err
	}
	head, _ := mailparse.Parse(header, mailparse.Options{}) // what it can read of the header
	if head == nil {
		head = &mailparse.Mail{}
	}
	msgID := head.MessageID
	if msgID == "" {
		sum := sha256.Sum256(append(header, strconv.FormatInt(info.RFC822Size, 10)...))
		msgID = "no-message-id-" + hex.EncodeToString(sum[:12]) + "@" + m.cfg.Name
	}
	run, err := m.beginPost(ctx, mailKey(m.cfg.Name, msgID))
	if err != nil || run == nil {
		return err
	}
	if err := m.oversizeEvents(ctx, run, c, info, head); err != nil {
		return err
	}
	return run.finish(ctx)
}

// oversizeEvents queues the notice and the file of an oversize mail (see postOversize).
func (m *mailbox) oversizeEvents(ctx context.Context, run *postRun, c *imapclient.Client, info *imapclient.FetchMessageBuffer, head *mailparse.Mail) error {
	from := head.From.String()
	if from == "" {
		from = "an unknown sender"
	}
	text := fmt.Sprintf("⚠️ A mail of %d bytes from %s (subject %q) is larger than the bridge's limit of %d bytes and was not bridged.",
		info.RFC822Size, from, head.Subject, m.b.cfg.MaxMailBytes)
	attach := info.RFC822Size <= m.b.cfg.MaxAttachmentBytes
	if attach {
		text += " The whole mail follows as a file (mail.eml). Its header:"
	} else {
		text += " It is too large to be attached as a file as well; read it in a mail client. Its header:"
	}
	_, thread, _ := m.threadOf(ctx, head)
	if err := m.notice(ctx, run, run.key, thread, text, head.RawHeader); err != nil {
		return err
	}
	if !attach {
		return nil
	}
	fileKey := run.key + "|raw"
	if _, _, err := m.b.host.Store().MessageByRemote(ctx, fileKey); err == nil || run.files > 0 {
		return nil
	}
	raw, err := fetchSection(c, info.UID, &imap.FetchItemBodySection{Peek: true}, m.b.cfg.MaxAttachmentBytes)
	if err != nil {
		return err
	}
	uri, err := m.upload(ctx, m.b.host.Bot(), raw, "message/rfc822", "mail.eml")
	var content *event.MessageEventContent
	reason, notClean := appservice.ScanRefusal(err)
	switch {
	case notClean:
		content = &event.MessageEventContent{MsgType: event.MsgNotice, Body: "🛡️ The mail was not attached as a file: " + reason + "."}
	case refused(err):
		content = &event.MessageEventContent{MsgType: event.MsgNotice, Body: "The mail could not be attached: the homeserver refused the upload (" + refusal(err) + ")."}
	case err != nil:
		return err
	default:
		content = &event.MessageEventContent{MsgType: event.MsgFile, Body: "mail.eml", FileName: "mail.eml", URL: uri.CUString(),
			Info: &event.FileInfo{MimeType: "message/rfc822", Size: len(raw)}}
	}
	if thread != "" {
		content.RelatesTo = &event.RelatesTo{Type: event.RelThread, EventID: thread, IsFallingBack: true, InReplyTo: &event.InReplyTo{EventID: thread}}
	}
	if err := run.enqueue(ctx, appservice.Message{RoomID: m.room, Sender: m.b.host.BotUserID(), RemoteID: fileKey, Content: content}); err != nil {
		return err
	}
	return run.fileQueued(ctx, 1)
}

// fetchSection reads one body section of a mail, at most limit bytes of it (the rest is
// read and dropped), streaming.
func fetchSection(c *imapclient.Client, uid imap.UID, section *imap.FetchItemBodySection, limit int64) ([]byte, error) {
	cmd := c.Fetch(imap.UIDSetNum(uid), &imap.FetchOptions{UID: true, BodySection: []*imap.FetchItemBodySection{section}})
	defer cmd.Close()
	var out []byte
	for msg := cmd.Next(); msg != nil; msg = cmd.Next() {
		for item := msg.Next(); item != nil; item = msg.Next() {
			body, ok := item.(imapclient.FetchItemDataBodySection)
			if !ok || body.Literal == nil {
				continue
			}
			data, err := io.ReadAll(io.LimitReader(body.Literal, limit))
			if err != nil {
				return nil, fmt.Errorf("email: fetch: %w", err)
			}
			if _, err := io.Copy(io.Discard, body.Literal); err != nil {
				return nil, fmt.Errorf("email: fetch: %w", err)
			}
			out = data
		}
	}
	if err := cmd.Close(); err != nil {
		return nil, fmt.Errorf("email: fetch: %w", err)
	}
	return out, nil
}
