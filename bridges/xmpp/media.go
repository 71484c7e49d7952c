package xmpp

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"mime"
	"strconv"
	"strings"

	"github.com/rs/zerolog"
	"maunium.net/go/mautrix/crypto/attachment"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"
	"mellium.im/xmpp/jid"

	"github.com/switchboard-matrix/switchboard/appservice"
	"github.com/switchboard-matrix/switchboard/bridges/xmpp/fetch"
	"github.com/switchboard-matrix/switchboard/bridges/xmpp/upload"
	"github.com/switchboard-matrix/switchboard/bridges/xmpp/xmsg"
)

// attachmentToXMPP puts a Matrix file on the XMPP server's HTTP upload service (XEP-0363)
// and sends its link as body and XEP-0066 OOB. The homeserver's media URL is never sent:
// it needs a Matrix access token and would leak the file's ID. The upload is remembered
// per event, so a redelivery sends the same link.
func (b *Bridge) attachmentToXMPP(ctx context.Context, m *xmsg.Message, evt *event.Event, c *event.MessageEventContent) error {
	name := c.FileName
	if name == "" {
		name = c.Body
	}
	kvKey := "upload:" + evt.ID.String()
	getURL, err := b.host.Store().GetKV(ctx, kvKey)
	if err != nil && !errors.Is(err, appservice.ErrNotFound) {
		return err
	}
	if getURL == "" {
		if b.cfg.Component.UploadService == "" {
			return appservice.RoomError{Msg: "files cannot be sent to XMPP: the bridge has no upload service configured", Permanent: true}
		}
		if c.File == nil {
			if _, err := c.URL.Parse(); err != nil {
				return appservice.RoomError{Msg: "the file has no valid media URL", Permanent: true}
			}
		} else if _, err := c.File.URL.Parse(); err != nil {
			return appservice.RoomError{Msg: "the encrypted file has no valid media URL", Permanent: true}
		}
		// In an encrypted room the file is an encrypted attachment (c.File): DownloadFile
		// decrypts it and checks its hash, so XMPP gets the plaintext, never the ciphertext.
		data, err := b.host.Bot().DownloadFile(ctx, c, b.cfg.Media.MaxBytes)
		if err != nil {
			if _, refused := appservice.ScanRefusal(err); refused {
				return err // infected, or not scannable: the sender is told why
			}
			switch {
			case strings.Contains(err.Error(), "larger than"):
				return appservice.RoomError{Msg: fmt.Sprintf("the file is larger than the bridge's limit of %d bytes", b.cfg.Media.MaxBytes), Permanent: true}
			case c.File != nil && (strings.Contains(err.Error(), "failed to decrypt") || strings.Contains(err.Error(), "keys are invalid")):
				return appservice.RoomError{Msg: "the encrypted file could not be decrypted", Permanent: true}
			}
			return err
		}
		mimeType := "application/octet-stream"
		if c.Info != nil && c.Info.MimeType != "" {
			mimeType = c.Info.MimeType
		}
		service, err := jid.Parse(b.cfg.Component.UploadService)
		if err != nil {
			return fmt.Errorf("%w: upload_service: %v", appservice.ErrPermanent, err)
		}
		res, err := b.query(ctx, "get", service, upload.Request(name, int64(len(data)), mimeType))
		if err != nil {
			return fmt.Errorf("xmpp: upload slot: %w", err)
		}
		slot, err := upload.ParseSlot(res.Inner)
		if err != nil {
			return fmt.Errorf("xmpp: upload slot: %w", err)
		}
		if err := upload.Put(ctx, b.http, slot, data, mimeType); err != nil {
			return fmt.Errorf("xmpp: upload: %w", err)
		}
		getURL = slot.GetURL
		if err := b.host.Store().PutKV(ctx, kvKey, getURL); err != nil {
			return err
		}
	}
	m.Body = getURL
	m.OOB = []xmsg.OOB{{URL: getURL}}
	if c.FileName != "" && c.Body != "" && c.Body != c.FileName {
		m.OOB[0].Desc = c.Body // a caption
	}
	return nil
}

