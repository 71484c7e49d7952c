package mailparse

import (
	"bytes"
	"fmt"
	"mime"
	"net/mail"
	"net/textproto"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// field is one header field: its canonical key and its unfolded value, with the bytes
// as received (not necessarily UTF-8).
type field struct {
	key, value string
}

// header is a header block in the order received.
type header []field

// get is the value of the first field named key (canonical form), "" when absent.
func (h header) get(key string) string {
	for _, f := range h {
		if f.key == key {
			return f.value
		}
	}
	return ""
}

// has reports whether h has a field named key (canonical form).
func (h header) has(key string) bool {
	for _, f := range h {
		if f.key == key {
			return true
		}
	}
	return false
}

// skipMboxFrom drops the "From sender date" line that mbox files put before a message.
func skipMboxFrom(raw []byte) []byte {
	if !bytes.HasPrefix(raw, []byte("From ")) {
		return raw
	}
	if i := bytes.IndexByte(raw, '\n'); i >= 0 {
		return raw[i+1:]
	}
	return nil
}

// splitHeader splits an entity into its header block and its body at the first empty
// line. Without an empty line, all is header.
func splitHeader(raw []byte) (head, body []byte) {
	for pos := 0; pos < len(raw); {
		end := bytes.IndexByte(raw[pos:], '\n')
		if end < 0 {
			return raw, nil
		}
		line := raw[pos : pos+end]
		if len(line) == 0 || len(line) == 1 && line[0] == '\r' {
			return raw[:pos], raw[pos+end+1:]
		}
		pos += end + 1
	}
	return raw, nil
}

// parseHeader reads a header block, unfolding continuation lines. Lines it cannot read
// are skipped and reported in problems, by line number only (a header may be private).
func parseHeader(head []byte) (h header, problems []string) {
	for n, line := range bytes.Split(head, []byte("\n")) {
		line = bytes.TrimSuffix(line, []byte("\r"))
		if len(line) == 0 {
			continue // only at the very end, or a bare CR line
		}
		if line[0] == ' ' || line[0] == '\t' {
			if len(h) == 0 {
				problems = append(problems, fmt.Sprintf("header line %d continues no field", n+1))
				continue
			}
			h[len(h)-1].value += string(line)
			continue
		}
		colon := bytes.IndexByte(line, ':')
		if colon < 0 {
			problems = append(problems, fmt.Sprintf("header line %d has no colon", n+1))
			continue
		}
		key := bytes.TrimRight(line[:colon], " \t")
		if !validKey(key) {
			problems = append(problems, fmt.Sprintf("header line %d has an invalid field name", n+1))
			continue
		}
		h = append(h, field{key: textproto.CanonicalMIMEHeaderKey(string(key)), value: string(line[colon+1:])})
	}
	for i := range h {
		h[i].value = strings.Trim(h[i].value, " \t")
	}
	return h, problems
}

// validKey reports whether k is a field name: printable ASCII without colon (RFC 5322).
func validKey(k []byte) bool {
	if len(k) == 0 {
		return false
	}
	for _, c := range k {
		if c < 33 || c > 126 {
			return false
		}
	}
	return true
}

// rawHeaderText is the header block for display: valid UTF-8, at most MaxRawHeader bytes.
func rawHeaderText(head []byte) string {
	s := strings.ToValidUTF8(string(head), "\uFFFD")
	if len(s) > MaxRawHeader {
		cut := MaxRawHeader
		for cut > 0 && !utf8.RuneStart(s[cut]) {
			cut--
		}
		s = s[:cut]
	}
	return s
}

// wordDecoder decodes RFC 2047 encoded words in any charset; it never fails on a charset.
var wordDecoder = &mime.WordDecoder{CharsetReader: charsetReader}

// decodeHeaderText decodes an unstructured field value (Subject, a display name): raw
// 8-bit bytes as UTF-8 or else Windows-1252, then RFC 2047 encoded words. Line breaks
// that encoded words smuggle in become spaces.
func decodeHeaderText(v string) string {
	s := fallbackUTF8([]byte(v))
	if dec, err := wordDecoder.DecodeHeader(s); err == nil {
		s = dec
	}
	s = strings.ToValidUTF8(s, "\uFFFD")
	return strings.Map(func(r rune) rune {
		if r == '\r' || r == '\n' {
			return ' '
		}
		return r
	}, s)
}

// parseAddressList reads an address list leniently: entries that do not parse are read
// as "<addr>" or a bare addr-spec if they contain one, else skipped.
func parseAddressList(v string) []Address {
	v = strings.TrimSpace(fallbackUTF8([]byte(v)))
	if v == "" {
		return nil
	}
	p := mail.AddressParser{WordDecoder: wordDecoder}
	if list, err := p.ParseList(v); err == nil {
		out := make([]Address, 0, len(list))
		for _, a := range list {
			if a.Address != "" {
				out = append(out, Address{Name: cleanName(a.Name), Email: cleanText(a.Address)})
			}
		}
		return out
	}
	var out []Address
	for _, entry := range splitOutsideQuotes(v, ',') {
		if a, err := p.Parse(entry); err == nil {
			out = append(out, Address{Name: cleanName(a.Name), Email: cleanText(a.Address)})
		} else if a, ok := looseAddress(entry); ok {
			out = append(out, a)
		}
	}
	return out
}

// looseAddress finds an address in an entry net/mail does not accept: the last
// "<local@domain>", or the entry itself when it is one word with an '@'.
func looseAddress(entry string) (Address, bool) {
	entry = strings.TrimSpace(entry)
	if open := strings.LastIndexByte(entry, '<'); open >= 0 {
		if end := strings.IndexByte(entry[open:], '>'); end > 0 {
			email := strings.TrimSpace(entry[open+1 : open+end])
			if plausibleAddress(email) {
				name := strings.Trim(strings.TrimSpace(entry[:open]), `"`)
				return Address{Name: cleanName(decodeHeaderText(name)), Email: cleanText(email)}, true
			}
		}
		return Address{}, false
	}
	if plausibleAddress(entry) {
		return Address{Email: cleanText(entry)}, true
	}
	return Address{}, false
}

func plausibleAddress(s string) bool {
	at := strings.LastIndexByte(s, '@')
	return at > 0 && at < len(s)-1 && !strings.ContainsAny(s, " \t\"<>,;()")
}

// cleanName is a display name without line breaks and surrounding space.
func cleanName(s string) string {
	return strings.TrimSpace(cleanText(s))
}

// cleanText is s as valid UTF-8 with line breaks as spaces.
func cleanText(s string) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	return strings.Map(func(r rune) rune {
		if r == '\r' || r == '\n' {
			return ' '
		}
		return r
	}, s)
}

