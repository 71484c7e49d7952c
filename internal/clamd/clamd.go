// Package clamd is a client for clamd, ClamAV's scanning daemon, written against the
// protocol of clamd(8): PING, VERSION and INSTREAM, each on a connection of its own over
// TCP or a Unix socket, in the NUL-delimited "z" form. It knows nothing of Matrix or
// Switchboard and can be used alone.
//
// Scan streams its input to clamd in chunks and never holds more than one chunk. Errors
// say what the caller can do: ErrUnavailable (dialing failed, a timeout, a connection
// that ended before the reply) means "try again later"; ErrSizeLimit means the input is
// longer than clamd accepts and will never pass; a *ReplyError is a reply the client does
// not understand or an error clamd reported. None of them carries the scanned data.
//
//	c := clamd.New("unix", "/run/clamav/clamd.ctl")
//	c.MaxStream = 25 << 20 // clamd's StreamMaxLength, so that longer input is refused early
//	res, err := c.Scan(ctx, file)
package clamd

import (
	"errors"
	"fmt"
	"strings"
)

// Sentinel errors.
var (
	// ErrSizeLimit is wrapped when the input is longer than Client.MaxStream (found
	// before more is sent) or clamd answered that it exceeds its StreamMaxLength.
	ErrSizeLimit = errors.New("clamd: stream size limit exceeded")
	// ErrUnavailable is wrapped by every error of dialing, of a timeout and of a
	// connection that ended before the reply: clamd may answer when tried again later.
	ErrUnavailable = errors.New("clamd: unavailable")
)

// Result is clamd's verdict on a stream.
type Result struct {
	// Infected is true when clamd found a signature.
	Infected bool
	// Signature is the name of the signature found, e.g. "Win.Test.EICAR_HDB-1"; empty
	// unless Infected. Control and non-ASCII bytes are replaced by '?', and it is at most
	// 256 bytes long.
	Signature string
}

// ReplyError is a reply of clamd's that is neither a verdict nor the size limit: an error
// clamd reported ("... ERROR") or something the client does not understand.
type ReplyError struct {
	// Command is what was asked: "PING", "VERSION" or "INSTREAM".
	Command string
	// Reply is the reply without its NUL, cut to 128 bytes ("..." marks the cut). It may
	// hold any bytes; Error quotes it.
	Reply string
}

// Error implements error.
func (e *ReplyError) Error() string {
	if strings.HasSuffix(e.Reply, " ERROR") {
		return fmt.Sprintf("clamd: %s failed: %q", e.Command, e.Reply)
	}
	return fmt.Sprintf("clamd: unexpected reply to %s: %q", e.Command, e.Reply)
}
