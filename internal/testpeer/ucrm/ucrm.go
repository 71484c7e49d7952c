// Package ucrm is a fake UCRM (UCRI2 Control Room Module) for the tests of the 116117
// case-handover bot. It serves the UCRM Client API of UCRI 2.0 (api/crm/2.0.0,
// ucrm-client.yaml) over real HTTP on 127.0.0.1: OAuth-style tokens from /token, sending
// with schema, app-schema and signature checks, per-destination FIFO queues with sequence
// IDs, long-poll receiving, commits, delivery-status messages (transport_layer_messages
// 1.0), the participant registry and /info.
//
// It is written independently of bots/case116117/ucri, from the specification, so that the
// bot and the fake check each other. It imports only the embedded official files
// (ucri/spec). Everything stays in memory: Stop models an outage (listener and connections
// closed, queues kept), Restart brings the same address back.
//
// Besides the API it offers test controls (Inject, SetAvailability, FailNext, ExpireNow,
// ExpireTokens, Sent, Queue, Committed, Requests) and Peer, an HTTP client that plays
// another dispatch centre.
package ucrm

import (
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"
)

// Participant is a dispatch centre connected to the UCRM (a "client" in the registry).
type Participant struct {
	OID          string // the participant's address; also the token subject
	Username     string // HTTP Basic user name for /token
	Password     string // HTTP Basic password for /token
	SystemName   string // default "System <OID>"
	OperatorName string // default "Leitstelle <OID>"
	ShortName    string // operatorShortName; default "LS <OID>"
	// Key verifies the participant's signatures and is published in the registry; may be nil.
	Key *rsa.PublicKey
	// TransmitsUnsigned is published as transmitsUnsignedMessages; when true (or Key is nil)
	// sends without a signature are accepted.
	TransmitsUnsigned bool
	Status            string // "online" (default), "offline" or "unknown"
}

// Options configure a Server; the zero value is usable.
type Options struct {
	OID                 string        // the UCRM's own OID, source of its messages; default "1.2.3.9"
	Addr                string        // where to listen; default a free port of 127.0.0.1
	TokenTTL            time.Duration // lifetime of tokens; default 10 minutes
	BasePath            string        // default "/ucrm/client/v0"
	DeliveryTimeoutTick time.Duration // how often message timeouts are checked; default 1 s
	// Now is the clock for tokens, sentDate and message timeouts; default time.Now.
	Now func() time.Time
	// Logf, if set, gets one line per rejected request (e.g. t.Logf); may be nil.
	Logf func(format string, args ...any)
}

// Server is the fake UCRM. Its methods are safe for concurrent use.
type Server struct {
	opts Options // immutable after New

	mu           sync.Mutex
	participants []*Participant               // guarded by mu; in order of AddParticipant
	secret       []byte                       // guarded by mu; HS256 key of tokens, replaced by ExpireTokens
	queues       map[string]*queue            // guarded by mu; destination OID → queue
	accepted     map[string][]byte            // guarded by mu; source+"\x00"+messageId → SenderResponse
	sent         map[string][]json.RawMessage // guarded by mu; source → accepted SenderResponses
	requests     map[string]int               // guarded by mu; path below BasePath → count
	failures     map[string]failure           // guarded by mu; path below BasePath → pending faults
	holds        map[string]*Hold             // guarded by mu; path below BasePath → next request to hold
	addr         string                       // guarded by mu; "127.0.0.1:port" once started
	run          *run                         // guarded by mu; nil while stopped
	closed       bool                         // guarded by mu
	peers        []*Peer                      // guarded by mu; their idle connections end at Stop

	// lifecycle serializes Start and Stop.
	lifecycle sync.Mutex
}

type failure struct {
	n      int
	status int
}

// run is one period between Start and Stop.
type run struct {
	srv     *http.Server
	stop    chan struct{} // closed by Stop: long-polls end
	done    sync.WaitGroup
	mu      sync.Mutex
	closing bool           // guarded by mu
	active  sync.WaitGroup // handlers in flight; Add only under mu while !closing
}

