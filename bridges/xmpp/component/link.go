package component

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/xml"
	"fmt"
	"io"
	"net"
	"sync"
	"time"

	"github.com/rs/zerolog"
	"mellium.im/xmlstream"
	"mellium.im/xmpp"
	"mellium.im/xmpp/component"
	"mellium.im/xmpp/stanza"
)

// nsPing is XEP-0199.
const nsPing = "urn:xmpp:ping"

// pingPrefix starts the id of every confirming ping, so late answers can be dropped.
const pingPrefix = "sb-confirm-"

// link is one established stream. It is replaced, never reused, after a reconnect.
type link struct {
	c    *Conn
	nc   net.Conn      // immutable
	sess *xmpp.Session // immutable

	ctx  context.Context    // done when the stream is dead
	kill context.CancelFunc // ends the stream; safe to call more than once

	kick chan struct{} // cap 1; wakes the pinger

	mu   sync.Mutex
	next *batch // guarded by mu; stanzas written but not yet behind a sent ping
}

// batch is a group of written stanzas confirmed by one ping.
type batch struct {
	done chan struct{} // closed when err is set
	err  error
	n    int // stanzas in the batch; guarded by link.mu until the ping is sent
}

// connect dials and completes the handshake.
func (c *Conn) connect(ctx context.Context) (*link, error) {
	d := net.Dialer{Timeout: handshakeTimeout}
	nc, err := d.DialContext(ctx, "tcp", c.cfg.Addr)
	if err != nil {
		return nil, fmt.Errorf("component: dial %s: %w", c.cfg.Addr, err)
	}
	_ = nc.SetDeadline(time.Now().Add(handshakeTimeout))
	stop := context.AfterFunc(ctx, func() { nc.Close() })
	sess, err := component.NewSession(ctx, c.domain, []byte(c.cfg.Secret), nc)
	if !stop() {
		nc.Close()
		return nil, fmt.Errorf("component: handshake with %s: %w", c.cfg.Addr, ctx.Err())
	}
	if err != nil {
		nc.Close()
		return nil, authError(c.cfg.Addr, err)
	}
	_ = nc.SetDeadline(time.Time{})
	lctx, cancel := context.WithCancel(context.Background())
	l := &link{c: c, nc: nc, sess: sess, ctx: lctx, kick: make(chan struct{}, 1)}
	l.kill = func() {
		cancel()
		nc.Close()
	}
	return l, nil
}

// serve reads the stream until it breaks or ctx ends.
func (l *link) serve(ctx context.Context) error {
	stop := context.AfterFunc(ctx, l.kill)
	defer stop()
	pingerDone := make(chan struct{})
	go func() {
		defer close(pingerDone)
		l.pinger(ctx)
	}()
	err := l.sess.Serve(xmpp.HandlerFunc(func(r xmlstream.TokenReadEncoder, start *xml.StartElement) error {
		return l.c.inbound(ctx, r, start)
	}))
	l.kill()
	<-pingerDone
	if err == nil {
		err = io.EOF
	}
	return err
}

// shutdown fails the stanzas still waiting for a ping.
func (l *link) shutdown() {
	l.kill()
	l.mu.Lock()
	b := l.next
	l.next = nil
	l.mu.Unlock()
	if b != nil {
		b.err = fmt.Errorf("%w: the stream to %s ended", ErrUnconfirmed, l.c.cfg.Addr)
		close(b.done)
	}
}

// pinger sends a confirming ping at once for all stanzas written since the last one, even
// while earlier pings are still unanswered: a stanza written while a ping is in flight
// does not wait for that answer and another round trip (the window in which a crash
// makes the bridge send it again is one round trip shorter). The stream is handled in
// order, so each ping's answer covers the stanzas written before it was sent.
func (l *link) pinger(ctx context.Context) {
	var wg sync.WaitGroup
	defer wg.Wait()
	for {
		select {
		case <-l.ctx.Done():
			return
		case <-l.kick:
		}
		l.mu.Lock()
		b := l.next
		l.next = nil
		l.mu.Unlock()
		if b == nil {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			start := time.Now()
			typ, err := l.ping()
			b.err = err
			close(b.done)
			zerolog.Ctx(ctx).Debug().Err(err).Int("stanzas", b.n).Str("answer", typ).
				Dur("round_trip", time.Since(start)).Msg("confirming ping answered")
			if err != nil {
				l.kill()
			}
		}()
	}
}

