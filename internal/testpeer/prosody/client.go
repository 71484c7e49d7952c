package prosody

import (
	"context"
	"fmt"
	"net"

	"mellium.im/sasl"
	"mellium.im/xmpp"
	"mellium.im/xmpp/jid"
)

// DialClient logs user@Domain in over the c2s port with SASL PLAIN and binds a resource,
// as an independent XMPP client in a test. The plain loopback connection is declared
// Secure so that mellium offers PLAIN. The caller serves the session (Serve) and closes it.
func (s *Server) DialClient(ctx context.Context, user, password string) (*xmpp.Session, error) {
	conn, err := (&net.Dialer{}).DialContext(ctx, "tcp", s.C2SAddr)
	if err != nil {
		return nil, fmt.Errorf("prosody: failed to dial the c2s port: %w", err)
	}
	origin, err := jid.New(user, s.Domain, "")
	if err != nil {
		conn.Close()
		return nil, fmt.Errorf("prosody: invalid user %q: %w", user, err)
	}
	sess, err := xmpp.NewSession(ctx, origin.Domain(), origin, conn, xmpp.Secure, xmpp.NewNegotiator(func(*xmpp.Session, *xmpp.StreamConfig) xmpp.StreamConfig {
		return xmpp.StreamConfig{Features: []xmpp.StreamFeature{
			xmpp.SASL("", password, sasl.Plain),
			xmpp.BindResource(),
		}}
	}))
	if err != nil {
		conn.Close()
		return nil, fmt.Errorf("prosody: failed to log in as %s: %w", origin, err)
	}
	return sess, nil
}
