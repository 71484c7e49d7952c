package sipua

import (
	"net"
	"sync"
	"time"
)

// limitListener bounds what inbound TCP/TLS peers can hold: at most max
// connections at a time (more are closed at accept) and a read deadline
// of idle per Read, so a silent or trickling peer is dropped once it stops
// sending for idle. Memory per connection is bounded by sipgo itself: a
// 32 KiB read buffer (sip.TransportBufferReadSize) plus at most the
// parser's MaxMessageLength of a partial message (sip.ParserStream
// drops the connection once buffered+consumed bytes of one message exceed
// it, and refuses a Content-Length that would exceed it before allocating
// the body).
type limitListener struct {
	net.Listener
	slots chan struct{}
	idle  time.Duration
}

func newLimitListener(l net.Listener, max int, idle time.Duration) net.Listener {
	return &limitListener{Listener: l, slots: make(chan struct{}, max), idle: idle}
}

func (l *limitListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		select {
		case l.slots <- struct{}{}:
			return &idleConn{Conn: c, idle: l.idle, release: func() { <-l.slots }}, nil
		default:
			_ = c.Close()
		}
	}
}

// idleConn sets a read deadline before every Read and frees its slot on
// the first Close.
type idleConn struct {
	net.Conn
	idle    time.Duration
	release func()
	once    sync.Once
}

func (c *idleConn) Read(b []byte) (int, error) {
	if c.idle > 0 {
		if err := c.Conn.SetReadDeadline(time.Now().Add(c.idle)); err != nil {
			return 0, err
		}
	}
	return c.Conn.Read(b)
}

func (c *idleConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(c.release)
	return err
}