// splitOutsideQuotes splits s at sep where sep is not inside a quoted string or a
// comment.
func splitOutsideQuotes(s string, sep byte) []string {
	var parts []string
	inQuote, comment, start := false, 0, 0
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '\\' && inQuote:
			i++
		case c == '"' && comment == 0:
			inQuote = !inQuote
		case inQuote:
		case c == '(':
			comment++
		case c == ')' && comment > 0:
			comment--
		case c == sep && comment == 0:
			parts = append(parts, s[start:i])
			start = i + 1
		}
	}
	return append(parts, s[start:])
}

// maxIDs bounds the ids read from one References field.
const maxIDs = 1000

// msgIDs reads the message ids of an In-Reply-To or References value: the contents of
// "<…>" in order, or, when there are no brackets, the words with an '@'. Ids that are not
// printable ASCII without white space are dropped.
func msgIDs(v string) []string {
	var ids []string
	if !strings.Contains(v, "<") {
		for _, w := range strings.FieldsFunc(v, func(r rune) bool { return r == ' ' || r == '\t' || r == ',' }) {
			if strings.Contains(w, "@") && validID(w) && len(ids) < maxIDs {
				ids = append(ids, w)
			}
		}
		return ids
	}
	for len(ids) < maxIDs {
		open := strings.IndexByte(v, '<')
		if open < 0 {
			break
		}
		end := strings.IndexByte(v[open:], '>')
		if end < 0 {
			break
		}
		if id := strings.TrimSpace(v[open+1 : open+end]); validID(id) {
			ids = append(ids, id)
		}
		v = v[open+end+1:]
	}
	return ids
}

// firstID is the first message id of v, "" when it has none.
func firstID(v string) string {
	if ids := msgIDs(v); len(ids) > 0 {
		return ids[0]
	}
	if w := strings.TrimSpace(v); validID(w) {
		return w // an id without brackets or '@', as some mailers write it
	}
	return ""
}

