package clamd

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
)

// instream is the INSTREAM command in the NUL-delimited form.
const instream = "zINSTREAM\x00"

// Scan sends what r yields to clamd with INSTREAM and returns clamd's verdict. The input
// is read and sent one chunk (ChunkSize) at a time, each with its 4-byte big-endian
// length, and ended by a chunk of length 0; it is never held whole.
//
// Errors: ErrSizeLimit when the input is longer than MaxStream or than clamd accepts;
// ErrUnavailable for dialing, a timeout or a connection that ended early (also when
// clamd closed it while the stream was sent, unless it had replied with the size limit);
// a *ReplyError for any other reply. An error of r is returned wrapped, without
// ErrUnavailable. When ctx is cancelled the connection is closed at once and the error
// wraps context.Canceled; a Read of r that blocks is not interrupted, though (ctx is
// checked between chunks).
func (c *Client) Scan(ctx context.Context, r io.Reader) (Result, error) {
	s, err := c.open(ctx, "INSTREAM")
	if err != nil {
		return Result{}, err
	}
	defer s.close()
	if err := s.stream(r); err != nil {
		return Result{}, err
	}
	reply, err := s.readReply("INSTREAM")
	if err != nil {
		return Result{}, err
	}
	return parseScanReply(reply)
}

// chunkSize is the INSTREAM chunk size in use.
func (c *Client) chunkSize() int {
	switch {
	case c.ChunkSize <= 0:
		return DefaultChunkSize
	case c.ChunkSize > MaxChunkSize:
		return MaxChunkSize
	}
	return c.ChunkSize
}

// stream sends the command and r in chunks, ending with the zero-length chunk. Each write
// holds one chunk with its length; the first also holds the command, and the last the
// end.
func (s *session) stream(r io.Reader) error {
	size := s.c.chunkSize()
	buf := make([]byte, len(instream)+4+size+4)
	off := copy(buf, instream)
	var sent int64
	for {
		if err := s.ctx.Err(); err != nil {
			return s.fail("send INSTREAM", err)
		}
		n, err := io.ReadFull(r, buf[off+4:off+4+size])
		last := err == io.EOF || err == io.ErrUnexpectedEOF
		if err != nil && !last {
			return fmt.Errorf("clamd: failed to read the input after %d bytes: %w", sent, err)
		}
		if limit := s.c.MaxStream; limit > 0 && sent+int64(n) > limit {
			return fmt.Errorf("%w: the input is longer than %d bytes", ErrSizeLimit, limit)
		}
		end := off
		if n > 0 {
			binary.BigEndian.PutUint32(buf[end:], uint32(n))
			end += 4 + n
		}
		if last {
			binary.BigEndian.PutUint32(buf[end:], 0)
			end += 4
		}
		if _, err := s.conn.Write(buf[:end]); err != nil {
			return s.writeFailed(err)
		}
		sent += int64(n)
		if last {
			return nil
		}
		off = 0
	}
}

// writeFailed turns werr, a failed write of the stream, into Scan's error. clamd closes
// the connection when a stream exceeds its StreamMaxLength, after replying so; that reply
// gives ErrSizeLimit, anything else ErrUnavailable.
func (s *session) writeFailed(werr error) error {
	if s.ctx.Err() != nil || errors.Is(werr, os.ErrDeadlineExceeded) {
		return s.fail("send INSTREAM", werr)
	}
	reply, err := readReply(s.conn, "INSTREAM")
	if err != nil {
		return s.fail("send INSTREAM", werr)
	}
	if _, err := parseScanReply(reply); errors.Is(err, ErrSizeLimit) {
		return err
	}
	return s.fail("send INSTREAM", fmt.Errorf("%w, after clamd replied %q", werr, replyError("INSTREAM", reply).Reply))
}
