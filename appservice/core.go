package appservice

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"regexp"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
	"maunium.net/go/mautrix"
	mas "maunium.net/go/mautrix/appservice"

	"github.com/switchboard-matrix/switchboard/appservice/e2ee"
	"github.com/switchboard-matrix/switchboard/internal/store"
	"github.com/switchboard-matrix/switchboard/registration"
)

// Options configure a [Core]. Registration, HomeserverURL, Domain and Store are required;
// the zero value of every other field means its default.
type Options struct {
	Registration  *mas.Registration // required; the registration file's contents
	HomeserverURL string            // required; client-server API base URL
	Domain        string            // required; the homeserver's server name
	Store         *store.Store      // required
	Modules       []Module          // the enabled modules, in start order
	// BotModule is the ID of the module that handles the bot user's rooms (invites to the
	// bot, DMs with it): the management bot.
	BotModule      string
	BotDisplayName string

	Listen       string        // address of the Application Service API; default 127.0.0.1:29300
	Workers      int           // handlers running at once; default 16
	MaxBodyBytes int64         // largest transaction accepted; default 32 MiB
	Retry        Retry         // default 8 attempts, 1s, 5m
	HandlerTime  time.Duration // deadline of one handler call; default 2m
	// JournalRetention is how long handled events, sent messages and transaction IDs are
	// kept; default 30 days (see store.Prune).
	JournalRetention time.Duration
	// InDoubtSettle is how long after a start the outbox waits before checking whether a
	// message whose send was interrupted by a crash reached the homeserver; default 5s.
	InDoubtSettle time.Duration
	Version       string // reported by the management bot
	// Permissions lists, per module ID, the Matrix users who may use the module (user IDs,
	// "*:<domain>", "*"); a module without an entry admits every user of Domain. See
	// access.go.
	Permissions map[string][]string
	// Metrics registers the core's metrics; nil means a fresh registry (see Core.Gatherer).
	Metrics *prometheus.Registry
	// Encryption configures end-to-end encryption; off by default.
	Encryption Encryption
	// Provisioning turns the provisioning API on (provision.go); nil: off.
	Provisioning *Provisioning
	// Scanning configures virus scanning of bridged files (scan.go); off without a Scanner.
	Scanning Scanning
	// Leading, when set, says whether this process may still act as the leader of a
	// high-availability group (store.Leadership.Valid): while it is false no event is
	// handed to a module and nothing is sent to Matrix (fence.go).
	Leading func() bool
}

func (o *Options) defaults() {
	if o.Listen == "" {
		o.Listen = "127.0.0.1:29300"
	}
	if o.Workers <= 0 {
		o.Workers = 16
	}
	if o.MaxBodyBytes <= 0 {
		o.MaxBodyBytes = 32 << 20
	}
	if o.Retry.Attempts <= 0 {
		o.Retry.Attempts = 8
	}
	if o.Retry.Initial <= 0 {
		o.Retry.Initial = time.Second
	}
	if o.Retry.Max <= 0 {
		o.Retry.Max = 5 * time.Minute
	}
	if o.HandlerTime <= 0 {
		o.HandlerTime = 2 * time.Minute
	}
	if o.InDoubtSettle <= 0 {
		o.InDoubtSettle = 5 * time.Second
	}
	if o.JournalRetention <= 0 {
		o.JournalRetention = 30 * 24 * time.Hour
	}
	if o.Metrics == nil {
		o.Metrics = prometheus.NewRegistry()
	}
	o.Encryption.defaults()
}

// Core is the appservice: it serves the Application Service API, journals and dispatches
// events to modules, and sends their messages. Create it with [New], then Start and Stop.
type Core struct {
	opts      Options
	provision *provisionAuth // nil: the provisioning API is off
	reg       *mas.Registration
	store     *store.Store
	as        *mas.AppService
	log       zerolog.Logger
	metrics   *metrics
	router    *router
	inbox     *inbox
	disp      *dispatcher
	outbox    *outbox
	// access holds each module's permission list (immutable after New); refusals
	// rate-limits the notices to users without permission.
	access   map[string]UserPatterns
	refusals *refusals
	life     *lifecycle // for the operator endpoints
	scan     *scanner   // nil: scanning is off
	// crypto is the e2ee manager once started (nil: encryption off); encryptionOff says
	// that it was enabled but the homeserver cannot do it.
	crypto        atomic.Pointer[e2ee.Manager]
	encryptionOff atomic.Bool

	modules       map[string]Module
	order         []Module
	protocols     map[string]ThirdPartyHandler // immutable after New
	protocolOrder []string
	roomCommands  map[string]Module // first word of a message → module; immutable after New

	mu         sync.Mutex
	started    bool
	server     *http.Server
	listenAddr net.Addr
	startedAt  time.Time // set by Start
	stopLoops  context.CancelFunc
	stopWork   context.CancelFunc
	loops      sync.WaitGroup
}

