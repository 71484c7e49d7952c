package baresip

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"sync"
)

// maxNetstring bounds one netstring read from ctrl_tcp (baresip's own limit is far lower).
const maxNetstring = 1 << 20

// errNetstring marks malformed netstring framing.
var errNetstring = errors.New("baresip: malformed netstring")

// readNetstring reads one netstring ("5:hello,") from r.
func readNetstring(r *bufio.Reader) ([]byte, error) {
	n := 0
	digits := 0
	for {
		c, err := r.ReadByte()
		if err != nil {
			if digits > 0 && errors.Is(err, io.EOF) {
				err = io.ErrUnexpectedEOF
			}
			return nil, err
		}
		if c == ':' {
			break
		}
		if c < '0' || c > '9' {
			return nil, fmt.Errorf("%w: byte %q in the length", errNetstring, c)
		}
		if digits > 0 && n == 0 {
			return nil, fmt.Errorf("%w: leading zero", errNetstring)
		}
		digits++
		n = n*10 + int(c-'0')
		if n > maxNetstring {
			return nil, fmt.Errorf("%w: longer than %d bytes", errNetstring, maxNetstring)
		}
	}
	if digits == 0 {
		return nil, fmt.Errorf("%w: no length", errNetstring)
	}
	buf := make([]byte, n+1)
	if _, err := io.ReadFull(r, buf); err != nil {
		return nil, fmt.Errorf("%w: %w", errNetstring, err)
	}
	if buf[n] != ',' {
		return nil, fmt.Errorf("%w: no comma after %d bytes", errNetstring, n)
	}
	return buf[:n], nil
}

// appendNetstring frames b as a netstring.
func appendNetstring(dst, b []byte) []byte {
	dst = strconv.AppendInt(dst, int64(len(b)), 10)
	dst = append(dst, ':')
	dst = append(dst, b...)
	return append(dst, ',')
}

// Event is one event of baresip's ctrl_tcp stream (a user agent event: registration,
// calls, …). baresip 1.0.0 sends no events for MESSAGEs or presence.
type Event struct {
	Type       string `json:"type"`       // e.g. "REGISTER_OK", "REGISTER_FAIL", "REGISTERING"
	Class      string `json:"class"`      // e.g. "register", "call"
	AccountAOR string `json:"accountaor"` // the user agent's AOR
	Param      string `json:"param"`      // e.g. "200 OK"
}

// wire is one JSON object of ctrl_tcp: a response to a command or an event.
type wire struct {
	Event    bool   `json:"event"`
	Response bool   `json:"response"`
	OK       bool   `json:"ok"`
	Data     string `json:"data"`
	Token    string `json:"token"`
}

// ctrl is the connection to ctrl_tcp: commands with responses matched by token, and the
// event stream.
type ctrl struct {
	conn net.Conn // immutable

	wmu sync.Mutex // serialises writes

	mu      sync.Mutex
	next    int                  // guarded by mu; the next command token
	pending map[string]chan wire // guarded by mu
	events  []Event              // guarded by mu
	changed chan struct{}        // guarded by mu; closed and replaced on every event
	err     error                // guarded by mu; set when the read loop ends
	done    chan struct{}        // closed when the read loop ends
}

func newCtrl(conn net.Conn) *ctrl {
	c := &ctrl{conn: conn, pending: map[string]chan wire{}, changed: make(chan struct{}), done: make(chan struct{})}
	go c.readLoop()
	return c
}

func (c *ctrl) readLoop() {
	r := bufio.NewReader(c.conn)
	var err error
	for {
		var b []byte
		if b, err = readNetstring(r); err != nil {
			break
		}
		var w wire
		if err = json.Unmarshal(b, &w); err != nil {
			err = fmt.Errorf("baresip: ctrl_tcp sent bad JSON: %w", err)
			break
		}
		c.mu.Lock()
		switch {
		case w.Response:
			if ch, ok := c.pending[w.Token]; ok {
				delete(c.pending, w.Token)
				ch <- w
			}
		case w.Event:
			var ev Event
			_ = json.Unmarshal(b, &ev)
			c.events = append(c.events, ev)
			close(c.changed)
			c.changed = make(chan struct{})
		}
		c.mu.Unlock()
	}
	c.mu.Lock()
	c.err = fmt.Errorf("baresip: ctrl_tcp connection ended: %w", err)
	c.mu.Unlock()
	close(c.done)
}

// command runs a baresip command (without the leading slash) and returns its output.
func (c *ctrl) command(ctx context.Context, name, params string) (string, error) {
	c.mu.Lock()
	if c.err != nil {
		c.mu.Unlock()
		return "", c.err
	}
	c.next++
	token := "sb" + strconv.Itoa(c.next)
	ch := make(chan wire, 1)
	c.pending[token] = ch
	c.mu.Unlock()
	forget := func() {
		c.mu.Lock()
		delete(c.pending, token)
		c.mu.Unlock()
	}
	b, err := json.Marshal(map[string]string{"command": name, "params": params, "token": token})
	if err != nil {
		forget()
		return "", fmt.Errorf("baresip: failed to encode command %s: %w", name, err)
	}
	c.wmu.Lock()
	_, err = c.conn.Write(appendNetstring(nil, b))
	c.wmu.Unlock()
	if err != nil {
		forget()
		return "", fmt.Errorf("baresip: failed to send command %s: %w", name, err)
	}
	select {
	case w := <-ch:
		if !w.OK {
			return w.Data, fmt.Errorf("baresip: command %s failed: %s", name, w.Data)
		}
		return w.Data, nil
	case <-c.done:
		forget()
		c.mu.Lock()
		defer c.mu.Unlock()
		return "", c.err
	case <-ctx.Done():
		forget()
		return "", fmt.Errorf("baresip: command %s: %w", name, ctx.Err())
	}
}

// snapshot returns the events so far and a channel closed at the next one.
func (c *ctrl) snapshot() ([]Event, <-chan struct{}) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]Event(nil), c.events...), c.changed
}

func (c *ctrl) close() error {
	err := c.conn.Close()
	<-c.done
	return err
}
