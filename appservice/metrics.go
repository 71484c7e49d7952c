package appservice

import (
	"context"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the core's Prometheus metrics; every series carries the module where one is
// involved.
type metrics struct {
	transactions  *prometheus.CounterVec // result: committed, duplicate, rejected, error
	authFailures  *prometheus.CounterVec // reason: missing, invalid
	eventsIn      prometheus.Counter
	handled       *prometheus.CounterVec   // module, result: ok, retry, failed, ignored
	handlerTime   *prometheus.HistogramVec // module
	outboxSent    *prometheus.CounterVec   // module, result: sent, retry, failed
	inboxQueued   prometheus.GaugeFunc
	outboxQueued  prometheus.GaugeFunc
	ingestLatency prometheus.Histogram
	failures      *prometheus.CounterVec // module, kind: disconnected, error (see moduleHealth)
	modules       *moduleCollector
	perModule     sync.Map // module ID -> *moduleSeries, the per-event series without label lookups
}

// moduleSeries are the series the dispatcher updates for every event a module handles.
type moduleSeries struct {
	ok, retry   prometheus.Counter
	handlerTime prometheus.Observer
}

// series returns module's per-event series.
func (m *metrics) series(module string) *moduleSeries {
	if v, ok := m.perModule.Load(module); ok {
		return v.(*moduleSeries)
	}
	v, _ := m.perModule.LoadOrStore(module, &moduleSeries{
		ok: m.handled.WithLabelValues(module, "ok"), retry: m.handled.WithLabelValues(module, "retry"),
		handlerTime: m.handlerTime.WithLabelValues(module),
	})
	return v.(*moduleSeries)
}

// The kinds of switchboard_module_failures_total. A handler that gave up and a send that gave
// up are counted already, in switchboard_events_handled_total{result="failed"} and
// switchboard_outbox_sends_total{result="failed"}.
const (
	failureDisconnected = "disconnected" // a running module seen connected is seen not connected
	failureError        = "error"        // a running module reports an error other than the last one seen
)

func newMetrics(reg prometheus.Registerer, inboxDepth, outboxDepth func() float64, modules *moduleCollector) *metrics {
	m := &metrics{
		transactions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "switchboard_transactions_total", Help: "Homeserver transactions by result.",
		}, []string{"result"}),
		authFailures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "switchboard_auth_failures_total", Help: "Requests rejected for a missing or wrong homeserver token.",
		}, []string{"reason"}),
		eventsIn: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "switchboard_events_received_total", Help: "New events (timeline and ephemeral) journaled from the homeserver.",
		}),
		handled: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "switchboard_events_handled_total", Help: "Event deliveries to modules by result.",
		}, []string{"module", "result"}),
		handlerTime: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "switchboard_handler_seconds", Help: "Time modules take to handle one event.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 4, 10),
		}, []string{"module"}),
		outboxSent: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "switchboard_outbox_sends_total", Help: "Outbox sends to Matrix by result.",
		}, []string{"module", "result"}),
		inboxQueued: prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "switchboard_inbox_queue_depth", Help: "Journaled events not yet handled.",
		}, inboxDepth),
		outboxQueued: prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "switchboard_outbox_queue_depth", Help: "Messages waiting to be sent to Matrix.",
		}, outboxDepth),
		ingestLatency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "switchboard_transaction_commit_seconds", Help: "Time to journal one transaction.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 4, 10),
		}),
		failures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "switchboard_module_failures_total",
			Help: "Module failures the core noticed when it looked at the module's status (a scrape, a readiness check, the status page): " +
				"kind=disconnected when a module seen connected is seen not connected, kind=error when it reports a new error.",
		}, []string{"module", "kind"}),
		modules: modules,
	}
	// The series exist from the start, so that rates and dashboards see zeros instead of
	// nothing.
	for _, result := range []string{"committed", "duplicate", "rejected", "error"} {
		m.transactions.WithLabelValues(result)
	}
	for _, reason := range []string{"missing", "invalid"} {
		m.authFailures.WithLabelValues(reason)
	}
	for _, mod := range modules.core.order {
		id := mod.ID()
		m.handlerTime.WithLabelValues(id)
		for _, kind := range []string{failureDisconnected, failureError} {
			m.failures.WithLabelValues(id, kind)
		}
		for _, result := range []string{"ok", "retry", "failed"} {
			m.handled.WithLabelValues(id, result)
		}
		for _, result := range []string{"sent", "retry", "failed"} {
			m.outboxSent.WithLabelValues(id, result)
		}
	}
	if reg != nil {
		reg.MustRegister(m.transactions, m.authFailures, m.eventsIn, m.handled, m.handlerTime,
			m.outboxSent, m.inboxQueued, m.outboxQueued, m.ingestLatency, m.failures, modules)
	}
	return m
}