// New checks opts and the modules' capabilities and builds a Core. It does no I/O.
func New(opts Options) (*Core, error) {
	opts.defaults()
	var errs []error
	if opts.Registration == nil {
		errs = append(errs, errors.New("registration is required"))
	}
	if opts.HomeserverURL == "" {
		errs = append(errs, errors.New("homeserver URL is required"))
	}
	if opts.Domain == "" {
		errs = append(errs, errors.New("homeserver domain is required"))
	}
	if opts.Store == nil {
		errs = append(errs, errors.New("store is required"))
	}
	if len(errs) > 0 {
		return nil, fmt.Errorf("appservice: %w", errors.Join(errs...))
	}
	c := &Core{
		opts: opts, reg: opts.Registration, store: opts.Store,
		modules: map[string]Module{}, protocols: map[string]ThirdPartyHandler{},
		roomCommands: map[string]Module{}, log: zerolog.Nop(),
	}
	namespaces := map[string]registration.Namespaces{}
	for _, m := range opts.Modules {
		mid := m.ID()
		if !validModuleID.MatchString(mid) || mid == coreModuleID {
			return nil, fmt.Errorf("appservice: invalid module ID %q", mid)
		}
		if _, dup := c.modules[mid]; dup {
			return nil, fmt.Errorf("appservice: module %q listed twice", mid)
		}
		c.modules[mid] = m
		c.order = append(c.order, m)
		namespaces[mid] = m.Namespaces()
		if tp, ok := m.(ThirdPartyHandler); ok {
			protos := tp.Protocols()
			if len(protos) == 0 {
				return nil, fmt.Errorf("appservice: module %q implements third-party lookups but lists no protocol", mid)
			}
			for _, p := range protos {
				if other, dup := c.protocols[p]; dup {
					return nil, fmt.Errorf("appservice: protocol %q claimed by %q and %v", p, mid, other)
				}
				c.protocols[p] = tp
				c.protocolOrder = append(c.protocolOrder, p)
			}
		}
	}
	sort.Strings(c.protocolOrder)
	for _, m := range opts.Modules {
		rc, ok := m.(RoomCommandHandler)
		if !ok {
			continue
		}
		for _, word := range rc.RoomCommands() {
			if word == "" || strings.ContainsAny(word, " \t\n") {
				return nil, fmt.Errorf("appservice: module %q: invalid room command %q", m.ID(), word)
			}
			if other, dup := c.roomCommands[word]; dup {
				return nil, fmt.Errorf("appservice: room command %q claimed by %q and %q", word, m.ID(), other.ID())
			}
			c.roomCommands[word] = m
		}
	}
	if opts.BotModule != "" && c.modules[opts.BotModule] == nil {
		return nil, fmt.Errorf("appservice: bot module %q is not enabled", opts.BotModule)
	}
	access, err := buildAccess(opts, opts.Modules)
	if err != nil {
		return nil, fmt.Errorf("appservice: %w", err)
	}
	c.access, c.refusals = access, newRefusals()
	if opts.Provisioning != nil {
		if c.provision, err = newProvisionAuth(opts); err != nil {
			return nil, err
		}
	}
	r, err := newRouter(opts.Domain, namespaces, c.modules)
	if err != nil {
		return nil, fmt.Errorf("appservice: %w", err)
	}
	c.router = r
	c.as = mas.Create()
	c.as.Registration = opts.Registration
	c.as.HomeserverDomain = opts.Domain
	c.as.DefaultHTTPRetries = 1
	if err := c.as.SetHomeserverURL(opts.HomeserverURL); err != nil {
		return nil, fmt.Errorf("appservice: invalid homeserver URL: %w", err)
	}
	c.as.StateStore = &stateStore{MemoryStateStore: mautrix.NewMemoryStateStore().(*mautrix.MemoryStateStore), store: opts.Store}
	c.disp = newDispatcher(c)
	c.outbox = newOutbox(c)
	c.inbox = &inbox{store: opts.Store, scope: registration.TxnScope(opts.Registration), offer: c.disp.offer}
	c.life = newLifecycle(c.order)
	c.metrics = newMetrics(opts.Metrics, c.gaugeFunc(c.store.InboxDepth), c.gaugeFunc(c.store.OutboxDepth), newModuleCollector(c))
	c.inbox.metrics = c.metrics
	if opts.Scanning.Scanner != nil {
		c.scan = newScanner(opts.Scanning, opts.Store, newScanMetrics(opts.Metrics))
	}
	return c, nil
}

