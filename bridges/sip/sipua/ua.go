package sipua

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
	"github.com/google/uuid"
	"github.com/rs/zerolog"
)

// UA is the bridge's SIP user agent: listeners, inbound checks, outbound
// transactions through the proxy and the registration.
type UA struct {
	cfg     Config       // immutable after New
	h       Handler      // immutable
	proxy   proxyTarget  // immutable
	nets    []*net.IPNet // configured trusted peers; immutable; empty = resolve the proxy in Run
	parser  *sip.Parser  // immutable; shared by listeners and parseInbound
	ready   chan struct{}
	ran     atomic.Bool
	sem     chan struct{} // MaxInFlight slots
	regCall string        // Call-ID of all REGISTERs; immutable

	mu       sync.Mutex
	running  *runState         // guarded by mu; nil before Run bound and after it stopped
	addrs    map[string]string // guarded by mu; transport -> bound host:port
	stopping bool              // guarded by mu; no new handler starts once set
	handlers sync.WaitGroup    // running handlers; Add only under mu while !stopping
	regOK    bool              // guarded by mu
	regErr   error             // guarded by mu
	regCSeq  uint32            // guarded by mu
}

// runState is what Send needs while Run serves.
type runState struct {
	client    *sipgo.Client
	contact   sip.Uri   // our Contact URI (host:port;transport=x)
	udpLaddr  *sip.Addr // local UDP listener to send from when the proxy is UDP; may be nil
	transport string    // proxy transport
}

// New validates cfg, fills in defaults and returns a UA. It does no I/O.
func New(cfg Config, h Handler) (*UA, error) {
	if h == nil {
		return nil, fmt.Errorf("%w: handler: required", ErrConfig)
	}
	cfg.Listen = append([]Listener(nil), cfg.Listen...)
	cfg.TrustedPeers = append([]string(nil), cfg.TrustedPeers...)
	if cfg.Register != nil {
		r := *cfg.Register
		cfg.Register = &r
	}
	cfg.setDefaults()
	proxy, nets, err := cfg.validate()
	if err != nil {
		return nil, err
	}
	if cfg.Contact == "" {
		host, _, _ := net.SplitHostPort(cfg.Listen[0].Addr)
		if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
			return nil, fmt.Errorf("%w: contact: required when listen[0].addr has no specific host", ErrConfig)
		}
	}
	parser := sip.NewParser()
	parser.MaxMessageLength = cfg.MaxBodyBytes + maxHeaderBytes
	return &UA{
		cfg:     cfg,
		h:       h,
		proxy:   proxy,
		nets:    nets,
		parser:  parser,
		ready:   make(chan struct{}),
		sem:     make(chan struct{}, cfg.MaxInFlight),
		regCall: uuid.NewString(),
	}, nil
}

// Ready is closed once every listener is bound. It is never closed when
// Run fails before that, so wait for it together with Run's result.
func (u *UA) Ready() <-chan struct{} { return u.ready }

// Addrs returns the bound address per transport ("udp", "tcp", "tls";
// the first listener of each). Empty before Ready.
func (u *UA) Addrs() map[string]string {
	u.mu.Lock()
	defer u.mu.Unlock()
	m := make(map[string]string, len(u.addrs))
	for k, v := range u.addrs {
		m[k] = v
	}
	return m
}

// Status reports whether the registration is current and the last
// registration error (nil after a success). Without Config.Register it
// reports false, nil.
func (u *UA) Status() (registered bool, lastErr error) {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.regOK, u.regErr
}

// Contact returns the UA's Contact URI ("sip:192.0.2.1:5060;transport=tcp"),
// or "" when it is not running. Added beyond the shared contract.
func (u *UA) Contact() string {
	st := u.state()
	if st == nil {
		return ""
	}
	return st.contact.String()
}

func (u *UA) state() *runState {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.running
}

type boundListener struct {
	transport string
	addr      string
	pc        net.PacketConn // udp
	ln        net.Listener   // tcp, tls
}

func (b *boundListener) close() {
	if b.pc != nil {
		_ = b.pc.Close()
	}
	if b.ln != nil {
		_ = b.ln.Close()
	}
}