// moduleCollector reports each module's gauges at scrape time, from the status page's data
// (moduleLines): switchboard_module_connected (1 while the module runs and, when it
// implements StatusReporter, reports itself connected), switchboard_module_queue (its
// messages waiting in the outbox), switchboard_module_portals and switchboard_module_ghosts
// (left out while the database does not answer). Counting ghosts reads the ghost table, so
// the lines are cached for ttl: scrapes closer together share one look.
type moduleCollector struct {
	core                              *Core
	connected, queue, portals, ghosts *prometheus.Desc
	ttl                               time.Duration // moduleCacheTTL; tests change it before serving

	mu     sync.Mutex   // held while collecting, so that concurrent scrapes share one look
	lines  []statusLine // guarded by mu; the last look
	looked time.Time    // guarded by mu; when lines were collected
}

// moduleCacheTTL is how long one look at the modules serves scrapes.
const moduleCacheTTL = 5 * time.Second

// moduleCollectTimeout bounds one look at the modules (database counts and Status calls).
const moduleCollectTimeout = 5 * time.Second

func newModuleCollector(c *Core) *moduleCollector {
	label := []string{"module"}
	return &moduleCollector{core: c, ttl: moduleCacheTTL,
		connected: prometheus.NewDesc("switchboard_module_connected",
			"1 when the module is running and connected to its network (its own status report), else 0.", label, nil),
		queue: prometheus.NewDesc("switchboard_module_queue",
			"The module's messages waiting in the outbox to be sent to Matrix.", label, nil),
		portals: prometheus.NewDesc("switchboard_module_portals",
			"The module's portal rooms.", label, nil),
		ghosts: prometheus.NewDesc("switchboard_module_ghosts",
			"Registered ghost users in the module's namespace.", label, nil),
	}
}

// Describe implements prometheus.Collector.
func (mc *moduleCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- mc.connected
	ch <- mc.queue
	ch <- mc.portals
	ch <- mc.ghosts
}

// Collect implements prometheus.Collector.
func (mc *moduleCollector) Collect(ch chan<- prometheus.Metric) {
	for _, l := range mc.look() {
		connected := 0.0
		if l.Connected {
			connected = 1
		}
		ch <- prometheus.MustNewConstMetric(mc.connected, prometheus.GaugeValue, connected, l.ID)
		ch <- prometheus.MustNewConstMetric(mc.queue, prometheus.GaugeValue, float64(l.Queue), l.ID)
		if l.Portals != nil {
			ch <- prometheus.MustNewConstMetric(mc.portals, prometheus.GaugeValue, float64(*l.Portals), l.ID)
		}
		if l.Ghosts != nil {
			ch <- prometheus.MustNewConstMetric(mc.ghosts, prometheus.GaugeValue, float64(*l.Ghosts), l.ID)
		}
	}
}

// look returns the modules' lines, looked at less than ttl ago.
func (mc *moduleCollector) look() []statusLine {
	mc.mu.Lock()
	defer mc.mu.Unlock()
	now := time.Now()
	if mc.lines != nil && now.Sub(mc.looked) < mc.ttl {
		return mc.lines
	}
	ctx, cancel := context.WithTimeout(context.Background(), moduleCollectTimeout)
	defer cancel()
	mc.lines, mc.looked = mc.core.moduleLines(ctx, false), now
	return mc.lines
}
