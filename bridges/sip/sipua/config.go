// Package sipua is the SIP transport of Switchboard's SIP bridge, built on
// github.com/emiago/sipgo: it binds the UDP/TCP/TLS listeners, checks every
// inbound request (trusted source, size, domain, headers, load) before a
// Handler sees it, sends out-of-dialog and in-dialog requests through the
// outbound proxy as single client transactions (answering one digest
// challenge), and keeps an optional registration alive.
//
// The package knows nothing about Matrix; the bridge glue in bridges/sip
// uses it through UA, Handler and Send.
//
// Life cycle: New validates the Config and does no I/O; Run binds, serves
// and, when its context ends, unregisters (best effort), closes every
// listener and connection and waits for running handlers.
package sipua

import (
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/emiago/sipgo/sip"
)

// Defaults applied by New to zero-valued Config fields.
const (
	DefaultMaxBodyBytes   = 64 << 10
	DefaultHandlerTimeout = 20 * time.Second
	DefaultMaxInFlight    = 64
	DefaultRegisterExpiry = time.Hour
	DefaultTCPIdleTimeout = 10 * time.Minute
	DefaultMaxConnections = 256
	DefaultUserAgent      = "Switchboard-SIP-bridge"
	// DefaultAccept lists the body types the bridge understands; sent in
	// the Accept header of OPTIONS answers.
	DefaultAccept = "text/plain, text/html, message/cpim, application/im-iscomposing+xml, message/imdn+xml, application/pidf+xml"

	// maxHeaderBytes is what a message may carry besides its body; sipgo's
	// parser limit is MaxBodyBytes+maxHeaderBytes, so a body slightly over
	// MaxBodyBytes still parses and gets a 413 instead of silence.
	maxHeaderBytes = 16 << 10
	maxBodyLimit   = 1 << 20
)

// Listener is one socket the UA binds.
type Listener struct {
	Transport string // udp|tcp|tls
	Addr      string // host:port, port 0 = any
	CertFile  string // PEM certificate chain; tls only, required there
	KeyFile   string // PEM private key; tls only, required there
}

// Register asks the UA to register AOR at the proxy and keep it registered.
type Register struct {
	AOR      string // "sip:bridge@example.org" or "bridge@example.org"
	Username string // digest user name; default the AOR's user part
	Password string // digest password; never logged
	Expires  time.Duration
}

// Config configures a UA. Key paths in validation errors use the YAML
// spelling (snake_case) of the bridge configuration.
type Config struct {
	Domain string     // the bridge's SIP domain (Request-URI host of out-of-dialog requests)
	Listen []Listener // at least one
	// Proxy is the SIP URI of the outbound proxy, e.g.
	// "sip:127.0.0.1:5060;transport=tcp". Every request is sent there.
	Proxy string
	// CAFile adds PEM roots to the system's for outgoing TLS.
	CAFile string
	// TrustedPeers are the IPs/CIDRs allowed to send requests; empty = the
	// IPs the proxy's host resolves to (resolved in Run).
	TrustedPeers   []string
	Register       *Register     // may be nil: no registration, no digest credentials
	MaxBodyBytes   int           // default 64 KiB, at most 1 MiB
	HandlerTimeout time.Duration // default 20 s
	MaxInFlight    int           // default 64: more concurrent requests -> 503 Retry-After
	UserAgent      string        // User-Agent header; default DefaultUserAgent
	Contact        string        // host:port advertised in Contact; default the first listener's bound address

	// Added beyond the shared contract:
	Accept         string        // Accept header of OPTIONS answers; default DefaultAccept
	TCPIdleTimeout time.Duration // an inbound TCP/TLS connection silent this long is closed; default 10 min
	MaxConnections int           // inbound TCP/TLS connections per listener; more are closed at accept; default 256
}

// proxyTarget is the parsed Config.Proxy.
type proxyTarget struct {
	uri       sip.Uri // immutable after New
	transport string  // "UDP", "TCP" or "TLS"
	hostPort  string  // destination host:port
}

