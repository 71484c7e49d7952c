package muc

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sync/atomic"

	"mellium.im/sasl"
	"mellium.im/xmpp"
)

// connBudget is how many bytes the server may send between two stanzas handled (or
// ping answers, or during login) before the connection is dropped: it bounds what one
// hostile stanza, read whole by the XML decoder, can make us buffer. Prosody's own c2s
// stanza limit is 256 KiB.
const connBudget = 256<<10 + 64<<10

// limitConn is a net.Conn whose reads fail once budget bytes were read since the last
// refill.
type limitConn struct {
	net.Conn
	left atomic.Int64
}

var errBudget = fmt.Errorf("%w: the server sent more than %d bytes in one stanza", errTooLarge, connBudget)

func (c *limitConn) Read(p []byte) (int, error) {
	if c.left.Load() <= 0 {
		return 0, errBudget
	}
	n, err := c.Conn.Read(p)
	c.left.Add(-int64(n))
	return n, err
}

// refill gives the server a fresh budget (after each stanza).
func (c *limitConn) refill() { c.left.Store(connBudget) }

// dial connects to the server and logs in, with a verified TLS unless cfg.TLS is "none".
func (w *Watcher) dial(ctx context.Context) (*xmpp.Session, *limitConn, error) {
	ctx, cancel := context.WithTimeout(ctx, connectTimeout)
	defer cancel()
	var tlsCfg *tls.Config
	if w.cfg.TLS != TLSNone {
		var err error
		if tlsCfg, err = w.tlsConfig(); err != nil {
			return nil, nil, err
		}
	}
	raw, err := (&net.Dialer{}).DialContext(ctx, "tcp", w.cfg.Address)
	if err != nil {
		return nil, nil, fmt.Errorf("muc: failed to connect to %s: %w", w.cfg.Address, err)
	}
	if w.cfg.TLS == TLSNone {
		// The name was checked in New; the address actually reached is checked here.
		if a, ok := raw.RemoteAddr().(*net.TCPAddr); !ok || !a.IP.IsLoopback() {
			raw.Close()
			return nil, nil, fmt.Errorf("%w: tls \"none\" but %s is not a loopback address", ErrConfig, raw.RemoteAddr())
		}
	}
	lc := &limitConn{Conn: raw}
	lc.refill()
	var rw io.ReadWriter = lc
	var state xmpp.SessionState
	features := []xmpp.StreamFeature{}
	switch w.cfg.TLS {
	case TLSNone:
		state = xmpp.Secure // lets mellium offer PLAIN on loopback
	case TLSDirect:
		tc := tls.Client(lc, tlsCfg)
		if err := tc.HandshakeContext(ctx); err != nil {
			raw.Close()
			return nil, nil, fmt.Errorf("%w: with %s: %w", ErrTLS, w.cfg.Address, err)
		}
		rw = tc
	default:
		features = append(features, tlsFeature(tlsCfg))
	}
	features = append(features, authFeature(w.cfg.Password), xmpp.BindResource())
	sess, err := xmpp.NewSession(ctx, w.origin.Domain(), w.origin, rw, state, xmpp.NewNegotiator(func(*xmpp.Session, *xmpp.StreamConfig) xmpp.StreamConfig {
		return xmpp.StreamConfig{Features: features}
	}))
	if err != nil {
		raw.Close()
		if ctx.Err() != nil && !errors.Is(err, ErrAuth) {
			err = fmt.Errorf("%w (%w)", ctx.Err(), err)
		}
		return nil, nil, fmt.Errorf("muc: failed to log in as %s at %s: %w", w.origin, w.cfg.Address, err)
	}
	if sess.State()&xmpp.Ready == 0 || sess.State()&xmpp.Authn == 0 || w.cfg.TLS == TLSStartTLS && sess.ConnectionState().Version == 0 {
		sess.Close()
		raw.Close()
		return nil, nil, fmt.Errorf("%w: the session with %s was not secured and authenticated", ErrTLS, w.cfg.Address)
	}
	return sess, lc, nil
}

// tlsConfig is the verified client TLS config: system roots plus CAFile.
func (w *Watcher) tlsConfig() (*tls.Config, error) {
	name := w.cfg.ServerName
	if name == "" {
		name = w.origin.Domain().String()
	}
	cfg := &tls.Config{ServerName: name, MinVersion: tls.VersionTLS12}
	if w.cfg.CAFile != "" {
		pem, err := os.ReadFile(w.cfg.CAFile)
		if err != nil {
			return nil, fmt.Errorf("%w: failed to read the CA file: %w", ErrTLS, err)
		}
		pool, err := x509.SystemCertPool()
		if err != nil || pool == nil {
			pool = x509.NewCertPool()
		}
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("%w: no certificate in the CA file %s", ErrTLS, w.cfg.CAFile)
		}
		cfg.RootCAs = pool
	}
	return cfg, nil
}

// tlsFeature is StartTLS (required: without it SASL is never offered, as mellium offers
// SASL only on a secure stream) with handshake errors marked ErrTLS.
func tlsFeature(cfg *tls.Config) xmpp.StreamFeature {
	f := xmpp.StartTLS(cfg)
	negotiate := f.Negotiate
	f.Negotiate = func(ctx context.Context, s *xmpp.Session, data any) (xmpp.SessionState, io.ReadWriter, error) {
		mask, rw, err := negotiate(ctx, s, data)
		if err != nil {
			return mask, rw, fmt.Errorf("%w: %w", ErrTLS, err)
		}
		if tc, ok := rw.(*tls.Conn); ok {
			// mellium handshakes lazily; do it now so that a bad certificate is named.
			if err := tc.HandshakeContext(ctx); err != nil {
				return mask, rw, fmt.Errorf("%w: %w", ErrTLS, err)
			}
		}
		return mask, rw, nil
	}
	return f
}

// authFeature is SASL (SCRAM preferred, PLAIN on a secure stream) with a refusal marked
// ErrAuth. The password is in the closure only.
func authFeature(password string) xmpp.StreamFeature {
	f := xmpp.SASL("", password, sasl.ScramSha256, sasl.ScramSha1, sasl.Plain)
	negotiate := f.Negotiate
	f.Negotiate = func(ctx context.Context, s *xmpp.Session, data any) (xmpp.SessionState, io.ReadWriter, error) {
		mask, rw, err := negotiate(ctx, s, data)
		if err != nil {
			var ne net.Error
			if !errors.As(err, &ne) && !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) {
				err = fmt.Errorf("%w: %w", ErrAuth, err)
			}
			return mask, rw, err
		}
		return mask, rw, nil
	}
	return f
}