var validModuleID = regexp.MustCompile(`^[a-z][a-z0-9_.]{0,31}$`)

// gaugeFunc is a gauge read from the database (a queue's depth), counted at most once per
// gaugeTTL however often /metrics is scraped: the count competes with the journal for the
// database.
func (c *Core) gaugeFunc(f func(context.Context) (int, error)) func() float64 {
	var mu sync.Mutex
	var last float64
	var at time.Time
	return func() float64 {
		mu.Lock()
		defer mu.Unlock()
		if !at.IsZero() && time.Since(at) < gaugeTTL {
			return last
		}
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		n, err := f(ctx)
		last, at = float64(n), time.Now()
		if err != nil {
			last = -1
		}
		return last
	}
}

// gaugeTTL is how long a database-backed gauge's value serves scrapes.
const gaugeTTL = time.Second

// Gatherer exposes the core's metrics for a /metrics endpoint.
func (c *Core) Gatherer() prometheus.Gatherer { return c.opts.Metrics }

// Addr is the address the Application Service API listens on, once started.
func (c *Core) Addr() net.Addr {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.listenAddr
}

// Start listens for the homeserver, pings it, registers the bot, starts the modules and then
// the dispatcher and outbox. Events journaled before a crash are delivered first.
func (c *Core) Start(ctx context.Context) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.started {
		return errors.New("appservice: already started")
	}
	// Every logger of the core and the modules derives from c.log: no body below trace.
	c.log = bodyless(*zerolog.Ctx(ctx)).With().Str("component", "appservice").Logger()
	c.startedAt = time.Now()
	c.life.phase.Store(phaseStarting)
	started := false
	defer func() {
		if !started {
			c.life.phase.Store(phaseNew)
		}
	}()
	c.as.Log = c.log.With().Str("component", "mautrix").Logger()

	ln, err := net.Listen("tcp", c.opts.Listen)
	if err != nil {
		return fmt.Errorf("appservice: failed to listen on %s: %w", c.opts.Listen, err)
	}
	c.listenAddr = ln.Addr()
	api := c.Handler()
	logCtx := c.log.WithContext
	c.server = &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			api.ServeHTTP(w, r.WithContext(logCtx(r.Context())))
		}),
		ReadHeaderTimeout: 10 * time.Second,
	}
	go func() {
		if err := c.server.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			c.log.Error().Err(err).Msg("Application Service API server stopped")
		}
	}()
	c.log.Info().Stringer("addr", ln.Addr()).Msg("Listening for the homeserver")

	if err := c.prepareBot(ctx); err != nil {
		_ = c.server.Close()
		return err
	}
	c.ping(ctx)
	if err := c.startEncryption(ctx); err != nil {
		_ = c.server.Close()
		return err
	}

	work, stopWork := context.WithCancel(context.WithoutCancel(ctx))
	for i, m := range c.order {
		mctx := c.log.With().Str("module", m.ID()).Logger().WithContext(ctx)
		if err := m.Start(mctx, &host{core: c, module: m.ID()}); err != nil {
			for j := i - 1; j >= 0; j-- {
				c.life.up[c.order[j].ID()].Store(false)
				_ = c.order[j].Stop(ctx)
			}
			_ = c.server.Close()
			stopWork()
			return fmt.Errorf("appservice: failed to start module %s: %w", m.ID(), err)
		}
		c.life.up[m.ID()].Store(true)
		c.log.Info().Str("module", m.ID()).Msg("Module started")
	}
	stop, stopLoops := context.WithCancel(work)
	c.stopLoops, c.stopWork = stopLoops, stopWork
	work = c.log.WithContext(work)
	c.loops.Add(3)
	go func() { defer c.loops.Done(); c.disp.run(stop, work) }()
	go func() { defer c.loops.Done(); c.outbox.run(stop, work) }()
	go func() { defer c.loops.Done(); c.prune(stop) }()
	if c.scan != nil {
		c.loops.Add(1)
		go func() { defer c.loops.Done(); c.scan.watch(stop, scanWatchInterval) }()
	}
	c.started = true
	started = true
	c.life.phase.Store(phaseRunning)
	return nil
}

