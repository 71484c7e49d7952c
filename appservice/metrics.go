package appservice

import (
	"context"

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
}

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
	}
	if reg != nil {
		reg.MustRegister(m.transactions, m.authFailures, m.eventsIn, m.handled, m.handlerTime,
			m.outboxSent, m.inboxQueued, m.outboxQueued, m.ingestLatency, modules)
	}
	return m
}

// moduleCollector reports switchboard_module_connected{module=…}: 1 while a module runs and
// (when it implements StatusReporter) reports itself connected, else 0. It asks the modules
// at each scrape.
type moduleCollector struct {
	core *Core
	desc *prometheus.Desc
}

func newModuleCollector(c *Core) *moduleCollector {
	return &moduleCollector{core: c, desc: prometheus.NewDesc("switchboard_module_connected",
		"1 when the module is running and connected to its network (its own status report), else 0.",
		[]string{"module"}, nil)}
}

// Describe implements prometheus.Collector.
func (mc *moduleCollector) Describe(ch chan<- *prometheus.Desc) { ch <- mc.desc }

// Collect implements prometheus.Collector.
func (mc *moduleCollector) Collect(ch chan<- prometheus.Metric) {
	for _, m := range mc.core.order {
		v := 0.0
		if mc.core.moduleHealth(context.Background(), m).Connected {
			v = 1
		}
		ch <- prometheus.MustNewConstMetric(mc.desc, prometheus.GaugeValue, v, m.ID())
	}
}