// New returns a stopped Server with no participants. It does no I/O.
func New(opts Options) *Server {
	if opts.OID == "" {
		opts.OID = "1.2.3.9"
	}
	if opts.TokenTTL <= 0 {
		opts.TokenTTL = 10 * time.Minute
	}
	if opts.BasePath == "" {
		opts.BasePath = "/ucrm/client/v0"
	}
	opts.BasePath = "/" + strings.Trim(opts.BasePath, "/")
	if opts.DeliveryTimeoutTick <= 0 {
		opts.DeliveryTimeoutTick = time.Second
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	return &Server{
		opts:     opts,
		secret:   newSecret(),
		queues:   map[string]*queue{},
		accepted: map[string][]byte{},
		sent:     map[string][]json.RawMessage{},
		requests: map[string]int{},
		failures: map[string]failure{},
	}
}

func newSecret() []byte {
	b := make([]byte, 32)
	_, _ = rand.Read(b) // never fails on supported platforms
	return b
}

// OID returns the UCRM's own OID.
func (s *Server) OID() string { return s.opts.OID }

// AddParticipant registers p, or replaces the participant with the same OID (its queue
// stays). It may be called while the server runs.
func (s *Server) AddParticipant(p Participant) {
	if p.Status == "" {
		p.Status = "online"
	}
	if p.SystemName == "" {
		p.SystemName = "System " + p.OID
	}
	if p.OperatorName == "" {
		p.OperatorName = "Leitstelle " + p.OID
	}
	if p.ShortName == "" {
		p.ShortName = "LS " + p.OID
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for i, q := range s.participants {
		if q.OID == p.OID {
			s.participants[i] = &p
			return
		}
	}
	s.participants = append(s.participants, &p)
}

// participant returns the registered participant with oid, or nil. s.mu must be held.
func (s *Server) participant(oid string) *Participant {
	for _, p := range s.participants {
		if p.OID == oid {
			return p
		}
	}
	return nil
}

// Start listens on Options.Addr or 127.0.0.1 (a free port the first time, the same address
// afterwards)
// and serves until Stop. It fails if the server runs or was closed.
func (s *Server) Start() error {
	if _, err := loadSchemas(); err != nil {
		return err
	}
	s.lifecycle.Lock()
	defer s.lifecycle.Unlock()
	s.mu.Lock()
	closed, running, addr := s.closed, s.run != nil, s.addr
	s.mu.Unlock()
	if addr == "" {
		addr = s.opts.Addr
	}
	switch {
	case closed:
		return errors.New("ucrm: the server is closed")
	case running:
		return errors.New("ucrm: the server is already running")
	}
	ln, err := listen(addr)
	if err != nil {
		return err
	}
	r := &run{stop: make(chan struct{})}
	r.srv = &http.Server{Handler: s.handler(r), ReadHeaderTimeout: 10 * time.Second}
	s.mu.Lock()
	s.addr = ln.Addr().String()
	s.run = r
	s.mu.Unlock()
	r.done.Add(2)
	go func() {
		defer r.done.Done()
		_ = r.srv.Serve(ln) // ends with ErrServerClosed at Stop
	}()
	go func() {
		defer r.done.Done()
		s.sweep(r.stop)
	}()
	return nil
}

// listen binds addr, or a free port of 127.0.0.1 when addr is empty. A port that was just
// released may take a moment to be free again.
func listen(addr string) (net.Listener, error) {
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	var err error
	for range 50 {
		var ln net.Listener
		if ln, err = net.Listen("tcp", addr); err == nil {
			return ln, nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	return nil, fmt.Errorf("ucrm: failed to listen on %s: %w", addr, err)
}

// Stop closes the listener and every connection; running long-polls end at once and no
// goroutine of the run survives. Queues, tokens and the registry stay: it models an
// outage. Stop on a stopped server does nothing.
func (s *Server) Stop() {
	s.lifecycle.Lock()
	defer s.lifecycle.Unlock()
	s.mu.Lock()
	r := s.run
	s.run = nil
	s.mu.Unlock()
	if r == nil {
		return
	}
	r.mu.Lock()
	r.closing = true
	r.mu.Unlock()
	close(r.stop)
	_ = r.srv.Close()
	r.active.Wait()
	r.done.Wait()
	// The peers' kept-alive connections are dead now; a request must not find one.
	s.mu.Lock()
	peers := slices.Clone(s.peers)
	s.mu.Unlock()
	for _, p := range peers {
		p.client.CloseIdleConnections()
	}
}

// Restart stops the server and starts it again on the same address.
func (s *Server) Restart() error {
	s.Stop()
	return s.Start()
}

// RestartFresh models a UCRM that keeps its state in memory restarting, as the PMeV
// reference does: it stops the server, forgets every queue (sequenceIds are numbered from 1
// again, committed positions are gone), every accepted messageId and every token (the
// token key is new), and starts again on the same address. Participants, their keys and
// statuses stay (they are configuration), and so does what Sent and Requests report.
func (s *Server) RestartFresh() error {
	s.Stop()
	s.mu.Lock()
	s.queues = map[string]*queue{}
	s.accepted = map[string][]byte{}
	s.secret = newSecret()
	s.mu.Unlock()
	return s.Start()
}

// Close stops the server for good.
func (s *Server) Close() {
	s.Stop()
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
}

// URL returns the base URL of the API, e.g. "http://127.0.0.1:41234/ucrm/client/v0", or
// "" before the first Start.
func (s *Server) URL() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.addr == "" {
		return ""
	}
	return "http://" + s.addr + s.opts.BasePath
}

// ExpireTokens invalidates every token issued so far; clients must fetch a new one.
func (s *Server) ExpireTokens() {
	s.mu.Lock()
	s.secret = newSecret()
	s.mu.Unlock()
}

// FailNext answers the next n requests to path (below the base path, e.g.
// "/messaging/send") with HTTP status and a UCRI2 error of code 491, before any other
// processing. n <= 0 cancels pending faults for path. Faults survive a restart.
func (s *Server) FailNext(path string, n int, status int) {
	path = s.relPath(path)
	s.mu.Lock()
	defer s.mu.Unlock()
	if n <= 0 {
		delete(s.failures, path)
		return
	}
	s.failures[path] = failure{n: n, status: status}
}

// Requests returns how many requests reached path (below the base path, e.g. "/token"),
// including failed ones.
func (s *Server) Requests(path string) int {
	path = s.relPath(path)
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.requests[path]
}

func (s *Server) relPath(path string) string {
	path = strings.TrimPrefix(path, s.opts.BasePath)
	if !strings.HasPrefix(path, "/") {
		path = "/" + path
	}
	return path
}

// Sent returns every send request accepted from source, as the UCRM stored it (the
// SenderResponse: the envelope with destinations and the filled-in messageId, sentDate,
// timeout and ack), in order. An idempotent resend is not counted again.
func (s *Server) Sent(source string) []json.RawMessage {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]json.RawMessage, len(s.sent[source]))
	copy(out, s.sent[source])
	return out
}

// Queue returns how many messages for destination are not committed yet.
func (s *Server) Queue(destination string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if q := s.queues[destination]; q != nil {
		return len(q.items)
	}
	return 0
}

// Committed returns the highest sequenceId destination committed, 0 if none.
func (s *Server) Committed(destination string) int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	if q := s.queues[destination]; q != nil {
		return q.committed
	}
	return 0
}