// prepareBot registers the bot user and sets its display name, retrying while the
// homeserver is not reachable yet (up to the context's deadline or a minute).
func (c *Core) prepareBot(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(requestContext(ctx), time.Minute)
	defer cancel()
	bot := c.as.BotIntent()
	var err error
	for attempt := 1; ; attempt++ {
		if err = bot.EnsureRegistered(ctx); err == nil {
			break
		}
		wait := c.opts.Retry.backoff(attempt)
		c.log.Warn().Err(err).Dur("retry_in", wait).Msg("Cannot register the bot user yet; is the homeserver up?")
		select {
		case <-ctx.Done():
			return fmt.Errorf("appservice: failed to register bot user %s with the homeserver at %s: %w", bot.UserID, c.opts.HomeserverURL, err)
		case <-time.After(wait):
		}
	}
	if c.opts.BotDisplayName != "" {
		if err := bot.SetDisplayName(ctx, c.opts.BotDisplayName); err != nil {
			c.log.Warn().Err(err).Msg("Failed to set the bot's display name")
		}
	}
	return nil
}

// ping asks the homeserver to ping us (spec v1.7 POST /appservice/{id}/ping), which proves
// that it can reach our public URL with the right token.
func (c *Core) ping(ctx context.Context) {
	ctx, cancel := context.WithTimeout(requestContext(ctx), 15*time.Second)
	defer cancel()
	resp, err := c.as.BotClient().AppservicePing(ctx, c.reg.ID, "switchboard-startup")
	switch {
	case err == nil:
		c.log.Info().Int64("duration_ms", resp.DurationMS).Msg("Homeserver reached us through the ping endpoint")
	case isUnsupportedEndpoint(err):
		c.log.Info().Msg("Homeserver does not support the appservice ping (spec v1.7); skipped the reachability check")
	default:
		c.log.Error().Err(err).Str("url", c.reg.URL).Msg(pingProblem(err))
	}
}

// Stop stops accepting transactions, lets in-flight handlers and sends finish until ctx's
// deadline (then cancels them: unfinished work stays journaled), and stops the modules.
func (c *Core) Stop(ctx context.Context) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.started {
		return nil
	}
	c.started = false
	c.life.phase.Store(phaseStopping)
	defer c.life.phase.Store(phaseNew)
	var errs []error
	if err := c.server.Shutdown(ctx); err != nil {
		errs = append(errs, fmt.Errorf("failed to stop the HTTP server: %w", err))
		_ = c.server.Close()
	}
	c.stopLoops()
	done := make(chan struct{})
	go func() { c.loops.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
		c.log.Warn().Msg("Shutdown deadline passed; cancelling in-flight work (it stays journaled)")
		c.stopWork()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			c.log.Error().Msg("Handlers ignore cancellation; stopping without them")
		}
	}
	c.stopWork()
	for i := len(c.order) - 1; i >= 0; i-- {
		m := c.order[i]
		c.life.up[m.ID()].Store(false)
		if err := m.Stop(ctx); err != nil {
			errs = append(errs, fmt.Errorf("module %s: %w", m.ID(), err))
		}
	}
	if cm := c.crypto.Swap(nil); cm != nil {
		cm.Stop()
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("appservice: stop: %w", err)
	}
	return nil
}

// prune deletes old journal rows once an hour (and once at start).
func (c *Core) prune(ctx context.Context) {
	for {
		n, err := c.store.Prune(ctx, time.Now().Add(-c.opts.JournalRetention))
		switch {
		case err != nil && ctx.Err() == nil:
			c.log.Warn().Err(err).Msg("Failed to prune the journal")
		case n > 0:
			c.log.Debug().Int64("rows", n).Msg("Pruned the journal")
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(time.Hour):
		}
	}
}