// attachmentsToMatrix downloads the message's OOB links (XEP-0066; http and https only,
// size-capped, no private addresses unless configured) and uploads them to Matrix as
// files of the sender's ghost. At most media.max_links links are downloaded, all within
// media.message_timeout; a link beyond those, or that cannot be fetched, is sent as text
// with the reason, so nothing is lost. When the message had no text, the first file takes
// the message's key. It runs in the conversation's worker (see toMatrixInOrder).
func (b *Bridge) attachmentsToMatrix(ctx context.Context, in *inbound, firstIsMain bool) error {
	budget, cancel := context.WithTimeout(ctx, b.cfg.Media.MessageTimeout.Std())
	defer cancel()
	for i, oob := range in.msg.OOB {
		key := in.key + "|oob" + strconv.Itoa(i)
		if i == 0 && firstIsMain {
			key = in.key
		}
		if _, _, err := b.host.Store().MessageByRemote(ctx, key); err == nil {
			continue // bridged before a crash or a resend
		}
		var content *event.MessageEventContent
		var err error
		switch {
		case in.noFetch:
			err = errBacklog
		case i >= b.cfg.Media.MaxLinks:
			err = errTooManyLinks
		case budget.Err() != nil:
			err = errLinksTimeout
		default:
			content, err = b.fetchToMatrix(ctx, budget, in, oob.URL)
			if err != nil && ctx.Err() == nil && budget.Err() != nil {
				err = fmt.Errorf("%w: %w", errLinksTimeout, err)
			}
		}
		if ctx.Err() != nil {
			return ctx.Err() // stopping: the message is bridged after the next start
		}
		if reason, refused := appservice.ScanRefusal(err); refused {
			if err := b.refuseFile(ctx, in, key, fileName(content, oob.URL), reason); err != nil {
				return err
			}
			continue
		}
		if err != nil {
			if !errors.Is(err, errTooManyLinks) && !errors.Is(err, errBacklog) {
				zerolog.Ctx(ctx).Warn().Err(err).Msg("Could not bridge an XMPP file; sending its link")
			}
			content = &event.MessageEventContent{MsgType: event.MsgText,
				Body: oob.URL + "\n(the file could not be bridged: " + publicReason(err) + ")"}
		}
		if err := b.enqueue(ctx, in, key, content); err != nil {
			return err
		}
	}
	return nil
}

// Reasons for a link that is not downloaded.
var (
	errTooManyLinks = errors.New("xmpp: more links in the message than media.max_links")
	errLinksTimeout = errors.New("xmpp: the message's downloads took longer than media.message_timeout")
	errBacklog      = errors.New("xmpp: too many messages with links wait in the conversation")
)

// fetchToMatrix downloads url within budget and uploads it to Matrix within ctx.
func (b *Bridge) fetchToMatrix(ctx, budget context.Context, in *inbound, url string) (*event.MessageEventContent, error) {
	f, err := b.fetch.Get(budget, url)
	if err != nil {
		return nil, err
	}
	ghost, err := b.host.Ghost(in.ghost.Localpart())
	if err != nil {
		return nil, err
	}
	// Checked before anything reaches Matrix (and before it is encrypted for the room).
	if err := b.host.ScanFile(ctx, appservice.Inbound, f.FileName, f.Data); err != nil {
		return &event.MessageEventContent{FileName: f.FileName}, err
	}
	ctype := f.ContentType
	if mt, _, err := mime.ParseMediaType(ctype); err == nil {
		ctype = mt
	} else {
		ctype = "application/octet-stream"
	}
	// In an encrypted room the file goes to the media repository encrypted (an encrypted
	// attachment, content.file), as a Matrix client would send it: the homeserver never
	// holds the plaintext.
	data, upType, upName := f.Data, ctype, f.FileName
	var ef *attachment.EncryptedFile
	if b.roomEncrypted(ctx, ghost, in.room) {
		ef = attachment.NewEncryptedFile()
		ef.EncryptInPlace(data) // f.Data is not used again, only its length
		upType, upName = "application/octet-stream", ""
	}
	uri, err := ghost.UploadMedia(ctx, data, upType, upName)
	if err != nil {
		return nil, err
	}
	msgType := event.MsgFile
	switch {
	case strings.HasPrefix(ctype, "image/"):
		msgType = event.MsgImage
	case strings.HasPrefix(ctype, "video/"):
		msgType = event.MsgVideo
	case strings.HasPrefix(ctype, "audio/"):
		msgType = event.MsgAudio
	}
	content := &event.MessageEventContent{MsgType: msgType, Body: f.FileName, FileName: f.FileName,
		Info: &event.FileInfo{MimeType: ctype, Size: len(f.Data)}}
	if ef != nil {
		content.File = &event.EncryptedFileInfo{EncryptedFile: *ef, URL: uri.CUString()}
	} else {
		content.URL = uri.CUString()
	}
	return content, nil
}

