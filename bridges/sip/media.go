package sip

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"mime"
	"net"
	"net/http"
	"net/url"
	"path"
	"strings"
	"time"

	"github.com/rs/zerolog"
	"github.com/switchboard-matrix/switchboard/appservice"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"
)

// Files from Matrix reach SIP users as links: SIP pager mode carries no files, and a SIP
// user cannot open Matrix's authenticated media. When media.listen and media.public_url
// are set, the bridge serves each file sent in a DM under an unguessable link that expires
// after media.link_ttl ("media:<id>" in the store holds the file's event content, so an
// encrypted attachment is decrypted as it is served). Without them the SIP user gets a
// line naming the file.

// mediaLink is a stored link.
type mediaLink struct {
	Content json.RawMessage `json:"content"` // the file's m.room.message content
	Expires time.Time       `json:"expires"`
}

// linkFor records a link to the file of a Matrix message and returns its URL; "" when the
// bridge serves no links.
//
// The link's id is an HMAC of the event ID under a secret kept in the store, so a
// redelivered event gets the same link and nobody who knows the event ID can guess it.
func (b *Bridge) linkFor(ctx context.Context, evt id.EventID, c *event.MessageEventContent) (string, error) {
	m := b.cfg.Media
	if m.Listen == "" || m.PublicURL == "" {
		return "", nil
	}
	// The file is fetched once now, so that the virus scanner (when on) checks it before
	// its link goes out: an infected file fails the message, with a notice to its sender.
	// The link server fetches it again when the link is opened; the scanner then knows it.
	if _, err := b.host.Bot().DownloadFile(ctx, c, m.MaxBytes); err != nil {
		if _, refused := appservice.ScanRefusal(err); refused || errors.Is(err, appservice.ErrScannerUnavailable) {
			return "", err
		}
		zerolog.Ctx(ctx).Debug().Err(err).Msg("A linked file cannot be fetched now; the link server tries again when it is opened")
	}
	raw, err := json.Marshal(c)
	if err != nil {
		return "", err
	}
	secret, err := b.mediaSecret(ctx)
	if err != nil {
		return "", err
	}
	mac := hmac.New(sha256.New, secret)
	mac.Write([]byte(evt))
	linkID := hex.EncodeToString(mac.Sum(nil)[:16])
	rec, _ := json.Marshal(mediaLink{Content: raw, Expires: time.Now().Add(m.LinkTTL.Std())})
	if err := b.host.Store().PutKV(ctx, "media:"+linkID, string(rec)); err != nil {
		return "", err
	}
	name := c.FileName
	if name == "" {
		name = c.Body
	}
	name = path.Base(strings.ReplaceAll(name, "\\", "/"))
	if name == "." || name == "/" || name == "" {
		name = "file"
	}
	return strings.TrimSuffix(m.PublicURL, "/") + "/" + linkID + "/" + url.PathEscape(name), nil
}

// mediaSecret is the key of the links' ids, made once.
func (b *Bridge) mediaSecret(ctx context.Context) ([]byte, error) {
	b.mu.Lock() // one process makes it; the bridge runs in one process per database
	defer b.mu.Unlock()
	if v, err := b.host.Store().GetKV(ctx, "media-secret"); err == nil {
		return hex.DecodeString(v)
	}
	var k [32]byte
	_, _ = rand.Read(k[:])
	if err := b.host.Store().PutKV(ctx, "media-secret", hex.EncodeToString(k[:])); err != nil {
		return nil, err
	}
	return k[:], nil
}

// serveMedia runs the link server until ctx ends.
func (b *Bridge) serveMedia(ctx context.Context, ln net.Listener) {
	srv := &http.Server{
		Handler: http.HandlerFunc(b.mediaHandler), ReadHeaderTimeout: 10 * time.Second, WriteTimeout: 5 * time.Minute,
		BaseContext: func(net.Listener) context.Context { return ctx },
	}
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	}()
	if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		zerolog.Ctx(ctx).Error().Err(err).Msg("The SIP bridge's media link server stopped")
	}
}

// linkScanWait bounds how long a link request waits for the file and its scan.
const linkScanWait = time.Minute

// mediaHandler serves one link, GET <any prefix>/<id>/<name> (with or without the public
// URL's path, whichever a reverse proxy passes on): 404 for an unknown or expired one (the
// same answer, so a prober learns nothing), the file otherwise.
func (b *Bridge) mediaHandler(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	parts := strings.Split(strings.TrimSuffix(r.URL.Path, "/"), "/")
	if len(parts) < 3 {
		http.NotFound(w, r)
		return
	}
	linkID, name := parts[len(parts)-2], parts[len(parts)-1]
	if len(linkID) != 32 || strings.Trim(linkID, "0123456789abcdef") != "" {
		http.NotFound(w, r)
		return
	}
	raw, err := b.host.Store().GetKV(ctx, "media:"+linkID)
	if err != nil {
		http.NotFound(w, r)
		return
	}
	var link mediaLink
	var c event.MessageEventContent
	if json.Unmarshal([]byte(raw), &link) != nil || json.Unmarshal(link.Content, &c) != nil || time.Now().After(link.Expires) {
		if time.Now().After(link.Expires) {
			_ = b.host.Store().DeleteKV(ctx, "media:"+linkID)
		}
		http.NotFound(w, r)
		return
	}
	// A file that waits for the virus scanner is not held for the whole request: the
	// phone is asked to come back.
	dctx, cancel := context.WithTimeout(ctx, linkScanWait)
	defer cancel()
	data, err := b.host.Bot().DownloadFile(dctx, &c, b.cfg.Media.MaxBytes)
	if _, refused := appservice.ScanRefusal(err); refused {
		http.Error(w, "the file was refused by the virus scanner", http.StatusForbidden)
		return
	}
	if errors.Is(err, appservice.ErrScannerUnavailable) {
		w.Header().Set("Retry-After", "60")
		http.Error(w, "the file cannot be checked for malware now; try again later", http.StatusServiceUnavailable)
		return
	}
	if err != nil {
		zerolog.Ctx(ctx).Warn().Err(err).Msg("Could not fetch a linked file from Matrix")
		http.Error(w, "the file cannot be fetched from Matrix now", http.StatusBadGateway)
		return
	}
	ct := "application/octet-stream"
	if c.Info != nil && c.Info.MimeType != "" {
		if mt, _, err := mime.ParseMediaType(c.Info.MimeType); err == nil {
			ct = mt
		}
	}
	w.Header().Set("Content-Type", ct)
	w.Header().Set("Content-Disposition", mime.FormatMediaType("attachment", map[string]string{"filename": name}))
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.Header().Set("Cache-Control", "private, no-store")
	_, _ = w.Write(data)
}

// startMedia binds the link server's listener (in Start, so a bad address fails the
// start) and serves it in the background.
func (b *Bridge) startMedia() error {
	if b.cfg.Media.Listen == "" {
		return nil
	}
	ln, err := net.Listen("tcp", b.cfg.Media.Listen)
	if err != nil {
		return fmt.Errorf("sip: media link server: %w", err)
	}
	b.mediaAddr = ln.Addr().String()
	b.loops.Go(func(ctx context.Context) { b.serveMedia(ctx, ln) })
	return nil
}