// Run binds every listener, registers when configured, serves until ctx
// ends and then unregisters (best effort), closes everything and waits for
// running handlers. Its zerolog logger (zerolog.Ctx(ctx)) is used for all
// logs, sipgo's included. Run may be called once.
func (u *UA) Run(ctx context.Context) error {
	if !u.ran.CompareAndSwap(false, true) {
		return ErrAlreadyRan
	}
	if sip.SIPDebug {
		return errors.New("sipua: sip.SIPDebug is set; sipgo would dump SIP messages with their bodies to stderr")
	}
	log := zerolog.Ctx(ctx).With().Str("component", "sipua").Logger()
	ctx = log.WithContext(ctx)
	slogger := newSlogLogger(&log)
	processLog.Store(&log)

	clientTLS, err := u.clientTLSConfig()
	if err != nil {
		return err
	}
	nets := u.nets
	if len(nets) == 0 {
		if nets, err = u.resolveProxy(ctx); err != nil {
			return err
		}
	}

	sipUA, err := sipgo.NewUA(
		sipgo.WithUserAgent(u.cfg.UserAgent),
		sipgo.WithUserAgentHostname(u.cfg.Domain),
		sipgo.WithUserAgenTLSConfig(clientTLS),
		sipgo.WithUserAgentParser(u.parser),
		sipgo.WithUserAgentTransactionLayerOptions(
			sip.WithTransactionLayerLogger(slogger),
			sip.WithTransactionLayerUnhandledResponseHandler(func(*sip.Response) {}),
		),
		sipgo.WithUserAgentTransportLayerOptions(sip.WithTransportLayerLogger(slogger)),
	)
	if err != nil {
		return fmt.Errorf("sipua: create sipgo user agent: %w", err)
	}
	defer sipUA.Close()
	srv, err := sipgo.NewServer(sipUA, sipgo.WithServerLogger(slogger))
	if err != nil {
		return fmt.Errorf("sipua: create sipgo server: %w", err)
	}
	client, err := sipgo.NewClient(sipUA, sipgo.WithClientLogger(slogger))
	if err != nil {
		return fmt.Errorf("sipua: create sipgo client: %w", err)
	}

	runCtx, cancelRun := context.WithCancel(ctx)
	defer cancelRun()
	serve := func(req *sip.Request, tx sip.ServerTransaction) { u.serve(runCtx, nets, req, tx) }
	for _, m := range []sip.RequestMethod{sip.MESSAGE, sip.SUBSCRIBE, sip.NOTIFY, sip.OPTIONS} {
		srv.OnRequest(m, serve)
	}
	srv.OnNoRoute(serve)

	bound, err := u.bind(ctx)
	if err != nil {
		return err
	}
	defer func() {
		for _, b := range bound {
			b.close()
		}
	}()

	st := &runState{client: client, transport: u.proxy.transport}
	st.contact, st.udpLaddr = u.contactFor(bound)
	addrs := map[string]string{}
	for _, b := range bound {
		if _, ok := addrs[b.transport]; !ok {
			addrs[b.transport] = b.addr
		}
	}
	u.mu.Lock()
	u.addrs = addrs
	u.running = st
	u.mu.Unlock()

	// sipgo puts a UDP listener into its connection pool only once its
	// Serve goroutine runs; Send may come first and must find it (it sends
	// from the listener), so it goes into the pool now. Serve replaces it
	// with its own wrapper of the same socket.
	for _, b := range bound {
		if b.transport == "udp" {
			sipUA.TransportLayer().Pool("udp").Add(b.addr, &sip.UDPConnection{PacketConn: b.pc, PacketAddr: b.addr, Listener: true})
		}
	}
	errc := make(chan error, len(bound))
	var serving sync.WaitGroup
	for _, b := range bound {
		serving.Add(1)
		go func() {
			defer serving.Done()
			var err error
			switch b.transport {
			case "udp":
				err = srv.ServeUDP(b.pc)
			case "tcp":
				err = srv.ServeTCP(b.ln)
			case "tls":
				err = srv.ServeTLS(b.ln)
			}
			if err != nil && !errors.Is(err, net.ErrClosed) {
				errc <- fmt.Errorf("sipua: serve %s %s: %w", b.transport, b.addr, err)
			}
		}()
	}
	log.Info().Interface("addrs", addrs).Str("domain", u.cfg.Domain).Msg("SIP listeners bound")
	close(u.ready)

	regCtx, cancelReg := context.WithCancel(ctx)
	regDone := make(chan struct{})
	if u.cfg.Register != nil {
		go func() {
			defer close(regDone)
			u.registerLoop(regCtx)
		}()
	} else {
		close(regDone)
	}

	var runErr error
	select {
	case <-ctx.Done():
	case runErr = <-errc:
		log.Error().Err(runErr).Msg("SIP listener failed; stopping")
	}

	// Shutdown: unregister while the transport is still up, refuse new
	// handlers, let running ones finish (their ctx is cancelled), then close.
	cancelReg()
	<-regDone
	u.mu.Lock()
	u.stopping = true
	u.mu.Unlock()
	cancelRun()
	u.handlers.Wait()
	u.mu.Lock()
	u.running = nil
	u.mu.Unlock()
	for _, b := range bound {
		b.close()
	}
	_ = sipUA.Close()
	serving.Wait()
	log.Info().Msg("SIP listeners closed")
	return runErr
}

