package muc

import (
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/rs/zerolog"
	"mellium.im/xmlstream"
	"mellium.im/xmpp"
	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/ping"
)

// errRunning is returned by a second concurrent Run.
var errRunning = errors.New("muc: Run is already running")

// Run connects, joins the watched rooms and keeps the connection up until ctx ends,
// reconnecting with exponential backoff (1 s to 1 min) and jitter. It returns ctx's
// error, or at once if Run is already running.
func (w *Watcher) Run(ctx context.Context) error {
	w.mu.Lock()
	if w.running {
		w.mu.Unlock()
		return errRunning
	}
	w.running = true
	w.mu.Unlock()
	defer func() {
		w.mu.Lock()
		w.running = false
		w.mu.Unlock()
	}()

	log := zerolog.Ctx(ctx).With().Str("xmpp_account", w.origin.String()).Str("xmpp_addr", w.cfg.Address).Logger()
	ctx = log.WithContext(ctx)
	backoff := w.minBackoff
	for {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		sess, lc, err := w.dial(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			w.setConn(nil, err)
			ev := log.Warn()
			if errors.Is(err, ErrAuth) || errors.Is(err, ErrTLS) || errors.Is(err, ErrConfig) {
				ev = log.Error()
			}
			ev.Err(err).Dur("retry_in", backoff).Msg("XMPP login failed")
		} else {
			backoff = w.minBackoff
			log.Info().Str("jid", sess.LocalAddr().String()).Msg("XMPP watcher connected")
			err = w.serve(ctx, sess, lc)
			if ctx.Err() != nil {
				w.setConn(nil, nil)
				return ctx.Err()
			}
			err = fmt.Errorf("muc: the stream to %s ended: %w", w.cfg.Address, err)
			w.setConn(nil, err)
			log.Warn().Err(err).Msg("XMPP watcher disconnected; reconnecting")
		}
		// Jitter over [backoff/2, backoff].
		d := backoff/2 + rand.N(backoff/2+1)
		t := time.NewTimer(d)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
		backoff = min(backoff*2, w.maxBackoff)
	}
}

// serve runs one logged-in session until it breaks or ctx ends: it joins the watched
// rooms, reads presence, sends what the rooms need and reports to the Handler.
func (w *Watcher) serve(ctx context.Context, sess *xmpp.Session, lc *limitConn) error {
	cctx, cancel := context.WithCancel(ctx)
	defer cancel()
	c := &conn{
		w: w, sess: sess, lc: lc, ctx: cctx, hctx: ctx,
		rooms:   make(map[string]*roomState),
		outKick: make(chan struct{}, 1),
		repKick: make(chan struct{}, 1),
		pending: make(map[string][]Occupant),
	}
	stop := context.AfterFunc(cctx, func() {
		_ = sess.Close()
		_ = lc.Close()
	})
	defer stop()

	var wg sync.WaitGroup
	errc := make(chan error, 3)
	wg.Add(3)
	go func() { defer wg.Done(); errc <- c.sender() }()
	go func() { defer wg.Done(); c.reporter() }()
	go func() { defer wg.Done(); errc <- c.pinger() }()

	w.setConn(c, nil)
	for k, name := range w.watchedRooms() {
		c.join(k, name)
	}
	serveErr := sess.Serve(xmpp.HandlerFunc(func(r xmlstream.TokenReadEncoder, start *xml.StartElement) error {
		lc.refill()
		err := c.handle(r, start)
		lc.refill()
		return err
	}))
	c.close()
	cancel()
	_ = lc.Close()
	wg.Wait()
	close(errc)
	if serveErr == nil {
		for e := range errc {
			if e != nil && !errors.Is(e, context.Canceled) {
				serveErr = e
				break
			}
		}
	}
	if serveErr == nil {
		serveErr = errors.New("closed by the server")
	}
	return serveErr
}

// sender writes queued stanzas in order.
func (c *conn) sender() error {
	for {
		select {
		case <-c.ctx.Done():
			return nil
		case <-c.outKick:
		}
		for {
			c.mu.Lock()
			if len(c.out) == 0 {
				c.mu.Unlock()
				break
			}
			s := c.out[0]
			c.out = c.out[1:]
			c.mu.Unlock()
			ctx, cancel := context.WithTimeout(c.ctx, sendTimeout)
			err := c.sess.Send(ctx, s.TokenReader())
			cancel()
			if err != nil {
				c.kill()
				return fmt.Errorf("muc: failed to send presence to %s: %w", s.To, err)
			}
		}
	}
}

// pinger checks the server answers every pingInterval; a silent server ends the session.
func (c *conn) pinger() error {
	t := time.NewTicker(c.w.pingInterval)
	defer t.Stop()
	for {
		select {
		case <-c.ctx.Done():
			return nil
		case <-t.C:
		}
		ctx, cancel := context.WithTimeout(c.ctx, pingTimeout)
		err := ping.Send(ctx, c.sess, c.w.origin.Domain())
		cancel()
		if err != nil && c.ctx.Err() == nil {
			c.kill()
			return fmt.Errorf("muc: the server did not answer a ping: %w", err)
		}
		c.lc.refill() // the answer bypasses the handler
	}
}

// reporter calls the Handler with queued snapshots, one at a time, until the connection
// ends; what is still queued then is dropped.
func (c *conn) reporter() {
	for {
		select {
		case <-c.ctx.Done():
			return
		case <-c.repKick:
		}
		for {
			c.mu.Lock()
			if c.closed || len(c.order) == 0 {
				c.mu.Unlock()
				break
			}
			k := c.order[0]
			c.order = c.order[1:]
			occs := c.pending[k]
			delete(c.pending, k)
			r := c.rooms[k]
			c.mu.Unlock()
			if r == nil {
				continue
			}
			name := r.name
			zerolog.Ctx(c.ctx).Debug().Str("room", name).Int("occupants", len(occs)).Msg("reporting MUC occupants")
			c.w.h.Occupants(c.hctx, name, occs)
		}
	}
}

// kill ends the connection.
func (c *conn) kill() { _ = c.sess.Conn().Close() }

// occupantJID is room@mucDomain/nick.
func (c *conn) occupantJID(room, nick string) (jid.JID, error) {
	return jid.New(room, c.w.mucDomain.Domainpart(), nick)
}
