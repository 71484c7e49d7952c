package mailparse

import (
	"strings"
	"unicode"
	"unicode/utf8"
)

// Bounds that keep hostile MIME trees cheap: deeper or further entities are skipped.
const (
	maxDepth    = 16
	maxEntities = 500
)

// piece is the body content of one entity: its plain text, its HTML, or both (from a
// multipart/alternative). html is "" when the entity has none.
type piece struct {
	text, html string
	hasText    bool
}

// walker collects the body pieces and parts of a message.
type walker struct {
	opts        Options
	entities    int
	attachments []Part
	inline      []Part
	bounce      *Bounce
	htmlUsed    int      // bytes of HTML kept for rendering, at most opts.maxHTMLBytes()
	htmlFull    []string // every HTML body as received, for Mail.FullHTML
	htmlCut     bool     // some HTML was cut to the budget
}

// entity is one MIME entity: its header and its still encoded body.
type entity struct {
	header    header
	body      []byte
	mediaType string            // lower case; "" when the header has none
	params    map[string]string // of Content-Type
}

func newEntity(h header, body []byte) entity {
	mt, params := parseParams(h.get("Content-Type"))
	if !strings.Contains(mt, "/") {
		mt = "" // missing or unusable: the default applies
	}
	return entity{header: h, body: body, mediaType: mt, params: params}
}

// parseEntity reads a body part; header problems inside a part are not fatal.
func parseEntity(raw []byte, defaultType string) entity {
	head, body := splitHeader(raw)
	h, _ := parseHeader(head)
	if len(h) == 0 && len(head) > 0 {
		body = raw // no header, not even the blank line: all of it is content
	}
	e := newEntity(h, body)
	if e.mediaType == "" {
		e.mediaType = defaultType
	}
	return e
}

// readBody fills the body fields of m from the top-level entity.
func readBody(m *Mail, h header, body []byte, opts Options) {
	w := &walker{opts: opts}
	e := newEntity(h, body)
	if e.mediaType == "" {
		e.mediaType = "text/plain"
	}
	pieces := w.walk(e, 0, false)
	w.finish(m, pieces)
}

// walk reads e and its children. In a multipart/related, parts other than the root are
// related: those with a Content-ID are inline parts whatever their type.
func (w *walker) walk(e entity, depth int, related bool) []piece {
	w.entities++
	if w.entities > maxEntities || depth > maxDepth {
		return nil
	}
	mt := e.mediaType
	if sub, ok := strings.CutPrefix(mt, "multipart/"); ok {
		defaultType := "text/plain"
		if sub == "digest" {
			defaultType = "message/rfc822"
		}
		raws, ok := splitMultipart(e.body, e.params["boundary"], maxEntities)
		if !ok {
			return w.leaf(entity{header: e.header, body: e.body, mediaType: "text/plain"}, related)
		}
		children := make([]entity, len(raws))
		for i, raw := range raws {
			children[i] = parseEntity(raw, defaultType)
		}
		return w.multipart(sub, e, children, depth)
	}
	return w.leaf(e, related)
}

// multipart reads the children of a multipart entity of subtype sub.
func (w *walker) multipart(sub string, e entity, children []entity, depth int) []piece {
	var pieces []piece
	switch sub {
	case "alternative":
		// The last alternative is the richest: take the last text and the last HTML.
		var best piece
		for _, c := range children {
			text, html, hasText := join(w.walk(c, depth+1, false))
			if hasText {
				best.text, best.hasText = text, true
			}
			if html != "" {
				best.html = html
			}
		}
		if best.hasText || best.html != "" {
			pieces = append(pieces, best)
		}
	case "related":
		root := 0
		if start := strings.Trim(e.params["start"], "<> "); start != "" {
			for i, c := range children {
				if contentID(c.header) == start {
					root = i
				}
			}
		}
		for i, c := range children {
			pieces = append(pieces, w.walk(c, depth+1, i != root)...)
		}
	case "report":
		isDSN := strings.Contains(strings.ToLower(e.params["report-type"]), "delivery-status")
		for i, c := range children {
			if i == 0 || !isDSN {
				pieces = append(pieces, w.walk(c, depth+1, false)...)
				continue
			}
			w.reportPart(c)
		}
		if isDSN && w.bounce == nil {
			w.bounce = &Bounce{}
		}
	case "signed":
		protocol := strings.ToLower(e.params["protocol"])
		for _, c := range children {
			if c.mediaType == protocol && protocol != "" {
				continue // the signature itself means nothing to a Matrix reader
			}
			pieces = append(pieces, w.walk(c, depth+1, false)...)
		}
	default: // mixed, digest, parallel and unknown subtypes
		for _, c := range children {
			pieces = append(pieces, w.walk(c, depth+1, false)...)
		}
	}
	return pieces
}

// reportPart reads a part of a delivery-status report after the human-readable one.
func (w *walker) reportPart(c entity) {
	if w.bounce == nil {
		w.bounce = &Bounce{}
	}
	data := decodeTransfer(c.header.get("Content-Transfer-Encoding"), c.body)
	switch c.mediaType {
	case "message/delivery-status", "message/global-delivery-status":
		envID, rcpts := parseDeliveryStatus(data)
		w.bounce.Recipients = append(w.bounce.Recipients, rcpts...)
		if w.bounce.OriginalEnvelopeID == "" {
			w.bounce.OriginalEnvelopeID = envID
		}
		return
	case "message/rfc822", "message/global", "text/rfc822-headers", "message/global-headers":
		if w.bounce.OriginalMessageID == "" {
			head, _ := splitHeader(data)
			h, _ := parseHeader(head)
			w.bounce.OriginalMessageID = firstID(h.get("Message-Id"))
		}
	}
	w.leaf(c, false)
}