func (c *Config) setDefaults() {
	if c.MaxBodyBytes == 0 {
		c.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if c.HandlerTimeout == 0 {
		c.HandlerTimeout = DefaultHandlerTimeout
	}
	if c.MaxInFlight == 0 {
		c.MaxInFlight = DefaultMaxInFlight
	}
	if c.UserAgent == "" {
		c.UserAgent = DefaultUserAgent
	}
	if c.Accept == "" {
		c.Accept = DefaultAccept
	}
	if c.TCPIdleTimeout == 0 {
		c.TCPIdleTimeout = DefaultTCPIdleTimeout
	}
	if c.MaxConnections == 0 {
		c.MaxConnections = DefaultMaxConnections
	}
	if c.Register != nil && c.Register.Expires == 0 {
		c.Register.Expires = DefaultRegisterExpiry
	}
}

// validate returns every problem with its key path, or nil.
func (c *Config) validate() (proxyTarget, []*net.IPNet, error) {
	var problems []string
	add := func(key, format string, args ...any) {
		problems = append(problems, key+": "+fmt.Sprintf(format, args...))
	}
	if c.Domain == "" {
		add("domain", "required")
	} else if !validHost(c.Domain) {
		add("domain", "%q is not a host name", c.Domain)
	}
	if len(c.Listen) == 0 {
		add("listen", "at least one listener is required")
	}
	for i, l := range c.Listen {
		key := fmt.Sprintf("listen[%d]", i)
		switch l.Transport {
		case "udp", "tcp", "tls":
		case "":
			add(key+".transport", "required (udp, tcp or tls)")
		default:
			add(key+".transport", "%q is not udp, tcp or tls", l.Transport)
		}
		if err := checkHostPort(l.Addr, true); err != nil {
			add(key+".address", "%v", err)
		}
		if l.Transport == "tls" {
			if l.CertFile == "" {
				add(key+".cert_file", "required for transport tls")
			}
			if l.KeyFile == "" {
				add(key+".key_file", "required for transport tls")
			}
		} else if l.CertFile != "" || l.KeyFile != "" {
			add(key+".cert_file", "only for transport tls")
		}
	}
	proxy, err := parseProxy(c.Proxy)
	if err != nil {
		add("proxy", "%v", err)
	}
	var nets []*net.IPNet
	for i, p := range c.TrustedPeers {
		n, err := parsePeer(p)
		if err != nil {
			add(fmt.Sprintf("trusted_peers[%d]", i), "%v", err)
			continue
		}
		nets = append(nets, n)
	}
	if r := c.Register; r != nil {
		if r.AOR == "" {
			add("register.aor", "required")
		} else if _, err := parseAOR(r.AOR); err != nil {
			add("register.aor", "%v", err)
		}
		if r.Expires < 10*time.Second {
			add("register.expires", "%s is too short (at least 10s)", r.Expires)
		}
		if r.Expires > 24*time.Hour {
			add("register.expires", "%s is too long (at most 24h)", r.Expires)
		}
	}
	if c.MaxBodyBytes < 0 || c.MaxBodyBytes > maxBodyLimit {
		add("max_body_bytes", "%d is out of range (1 to %d)", c.MaxBodyBytes, maxBodyLimit)
	}
	if c.HandlerTimeout < 0 {
		add("handler_timeout", "must not be negative")
	}
	if c.MaxInFlight < 0 {
		add("max_in_flight", "must not be negative")
	}
	if c.TCPIdleTimeout < 0 {
		add("tcp_idle_timeout", "must not be negative")
	}
	if c.MaxConnections < 0 {
		add("max_connections", "must not be negative")
	}
	if c.Contact != "" {
		if err := checkHostPort(c.Contact, false); err != nil {
			add("contact", "%v", err)
		}
	}
	if strings.ContainsAny(c.UserAgent, "\r\n") {
		add("user_agent", "must be one line")
	}
	if strings.ContainsAny(c.Accept, "\r\n") {
		add("accept", "must be one line")
	}
	if len(problems) > 0 {
		return proxyTarget{}, nil, fmt.Errorf("%w: %s", ErrConfig, strings.Join(problems, "; "))
	}
	return proxy, nets, nil
}

func validHost(h string) bool {
	if h == "" || len(h) > 253 {
		return false
	}
	if net.ParseIP(strings.Trim(h, "[]")) != nil {
		return true
	}
	for _, r := range h {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '-', r == '.':
		default:
			return false
		}
	}
	return true
}

