package mailparse

import (
	"bytes"
	"encoding/base64"
	"io"
	"strings"
	"unicode/utf8"

	"github.com/emersion/go-message/charset"
	"golang.org/x/text/encoding/charmap"
)

// latin1Labels are read as Windows-1252, as browsers do: mail labelled ISO-8859-1 often
// holds Windows-1252 quotes and dashes, and the two agree on every other printable byte.
var latin1Labels = map[string]bool{
	"iso-8859-1": true, "iso8859-1": true, "iso_8859-1": true, "iso_8859-1:1987": true,
	"latin1": true, "latin-1": true, "l1": true, "cp819": true, "ibm819": true,
	"iso-ir-100": true, "csisolatin1": true, "windows-1252": true, "cp1252": true,
	"x-cp1252": true,
}

// vagueLabels say nothing reliable about 8-bit bytes; the text is guessed as for a
// missing charset.
var vagueLabels = map[string]bool{
	"": true, "us-ascii": true, "ascii": true, "ansi_x3.4-1968": true, "iso646-us": true,
	"us": true, "csascii": true, "7bit": true, "8bit": true, "unknown": true,
	"x-unknown": true, "default": true,
}

// decodeCharset converts text in the named charset to valid UTF-8. It never fails: a
// missing, vague or unknown charset is read as UTF-8 when the bytes are valid UTF-8 and
// as Windows-1252 otherwise; what still does not decode becomes U+FFFD.
func decodeCharset(data []byte, label string) string {
	label = strings.ToLower(strings.Trim(label, " \t\"'"))
	switch {
	case label == "utf-8" || label == "utf8":
		return strings.ToValidUTF8(string(data), "\uFFFD")
	case latin1Labels[label]:
		return windows1252(data)
	case vagueLabels[label]:
		return fallbackUTF8(data)
	}
	r, err := charset.Reader(label, bytes.NewReader(data))
	if err != nil {
		return fallbackUTF8(data)
	}
	out, err := io.ReadAll(r)
	if err != nil {
		return fallbackUTF8(data)
	}
	return strings.ToValidUTF8(string(out), "\uFFFD")
}

// fallbackUTF8 is data as UTF-8 when valid, else as Windows-1252.
func fallbackUTF8(data []byte) string {
	if utf8.Valid(data) {
		return string(data)
	}
	return windows1252(data)
}

func windows1252(data []byte) string {
	out, err := charmap.Windows1252.NewDecoder().Bytes(data)
	if err != nil {
		return strings.ToValidUTF8(string(data), "\uFFFD")
	}
	return strings.ToValidUTF8(string(out), "\uFFFD")
}

// charsetReader lets mime.WordDecoder decode encoded words in any charset; it never
// fails, so that one odd word does not cost the whole field.
func charsetReader(label string, r io.Reader) (io.Reader, error) {
	data, err := io.ReadAll(io.LimitReader(r, 1<<20))
	if err != nil {
		return nil, err
	}
	return strings.NewReader(decodeCharset(data, label)), nil
}

// decodeTransfer undoes a Content-Transfer-Encoding, leniently; unknown encodings
// (7bit, 8bit, binary and made-up ones) leave data as it is.
func decodeTransfer(enc string, data []byte) []byte {
	switch strings.ToLower(strings.TrimSpace(enc)) {
	case "base64":
		return decodeBase64(data)
	case "quoted-printable":
		return decodeQP(data)
	}
	return data
}

// decodedSize is the size data has after decodeTransfer, without decoding it when that
// is cheap to know.
func decodedSize(enc string, data []byte) int64 {
	switch strings.ToLower(strings.TrimSpace(enc)) {
	case "base64":
		n := int64(0)
		for _, c := range data {
			if base64Value(c) {
				n++
			}
		}
		size := n / 4 * 3
		switch n % 4 {
		case 2:
			size++
		case 3:
			size += 2
		}
		return size
	case "quoted-printable":
		return int64(len(decodeQP(data)))
	}
	return int64(len(data))
}

func base64Value(c byte) bool {
	return 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' ||
		c == '+' || c == '/' || c == '-' || c == '_'
}

// decodeBase64 decodes base64 ignoring line breaks, padding and stray characters, and
// accepting the URL-safe alphabet; a broken tail is dropped.
func decodeBase64(data []byte) []byte {
	clean := make([]byte, 0, len(data))
	for _, c := range data {
		switch {
		case c == '-':
			clean = append(clean, '+')
		case c == '_':
			clean = append(clean, '/')
		case base64Value(c):
			clean = append(clean, c)
		}
	}
	if len(clean)%4 == 1 {
		clean = clean[:len(clean)-1]
	}
	out := make([]byte, base64.RawStdEncoding.DecodedLen(len(clean)))
	n, _ := base64.RawStdEncoding.Decode(out, clean)
	return out[:n]
}

// decodeQP decodes quoted-printable, keeping malformed escapes as they are.
func decodeQP(data []byte) []byte {
	out := make([]byte, 0, len(data))
	for i := 0; i < len(data); i++ {
		c := data[i]
		if c != '=' {
			out = append(out, c)
			continue
		}
		j := i + 1
		for j < len(data) && (data[j] == ' ' || data[j] == '\t') {
			j++
		}
		switch {
		case j == len(data):
			i = j // a soft break at the very end
		case data[j] == '\n':
			i = j
		case data[j] == '\r' && j+1 < len(data) && data[j+1] == '\n':
			i = j + 1
		case i+2 < len(data) && unhex(data[i+1]) >= 0 && unhex(data[i+2]) >= 0:
			out = append(out, byte(unhex(data[i+1])<<4|unhex(data[i+2])))
			i += 2
		default:
			out = append(out, '=')
		}
	}
	return out
}

// normalizeNewlines turns CRLF and lone CR into LF.
func normalizeNewlines(s string) string {
	if !strings.Contains(s, "\r") {
		return s
	}
	return strings.ReplaceAll(strings.ReplaceAll(s, "\r\n", "\n"), "\r", "\n")
}

// unflow joins the soft line breaks of format=flowed text (RFC 3676): a line ending in a
// space continues on the next line of the same quote depth. s has LF line endings.
func unflow(s string, delsp bool) string {
	var out []string
	var cur strings.Builder
	depth, open := 0, false
	flush := func() {
		line := cur.String()
		if depth > 0 && line != "" {
			line = strings.Repeat(">", depth) + " " + line
		} else if depth > 0 {
			line = strings.Repeat(">", depth)
		}
		out = append(out, line)
		cur.Reset()
		open = false
	}
	for line := range strings.SplitSeq(s, "\n") {
		d := 0
		for d < len(line) && line[d] == '>' {
			d++
		}
		content := strings.TrimPrefix(line[d:], " ") // space-stuffing
		if open && d != depth {
			flush()
		}
		depth = d
		flowed := strings.HasSuffix(content, " ") && content != "-- "
		if flowed && delsp {
			content = content[:len(content)-1]
		}
		cur.WriteString(content)
		open = true
		if !flowed {
			flush()
		}
	}
	if open {
		flush()
	}
	return strings.Join(out, "\n")
}
