package clamd

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"time"
)

// Defaults and limits of Client.
const (
	// DefaultTimeout caps an operation when Client.Timeout is 0.
	DefaultTimeout = 2 * time.Minute
	// DefaultChunkSize is the INSTREAM chunk size when Client.ChunkSize is 0.
	DefaultChunkSize = 64 << 10
	// MaxChunkSize is the largest chunk Scan sends; a larger Client.ChunkSize is cut to it.
	MaxChunkSize = 8 << 20
)

// Client talks to one clamd. Its zero value is not usable: Network and Address are
// required. A Client holds no connection (each call dials its own) and its methods are
// safe for concurrent use; its fields must not change while a call runs.
type Client struct {
	// Network is "tcp" (or "tcp4", "tcp6") or "unix". Required.
	Network string
	// Address is host:port for TCP and the socket's path for unix. Required.
	Address string
	// Timeout caps a whole operation (dial, sending the stream, waiting for the verdict)
	// when ctx has no earlier deadline. 0 means DefaultTimeout.
	Timeout time.Duration
	// ChunkSize is the most Scan sends in one INSTREAM chunk, and so about the memory a
	// scan holds. 0 means DefaultChunkSize; at most MaxChunkSize is used.
	ChunkSize int
	// MaxStream is clamd's StreamMaxLength in bytes. When set, Scan fails with
	// ErrSizeLimit as soon as the input turns out longer, without sending the rest. 0
	// means unknown: then clamd refuses an over-long stream, which Scan also reports as
	// ErrSizeLimit, but only after sending up to the limit.
	MaxStream int64
}

// New returns a client for the clamd listening at address on network ("tcp" with
// host:port, or "unix" with a socket path) with default settings. It does no I/O.
func New(network, address string) *Client {
	return &Client{Network: network, Address: address}
}

// Ping asks clamd for PONG. Use it to check that clamd is there, e.g. at start.
func (c *Client) Ping(ctx context.Context) error {
	reply, err := c.command(ctx, "PING")
	if err != nil {
		return err
	}
	return parsePong(reply)
}

// Version returns clamd's version: "ClamAV 1.4.6", followed by "/DBVERSION/DBDATE" when
// an official signature database is loaded.
func (c *Client) Version(ctx context.Context) (string, error) {
	reply, err := c.command(ctx, "VERSION")
	if err != nil {
		return "", err
	}
	return parseVersion(reply)
}

// command sends the command name without arguments and returns the reply.
func (c *Client) command(ctx context.Context, name string) ([]byte, error) {
	s, err := c.open(ctx, name)
	if err != nil {
		return nil, err
	}
	defer s.close()
	if _, err := s.conn.Write([]byte("z" + name + "\x00")); err != nil {
		return nil, s.fail("send "+name, err)
	}
	return s.readReply(name)
}

// session is one connection for one command.
type session struct {
	c      *Client
	ctx    context.Context // the operation's; its deadline is the connection's
	cancel context.CancelFunc
	conn   net.Conn
	stop   func() bool // unregisters the close on ctx's end
}

// open dials clamd for the command cmd, with the operation's deadline on the connection
// and a close of the connection as soon as ctx ends (so that a write or read blocked on
// a stalled clamd returns).
func (c *Client) open(ctx context.Context, cmd string) (*session, error) {
	switch c.Network {
	case "tcp", "tcp4", "tcp6", "unix":
	default:
		return nil, fmt.Errorf("clamd: network %q is not tcp or unix", c.Network)
	}
	timeout := c.Timeout
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	var d net.Dialer
	conn, err := d.DialContext(ctx, c.Network, c.Address)
	if err != nil {
		err = c.fail(ctx, "dial for "+cmd, err)
		cancel()
		return nil, err
	}
	deadline, _ := ctx.Deadline()
	if err := conn.SetDeadline(deadline); err != nil {
		conn.Close()
		err = c.fail(ctx, "set the deadline for "+cmd, err)
		cancel()
		return nil, err
	}
	s := &session{c: c, ctx: ctx, cancel: cancel, conn: conn}
	s.stop = context.AfterFunc(ctx, func() { conn.Close() })
	return s, nil
}

// close closes the connection and ends the operation.
func (s *session) close() {
	s.stop()
	s.conn.Close()
	s.cancel()
}

// readReply reads the reply to cmd.
func (s *session) readReply(cmd string) ([]byte, error) {
	reply, err := readReply(s.conn, cmd)
	if err != nil {
		if _, ok := errors.AsType[*ReplyError](err); ok {
			return nil, err
		}
		return nil, s.fail("read the reply to "+cmd, err)
	}
	return reply, nil
}

// fail wraps err, an error of the connection while doing what.
func (s *session) fail(what string, err error) error { return s.c.fail(s.ctx, what, err) }

// fail wraps err, an error of the connection of an operation with ctx while doing what:
// with the cancellation of ctx when it was cancelled, else with ErrUnavailable (and
// context.DeadlineExceeded after a timeout).
func (c *Client) fail(ctx context.Context, what string, err error) error {
	at := c.Network + " " + c.Address
	switch cerr := ctx.Err(); {
	case errors.Is(cerr, context.Canceled):
		return fmt.Errorf("clamd: %s at %s: %w", what, at, cerr)
	case cerr != nil || errors.Is(err, os.ErrDeadlineExceeded):
		return fmt.Errorf("%w: %s at %s: %w", ErrUnavailable, what, at, context.DeadlineExceeded)
	}
	return fmt.Errorf("%w: %s at %s: %w", ErrUnavailable, what, at, err)
}
