package compose

import (
	"net/textproto"
	"strings"
	"unicode"
	"unicode/utf8"
)

func mimeKey(k string) string { return textproto.CanonicalMIMEHeaderKey(k) }

// maxPlainWord is the longest word written as it is; longer ones are encoded, so that
// folding never has to split a word (which would add a space).
const maxPlainWord = 70

// encodeText is an unstructured header value (Subject, an extra header) ready to write:
// as it is when it reads back unchanged, else all of it as RFC 2047 Q-encoded words.
// That is text with non-ASCII or control characters, and ASCII text that a reader would
// change: leading or trailing white space, a literal "=?", a word too long to fold.
// The words are short enough that go-message folds the line at 76 characters.
func encodeText(s string) string {
	for i := 0; i < len(s); i++ {
		if c := s[i]; (c < ' ' || c > '~') && c != '\t' {
			return qEncodeAll(s)
		}
	}
	if s != strings.TrimSpace(s) || strings.Contains(s, "=?") || hasLongWord(s) {
		return qEncodeAll(s)
	}
	return s
}

func hasLongWord(s string) bool {
	for _, w := range strings.Fields(s) {
		if len(w) > maxPlainWord {
			return true
		}
	}
	return false
}

// maxQPayload bounds the encoded text of one word: with "=?utf-8?q?" and "?=" a word is
// at most 64 characters, which fits on the first line after "Subject: ".
const maxQPayload = 52

// qEncodeAll encodes all of s as Q-encoded words (RFC 2047 §4.2), split at rune
// boundaries. Letters, digits and !*+-/ stay as they are, space becomes '_', all other
// bytes =XX.
func qEncodeAll(s string) string {
	const hexDigits = "0123456789ABCDEF"
	var words []string
	var word strings.Builder
	for _, r := range s {
		var enc strings.Builder
		switch {
		case r == ' ':
			enc.WriteByte('_')
		case r < utf8.RuneSelf && (unicode.IsLetter(r) || unicode.IsDigit(r) || strings.ContainsRune("!*+-/", r)):
			enc.WriteRune(r)
		default:
			var buf [utf8.UTFMax]byte
			for _, b := range buf[:utf8.EncodeRune(buf[:], r)] {
				enc.WriteByte('=')
				enc.WriteByte(hexDigits[b>>4])
				enc.WriteByte(hexDigits[b&15])
			}
		}
		if word.Len()+enc.Len() > maxQPayload {
			words = append(words, "=?utf-8?q?"+word.String()+"?=")
			word.Reset()
		}
		word.WriteString(enc.String())
	}
	if word.Len() > 0 || len(words) == 0 {
		words = append(words, "=?utf-8?q?"+word.String()+"?=")
	}
	return strings.Join(words, " ")
}