// roomEncrypted reports whether files for room must be uploaded encrypted: the core
// encrypts (appservice.EncryptionActive) and the room has m.room.encryption, read as the
// ghost, who joins to send anyway. When the room's state cannot be read it answers true: an
// encrypted attachment is readable in any room, a plaintext one in an encrypted room is a
// leak.
func (b *Bridge) roomEncrypted(ctx context.Context, ghost *appservice.Intent, room id.RoomID) bool {
	if !appservice.EncryptionActive(b.host) {
		return false
	}
	var enc event.EncryptionEventContent
	err := ghost.StateEvent(ctx, room, event.StateEncryption, "", &enc)
	if errors.Is(err, appservice.ErrNotFound) {
		return false
	}
	if err != nil {
		zerolog.Ctx(ctx).Debug().Err(err).Stringer("room_id", room).Msg("Cannot tell whether the room is encrypted; uploading the file encrypted")
	}
	return true
}

// publicReason is the part of a fetch error that may be shown in the room (never the
// error itself, which may name internal hosts).
func publicReason(err error) string {
	var status *fetch.StatusError
	switch {
	case errors.Is(err, errTooManyLinks):
		return "the message has more links than the bridge downloads"
	case errors.Is(err, errLinksTimeout):
		return "the downloads took too long"
	case errors.Is(err, errBacklog):
		return "too many files from this conversation are waiting"
	case errors.Is(err, fetch.ErrTooLarge):
		return "it is larger than the bridge's limit"
	case errors.Is(err, fetch.ErrScheme), errors.Is(err, fetch.ErrForbiddenAddress):
		return "the link's address is not allowed"
	case errors.As(err, &status):
		return fmt.Sprintf("its server answered HTTP %d", status.StatusCode)
	}
	return "it could not be downloaded"
}

// refuseFile stands in for a file the virus scanner refused: the room gets the bot's
// notice naming the sender, the file and the reason (never the file or its link), and
// the sender of a direct message an XMPP error. The notice takes the file's key, so a
// message handled again after a crash posts it once.
func (b *Bridge) refuseFile(ctx context.Context, in *inbound, key, name, reason string) error {
	notice := &event.MessageEventContent{MsgType: event.MsgNotice,
		Body: fmt.Sprintf("🛡️ The file %q from %s was not bridged: %s.", name, in.sender.Bare().String(), reason)}
	if err := b.host.Enqueue(ctx, appservice.Message{RoomID: in.room, Sender: cmp.Or(b.FailureSender(ctx, in.room), b.host.BotUserID()), RemoteID: key, Content: notice}); err != nil {
		return err
	}
	if !in.groupchat { // a MUC takes an error from an occupant as a sign it is gone
		b.refuseQueued(ctx, in, fileRefused("The file "+name+" was not delivered to Matrix: "+reason+"."))
	}
	return nil
}

// fileRefused is the stanza error of a refused file.
type fileRefused string

func (e fileRefused) Error() string { return string(e) }

// StanzaError implements component.StanzaError.
func (e fileRefused) StanzaError() (typ, condition, text string) {
	return "modify", "not-acceptable", string(e)
}

// fileName is the name of a file for a notice: the one fetchToMatrix learnt, else the
// last part of its link.
func fileName(c *event.MessageEventContent, link string) string {
	if c != nil && c.FileName != "" {
		return c.FileName
	}
	if i := strings.LastIndexByte(link, '/'); i >= 0 && i < len(link)-1 {
		return link[i+1:]
	}
	return link
}