// leaf reads an entity that is not multipart: body text, or a part.
func (w *walker) leaf(e entity, related bool) []piece {
	disposition, dparams := parseParams(e.header.get("Content-Disposition"))
	name := fileName(dparams["filename"], e.params["name"])
	cid := contentID(e.header)
	enc := e.header.get("Content-Transfer-Encoding")
	isBody := (e.mediaType == "text/plain" || e.mediaType == "text/html") &&
		disposition != "attachment" && name == "" && !(related && cid != "")
	if isBody {
		data := decodeTransfer(enc, e.body)
		if limit := w.opts.maxPartBytes(); int64(len(data)) > limit {
			data = data[:limit]
		}
		text := normalizeNewlines(decodeCharset(data, e.params["charset"]))
		if e.mediaType == "text/html" {
			return w.htmlPiece(text)
		}
		if strings.EqualFold(e.params["format"], "flowed") {
			text = unflow(text, strings.EqualFold(e.params["delsp"], "yes"))
		}
		return []piece{{text: text, hasText: true}}
	}
	p := Part{ContentID: cid, FileName: name, ContentType: e.mediaType}
	p.Size = decodedSize(enc, e.body)
	if p.Size > w.opts.maxPartBytes() {
		p.Truncated = true
	} else {
		p.Data = decodeTransfer(enc, e.body)
		p.Size = int64(len(p.Data))
	}
	if p.FileName == "" {
		p.FileName = defaultFileName(e)
	}
	if cid != "" && disposition != "attachment" {
		w.inline = append(w.inline, p) // moved to attachments if the HTML does not show it
	} else {
		w.attachments = append(w.attachments, p)
	}
	return nil
}

// htmlPiece keeps an HTML body within what is left of the rendering budget.
func (w *walker) htmlPiece(text string) []piece {
	w.htmlFull = append(w.htmlFull, text)
	if room := w.opts.maxHTMLBytes() - w.htmlUsed; len(text) > room {
		w.htmlCut = true
		text = cutUTF8(text, max(room, 0))
	}
	w.htmlUsed += len(text)
	if text == "" {
		return nil
	}
	return []piece{{html: text}}
}

// cutUTF8 is the longest prefix of s of at most n bytes that does not split a rune.
func cutUTF8(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

// contentID is the Content-ID of an entity without its angle brackets.
func contentID(h header) string {
	id := strings.TrimSpace(h.get("Content-Id"))
	id = strings.TrimSuffix(strings.TrimPrefix(id, "<"), ">")
	return cleanText(strings.TrimSpace(id))
}

// fileName is the decoded file name of a part without directories, control and format
// characters (bidi overrides and isolates, zero-width characters), from the disposition's filename or else the type's name parameter.
func fileName(filename, name string) string {
	s := filename
	if s == "" {
		s = name
	}
	s = decodeHeaderText(s) // RFC 2047 in parameters: wrong, but what many mailers send
	if i := strings.LastIndexAny(s, `/\`); i >= 0 {
		s = s[i+1:]
	}
	s = strings.Map(func(r rune) rune {
		// Control and format characters: a right-to-left override (U+202E) would show
		// "Rechnung‮fdp.exe" as "Rechnungexe.pdf".
		if r == utf8.RuneError || unicode.IsControl(r) || unicode.Is(unicode.Cf, r) {
			return -1
		}
		return r
	}, s)
	s = strings.TrimSpace(s)
	if s == "." || s == ".." {
		return ""
	}
	for len(s) > 255 {
		_, size := lastRune(s)
		s = s[:len(s)-size]
	}
	return s
}

func lastRune(s string) (rune, int) {
	for i := len(s) - 1; i >= 0; i-- {
		if s[i] < 0x80 || s[i] >= 0xC0 {
			return rune(s[i]), len(s) - i
		}
	}
	return 0, len(s)
}

// extensions name parts that come without a file name.
var extensions = map[string]string{
	"text/plain": ".txt", "text/html": ".html", "text/calendar": ".ics", "text/csv": ".csv",
	"text/vcard": ".vcf", "text/x-vcard": ".vcf", "text/rfc822-headers": ".txt",
	"message/rfc822": ".eml", "message/global": ".eml", "message/delivery-status": ".txt",
	"image/png": ".png", "image/jpeg": ".jpg", "image/gif": ".gif", "image/webp": ".webp",
	"application/pdf": ".pdf", "application/zip": ".zip", "audio/mpeg": ".mp3",
	"video/mp4": ".mp4", "application/pgp-keys": ".asc", "application/ics": ".ics",
}

// defaultFileName names a part that has no file name: an attached message after its
// subject, anything else "attachment" with an extension for its type.
func defaultFileName(e entity) string {
	ext, ok := extensions[e.mediaType]
	if !ok {
		ext = ".bin"
	}
	if e.mediaType == "message/rfc822" || e.mediaType == "message/global" {
		head, _ := splitHeader(decodeTransfer(e.header.get("Content-Transfer-Encoding"), e.body))
		h, _ := parseHeader(head)
		if subject := fileName(h.get("Subject"), ""); subject != "" {
			return subject + ext
		}
	}
	return "attachment" + ext
}
