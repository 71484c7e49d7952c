package mailparse

import (
	"bytes"
)

// maxBoundary bounds the boundary length accepted (RFC 2046 allows 70; some mailers
// write longer ones).
const maxBoundary = 200

// splitMultipart splits a multipart body at its boundary lines (RFC 2046 §5.1.1). The
// preamble and epilogue are dropped; a missing close delimiter ends the last part at the
// end of body. ok is false when the boundary is unusable or never occurs, and then the
// caller reads the body as text instead. At most limit parts are returned.
func splitMultipart(body []byte, boundary string, limit int) (parts [][]byte, ok bool) {
	if boundary == "" || len(boundary) > maxBoundary {
		return nil, false
	}
	delim := []byte("--" + boundary)
	start := -1 // start of the current part's content, -1 before the first delimiter
	for pos := 0; pos <= len(body); {
		i := bytes.Index(body[pos:], delim)
		if i < 0 {
			break
		}
		i += pos
		lineEnd := bytes.IndexByte(body[i:], '\n')
		next := len(body)
		if lineEnd >= 0 {
			next = i + lineEnd + 1
		}
		atLineStart := i == 0 || body[i-1] == '\n'
		rest := body[i+len(delim) : max(next, i+len(delim))]
		closing := bytes.HasPrefix(rest, []byte("--"))
		if !atLineStart || !closing && len(bytes.Trim(rest, " \t\r\n")) != 0 {
			pos = i + len(delim) // the boundary inside a line, or a longer boundary
			continue
		}
		if start >= 0 {
			parts = append(parts, trimLineEnd(body[start:i]))
			if len(parts) >= limit {
				return parts, true
			}
		}
		if closing {
			return parts, true
		}
		start = next
		pos = next
		if next >= len(body) {
			break
		}
	}
	if start < 0 {
		return nil, false
	}
	if start < len(body) {
		parts = append(parts, body[start:])
	}
	return parts, true
}

// trimLineEnd drops the line break before a delimiter, which belongs to the delimiter.
func trimLineEnd(b []byte) []byte {
	b = bytes.TrimSuffix(b, []byte("\n"))
	return bytes.TrimSuffix(b, []byte("\r"))
}