// bind opens every listener; on failure it closes what it opened.
func (u *UA) bind(ctx context.Context) ([]*boundListener, error) {
	var lc net.ListenConfig
	var bound []*boundListener
	fail := func(i int, err error) ([]*boundListener, error) {
		for _, b := range bound {
			b.close()
		}
		l := u.cfg.Listen[i]
		return nil, fmt.Errorf("sipua: listen[%d] (%s %s): %w", i, l.Transport, l.Addr, err)
	}
	for i, l := range u.cfg.Listen {
		switch l.Transport {
		case "udp":
			pc, err := lc.ListenPacket(ctx, "udp", l.Addr)
			if err != nil {
				return fail(i, err)
			}
			bound = append(bound, &boundListener{transport: "udp", addr: pc.LocalAddr().String(), pc: pc})
		case "tcp", "tls":
			var conf *tls.Config
			if l.Transport == "tls" {
				cert, err := tls.LoadX509KeyPair(l.CertFile, l.KeyFile)
				if err != nil {
					return fail(i, fmt.Errorf("load certificate: %w", err))
				}
				conf = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
			}
			ln, err := lc.Listen(ctx, "tcp", l.Addr)
			if err != nil {
				return fail(i, err)
			}
			b := &boundListener{transport: l.Transport, addr: ln.Addr().String()}
			b.ln = newLimitListener(ln, u.cfg.MaxConnections, u.cfg.TCPIdleTimeout)
			if conf != nil {
				b.ln = tls.NewListener(b.ln, conf)
			}
			bound = append(bound, b)
		}
	}
	return bound, nil
}

// contactFor returns our Contact URI and, when the proxy is reached over
// UDP, the bound UDP listener to send from (so that the proxy sees one
// address for requests and responses).
func (u *UA) contactFor(bound []*boundListener) (sip.Uri, *sip.Addr) {
	// Prefer a listener of the proxy's transport: the proxy reaches us as we reach it.
	first := bound[0]
	for _, b := range bound {
		if strings.EqualFold(b.transport, u.proxy.transport) {
			first = b
			break
		}
	}
	hostPort := u.cfg.Contact
	if hostPort == "" {
		hostPort = first.addr
	}
	host, portStr, _ := net.SplitHostPort(hostPort)
	port, _ := strconv.Atoi(portStr)
	contact := sip.Uri{Scheme: "sip", Host: host, Port: port, UriParams: sip.HeaderParams{}}
	if strings.Contains(host, ":") {
		contact.Host = "[" + host + "]"
	}
	contact.UriParams.Add("transport", first.transport)
	var laddr *sip.Addr
	if u.proxy.transport == "UDP" {
		for _, b := range bound {
			if b.transport != "udp" {
				continue
			}
			h, p, _ := net.SplitHostPort(b.addr)
			ip := net.ParseIP(h)
			port, _ := strconv.Atoi(p)
			if ip != nil && !ip.IsUnspecified() {
				laddr = &sip.Addr{IP: ip, Port: port, Hostname: h}
			}
			break
		}
	}
	return contact, laddr
}

// resolveProxy gives the default trusted peers: the proxy host's IPs.
func (u *UA) resolveProxy(ctx context.Context) ([]*net.IPNet, error) {
	host := strings.Trim(u.proxy.uri.Host, "[]")
	if ip := net.ParseIP(host); ip != nil {
		return []*net.IPNet{ipNet(ip)}, nil
	}
	ips, err := net.DefaultResolver.LookupIPAddr(ctx, host)
	if err != nil {
		return nil, fmt.Errorf("sipua: resolve proxy host %q for the trusted peers: %w", host, err)
	}
	var nets []*net.IPNet
	for _, ip := range ips {
		nets = append(nets, ipNet(ip.IP))
	}
	return nets, nil
}