func checkHostPort(s string, allowZero bool) error {
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		return fmt.Errorf("%q is not host:port: %w", s, err)
	}
	if host != "" && !validHost(host) {
		return fmt.Errorf("%q: bad host", s)
	}
	p, err := strconv.Atoi(port)
	if err != nil || p < 0 || p > 65535 || (p == 0 && !allowZero) {
		return fmt.Errorf("%q: bad port", s)
	}
	return nil
}

func parseProxy(s string) (proxyTarget, error) {
	if s == "" {
		return proxyTarget{}, errors.New("required (e.g. \"sip:127.0.0.1:5060;transport=tcp\")")
	}
	var u sip.Uri
	if err := sip.ParseUri(s, &u); err != nil {
		return proxyTarget{}, fmt.Errorf("%q is not a SIP URI: %w", s, err)
	}
	scheme := strings.ToLower(u.Scheme)
	if scheme != "sip" && scheme != "sips" {
		return proxyTarget{}, fmt.Errorf("%q: scheme must be sip or sips", s)
	}
	if u.Host == "" || !validHost(u.Host) {
		return proxyTarget{}, fmt.Errorf("%q: bad host", s)
	}
	if u.User != "" {
		return proxyTarget{}, fmt.Errorf("%q: a proxy URI has no user part", s)
	}
	tp := "UDP"
	if v, ok := u.UriParams.Get("transport"); ok {
		switch strings.ToLower(v) {
		case "udp":
			tp = "UDP"
		case "tcp":
			tp = "TCP"
		case "tls":
			tp = "TLS"
		default:
			return proxyTarget{}, fmt.Errorf("%q: transport %q is not udp, tcp or tls", s, v)
		}
	}
	if scheme == "sips" {
		if tp == "UDP" && u.UriParams.Has("transport") {
			return proxyTarget{}, fmt.Errorf("%q: sips needs transport tls", s)
		}
		tp = "TLS"
	}
	port := u.Port
	if port == 0 {
		port = 5060
		if tp == "TLS" {
			port = 5061
		}
	}
	return proxyTarget{uri: u, transport: tp, hostPort: net.JoinHostPort(strings.Trim(u.Host, "[]"), strconv.Itoa(port))}, nil
}

func parsePeer(s string) (*net.IPNet, error) {
	if strings.Contains(s, "/") {
		_, n, err := net.ParseCIDR(s)
		if err != nil {
			return nil, fmt.Errorf("%q is not an IP or CIDR", s)
		}
		return n, nil
	}
	ip := net.ParseIP(s)
	if ip == nil {
		return nil, fmt.Errorf("%q is not an IP or CIDR", s)
	}
	return ipNet(ip), nil
}

func ipNet(ip net.IP) *net.IPNet {
	if v4 := ip.To4(); v4 != nil {
		return &net.IPNet{IP: v4, Mask: net.CIDRMask(32, 32)}
	}
	return &net.IPNet{IP: ip, Mask: net.CIDRMask(128, 128)}
}

// parseAOR accepts "sip:user@host", "sips:user@host", "<sip:...>" and
// "user@host"; the user part is required.
func parseAOR(s string) (sip.Uri, error) {
	s = strings.TrimSuffix(strings.TrimPrefix(strings.TrimSpace(s), "<"), ">")
	if !strings.HasPrefix(strings.ToLower(s), "sip:") && !strings.HasPrefix(strings.ToLower(s), "sips:") {
		s = "sip:" + s
	}
	var u sip.Uri
	if err := sip.ParseUri(s, &u); err != nil {
		return sip.Uri{}, fmt.Errorf("%q is not a SIP address: %w", s, err)
	}
	if u.User == "" || u.Host == "" {
		return sip.Uri{}, fmt.Errorf("%q: user and host are required", s)
	}
	return u, nil
}