// validID reports whether id can be written back as "<id>": printable ASCII without
// white space or angle brackets, at most 900 bytes.
func validID(id string) bool {
	if id == "" || len(id) > 900 {
		return false
	}
	for i := 0; i < len(id); i++ {
		if c := id[i]; c <= ' ' || c > '~' || c == '<' || c == '>' {
			return false
		}
	}
	return true
}

// parseDate reads a Date value; the zero time when it cannot.
func parseDate(v string) time.Time {
	v = strings.TrimSpace(v)
	if v == "" {
		return time.Time{}
	}
	if t, err := mail.ParseDate(v); err == nil {
		return t
	}
	// A trailing "(CEST)" or a second zone name the parser chokes on.
	if i := strings.IndexByte(v, '('); i > 0 {
		if t, err := mail.ParseDate(strings.TrimSpace(v[:i])); err == nil {
			return t
		}
	}
	return time.Time{}
}

// parseParams reads the parameters after the first ';' of a Content-Type or
// Content-Disposition value, leniently: unquoted values with tspecials, RFC 2231
// continuations and charsets (name*0*=…, name*=charset'lang'%xx), last value wins except
// that an RFC 2231 value beats a plain one. Keys are lower case.
func parseParams(v string) (value string, params map[string]string) {
	items := splitOutsideQuotes(v, ';')
	value = strings.ToLower(strings.TrimSpace(items[0]))
	params = map[string]string{}
	type segment struct {
		n       int
		encoded bool
		val     string
	}
	continued := map[string][]segment{}
	extended := map[string]string{}
	for _, item := range items[1:] {
		k, val, ok := strings.Cut(item, "=")
		if !ok {
			continue
		}
		k = strings.ToLower(strings.TrimSpace(k))
		val = unquote(strings.TrimSpace(val))
		name, rest, isExt := strings.Cut(k, "*")
		switch {
		case name == "":
			continue
		case !isExt:
			params[name] = val
		case rest == "":
			extended[name] = decode2231(val, true)
		default:
			encoded := strings.HasSuffix(rest, "*")
			n, err := strconv.Atoi(strings.TrimSuffix(rest, "*"))
			if err != nil || n < 0 || n > 999 {
				continue
			}
			continued[name] = append(continued[name], segment{n, encoded, val})
		}
	}
	for name, segs := range continued {
		// Sort by index (few segments; insertion sort keeps it dependency-free).
		for i := 1; i < len(segs); i++ {
			for j := i; j > 0 && segs[j].n < segs[j-1].n; j-- {
				segs[j], segs[j-1] = segs[j-1], segs[j]
			}
		}
		var raw strings.Builder
		charsetName := ""
		for i, s := range segs {
			val := s.val
			if s.encoded {
				if i == 0 {
					if parts := strings.SplitN(val, "'", 3); len(parts) == 3 {
						charsetName, val = parts[0], parts[2]
					}
				}
				val = percentDecode(val)
			}
			raw.WriteString(val)
		}
		extended[name] = decodeCharset([]byte(raw.String()), charsetName)
	}
	for name, val := range extended {
		params[name] = val
	}
	return value, params
}

// unquote removes the quotes of a quoted-string and its backslash escapes; a lone
// opening quote is dropped.
func unquote(s string) string {
	if !strings.HasPrefix(s, `"`) {
		return s
	}
	s = strings.TrimSuffix(s[1:], `"`)
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+1 < len(s) {
			i++
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// decode2231 decodes an RFC 2231 extended value charset'lang'%xx…; with hasCharset
// false the value is percent-decoded only.
func decode2231(v string, hasCharset bool) string {
	charsetName := ""
	if hasCharset {
		if parts := strings.SplitN(v, "'", 3); len(parts) == 3 {
			charsetName, v = parts[0], parts[2]
		}
	}
	return decodeCharset([]byte(percentDecode(v)), charsetName)
}

// percentDecode decodes %xx escapes, keeping malformed ones as they are.
func percentDecode(s string) string {
	if !strings.Contains(s, "%") {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '%' && i+2 < len(s) {
			if hi, lo := unhex(s[i+1]), unhex(s[i+2]); hi >= 0 && lo >= 0 {
				b.WriteByte(byte(hi<<4 | lo))
				i += 2
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

func unhex(c byte) int {
	switch {
	case '0' <= c && c <= '9':
		return int(c - '0')
	case 'a' <= c && c <= 'f':
		return int(c - 'a' + 10)
	case 'A' <= c && c <= 'F':
		return int(c - 'A' + 10)
	}
	return -1
}