// Inject appends a raw envelope to destination's queue as if it had been routed there,
// without any check: it may be invalid or badly signed. destination and sequenceId are
// set (replacing what the envelope holds); nothing else is filled in. It returns the
// sequenceId. The envelope must be a JSON object; anything else panics (a test bug).
// Injected messages expire (see ExpireNow) but never cause delivery statuses.
func (s *Server) Inject(destination string, envelope []byte) int64 {
	doc, err := decodeJSON(envelope)
	env, ok := doc.(map[string]any)
	if !ok {
		panic(fmt.Sprintf("ucrm: Inject: the envelope is not a JSON object (%v)", err))
	}
	timeout := intValue(env["timeout"], defaultTimeout)
	if timeout <= 0 {
		timeout = defaultTimeout
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.enqueue(destination, env, &item{deadline: s.opts.Now().Add(time.Duration(timeout) * time.Second)})
}

// SetAvailability sets the registry status of participant oid ("online", "offline",
// "unknown"; not checked) and queues a participant_availability_update {id, status} from
// the UCRM to every other participant.
//
// The transport spec says UCRMs exchange these updates among themselves and never forward
// them to clients; this fake forwards them anyway, because it is used to test that the bot
// shows them.
func (s *Server) SetAvailability(oid, status string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if p := s.participant(oid); p != nil {
		p.Status = status
	}
	data := map[string]any{"id": oid, "status": status}
	for _, p := range s.participants {
		if p.OID != oid {
			s.enqueueFromUCRM(p.OID, "participant_availability_update", data)
		}
	}
}

// ExpireNow treats every queued message that did not come from the UCRM itself as timed
// out now: it is dropped, and its sender gets a delivery status 504 if it asked for one
// (ack NACK or ALL). Delivery statuses and availability updates already queued stay.
func (s *Server) ExpireNow() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.expire(func(it *item) bool { return !it.fromUCRM })
}

// newMessageID returns a random UUID (version 4).
func newMessageID() string { return uuid.NewString() }
