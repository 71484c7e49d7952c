package clamd

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"
)

// Limits of replies.
const (
	// maxReply is the most read of a reply, its NUL included; clamd's replies are short.
	maxReply = 4 << 10
	// maxQuoted is the most of a reply a ReplyError keeps.
	maxQuoted = 128
	// maxSignature is the longest Result.Signature.
	maxSignature = 256
)

// errNoReply is returned by readReply for a connection that ended before the reply's NUL.
var errNoReply = errors.New("connection closed before the end of the reply")

// readReply reads one NUL-terminated reply of at most maxReply bytes from r and returns
// it without the NUL; bytes after the NUL are ignored. A reply without NUL in maxReply
// bytes is a *ReplyError for cmd; a reader that ends first gives errNoReply, and any
// other read error is returned as is.
func readReply(r io.Reader, cmd string) ([]byte, error) {
	buf := make([]byte, 0, maxReply)
	for {
		n, err := r.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if i := bytes.IndexByte(buf, 0); i >= 0 {
			return buf[:i], nil
		}
		if len(buf) == cap(buf) {
			return nil, replyError(cmd, buf)
		}
		switch {
		case errors.Is(err, io.EOF):
			return buf, errNoReply
		case err != nil:
			return buf, err
		}
	}
}

// replyError is a *ReplyError for reply, cut to maxQuoted bytes.
func replyError(cmd string, reply []byte) *ReplyError {
	s := string(reply)
	if len(s) > maxQuoted {
		s = s[:maxQuoted-3] + "..."
	}
	return &ReplyError{Command: cmd, Reply: s}
}

// The replies to INSTREAM that parseScanReply knows.
const (
	streamPrefix  = "stream: "
	foundSuffix   = " FOUND"
	streamOK      = streamPrefix + "OK"
	sizeLimitText = "size limit exceeded"
	errorSuffix   = " ERROR"
)

// parseScanReply interprets clamd's reply to INSTREAM (without its NUL): "stream: OK",
// "stream: SIGNATURE FOUND", "INSTREAM size limit exceeded. ERROR" (ErrSizeLimit), or
// anything else (a *ReplyError).
func parseScanReply(reply []byte) (Result, error) {
	s := string(reply)
	switch {
	case s == streamOK:
		return Result{}, nil
	case strings.HasPrefix(s, streamPrefix) && strings.HasSuffix(s, foundSuffix) &&
		len(s) > len(streamPrefix)+len(foundSuffix):
		sig := strings.TrimSpace(s[len(streamPrefix) : len(s)-len(foundSuffix)])
		if sig != "" {
			return Result{Infected: true, Signature: cleanSignature(sig)}, nil
		}
	case strings.Contains(s, sizeLimitText) && strings.HasSuffix(s, errorSuffix):
		return Result{}, fmt.Errorf("%w: clamd refused the stream as longer than its StreamMaxLength", ErrSizeLimit)
	}
	return Result{}, replyError("INSTREAM", reply)
}

// cleanSignature replaces control and non-ASCII bytes of a signature name by '?' and cuts
// it to maxSignature bytes, so that it can be logged safely.
func cleanSignature(sig string) string {
	b := []byte(sig[:min(len(sig), maxSignature)])
	for i, c := range b {
		if c < 0x20 || c > 0x7e {
			b[i] = '?'
		}
	}
	return string(b)
}

// parsePong checks clamd's reply to PING.
func parsePong(reply []byte) error {
	if string(reply) != "PONG" {
		return replyError("PING", reply)
	}
	return nil
}

// parseVersion checks clamd's reply to VERSION, "ClamAV 1.4.6" or with the database's
// version and date, "ClamAV 1.4.6/27480/Tue Dec  2 09:25:23 2025", and returns it.
func parseVersion(reply []byte) (string, error) {
	s := string(reply)
	if !strings.HasPrefix(s, "ClamAV ") || len(s) > maxQuoted || strings.IndexFunc(s, notPrintable) >= 0 {
		return "", replyError("VERSION", reply)
	}
	return s, nil
}

// notPrintable reports whether r is not printable ASCII.
func notPrintable(r rune) bool { return r < 0x20 || r > 0x7e }