// ping sends an XEP-0199 ping to the server and waits for any answer: stanzas on one
// stream are handled in order, so even an error answer proves the earlier ones arrived.
func (l *link) ping() (answer string, err error) {
	ctx, cancel := context.WithTimeout(l.ctx, l.c.cfg.ConfirmTimeout)
	defer cancel()
	id := pingPrefix + randomID()
	iq := stanza.IQ{ID: id, Type: stanza.GetIQ, To: l.c.server, From: l.c.domain}
	payload := xmlstream.Wrap(nil, xml.StartElement{Name: xml.Name{Space: nsPing, Local: "ping"}})
	resp, err := l.sess.SendIQElement(ctx, payload, iq)
	if err != nil {
		return "", fmt.Errorf("%w: confirming ping to %s: %v", ErrUnconfirmed, l.c.server, err)
	}
	defer resp.Close()
	if tok, err := resp.Token(); err == nil {
		if start, ok := tok.(xml.StartElement); ok {
			for _, a := range start.Attr {
				if a.Name.Local == "type" {
					answer = a.Value
				}
			}
		}
	}
	return answer, nil
}

// join adds a written stanza to the batch behind the next ping and wakes the pinger.
func (l *link) join() *batch {
	l.mu.Lock()
	if l.next == nil {
		l.next = &batch{done: make(chan struct{})}
	}
	b := l.next
	b.n++
	l.mu.Unlock()
	select {
	case l.kick <- struct{}{}:
	default:
	}
	return b
}

// write sends tokens on this stream without confirmation. The write is not tied to ctx:
// mellium (v0.22.0) turns a context that ends right after Send returns into a write
// deadline in the past that can hit the next writer's stanza half way. A write that
// blocks is ended by the link's confirming ping timing out, which kills the stream.
func (l *link) write(ctx context.Context, toks []xml.Token) error {
	if err := l.sess.Send(context.WithoutCancel(ctx), &sliceReader{toks: toks}); err != nil {
		l.kill()
		return err
	}
	return nil
}

// Send writes one stanza (a complete message, presence or iq element) and returns nil
// only after the server has confirmed it with the answer to a following ping. While
// disconnected it waits for the connection up to ctx. An error wrapping ErrUnconfirmed
// means the stanza may or may not have arrived: resend it after reconnect with the same
// id so that receivers can drop the duplicate.
func (c *Conn) Send(ctx context.Context, raw []byte) error {
	toks, kind, id, err := parseStanza(raw)
	if err != nil {
		return err
	}
	l, err := c.waitLink(ctx)
	if err != nil {
		return err
	}
	if err := l.write(ctx, toks); err != nil {
		return fmt.Errorf("%w: writing %s id %q: %v", ErrUnconfirmed, kind, id, err)
	}
	b := l.join()
	select {
	case <-b.done:
		if b.err != nil {
			return fmt.Errorf("component: %s id %q: %w", kind, id, b.err)
		}
		return nil
	case <-l.ctx.Done():
		return fmt.Errorf("%w: %s id %q: the stream to %s ended", ErrUnconfirmed, kind, id, c.cfg.Addr)
	case <-ctx.Done():
		return fmt.Errorf("%w: %s id %q: %w", ErrUnconfirmed, kind, id, ctx.Err())
	}
}

// sendNoConfirm writes tokens on the current stream, waiting for one up to ctx.
func (c *Conn) sendNoConfirm(ctx context.Context, toks []xml.Token) error {
	l, err := c.waitLink(ctx)
	if err != nil {
		return err
	}
	return l.write(ctx, toks)
}

func randomID() string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// sliceReader replays tokens.
type sliceReader struct{ toks []xml.Token }

func (r *sliceReader) Token() (xml.Token, error) {
	if len(r.toks) == 0 {
		return nil, io.EOF
	}
	t := r.toks[0]
	r.toks = r.toks[1:]
	return t, nil
}
