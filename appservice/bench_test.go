package appservice

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	mas "maunium.net/go/mautrix/appservice"
	"maunium.net/go/mautrix/event"

	"github.com/switchboard-matrix/switchboard/internal/store"
	"github.com/switchboard-matrix/switchboard/internal/store/storetest"
	"github.com/switchboard-matrix/switchboard/registration"
)

const benchBatch = 100

// benchTxn builds a transaction of benchBatch message events with ids unique to n.
func benchTxn(n int) string {
	evts := make([]string, benchBatch)
	for i := range evts {
		evts[i] = msgEvent(fmt.Sprintf("$bench%d_%d", n, i), fmt.Sprintf("!room%d:test", i%10), "a message of a typical length, some forty bytes")
	}
	return txnBody(evts...)
}

func runIngest(b *testing.B, h http.Handler, path func(int) string) {
	bodies := make([]string, b.N)
	for i := range bodies {
		bodies[i] = benchTxn(i)
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		req := httptest.NewRequest(http.MethodPut, path(i), strings.NewReader(bodies[i]))
		req.Header.Set("Authorization", "Bearer "+testHSToken)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != http.StatusOK {
			b.Fatalf("status %d: %s", rec.Code, rec.Body)
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(b.N*benchBatch)/b.Elapsed().Seconds(), "events/s")
}

// BenchmarkIngest measures transaction ingest of 100-event transactions through the
// transaction endpoint: Switchboard's, which answers only after the events are committed
// to the durable inbox (SQLite, PostgreSQL), beside mautrix-go's appservice handler, which
// answers once the events are in a Go channel in memory. scripts/bench prints the ratios.
func BenchmarkIngest(b *testing.B) {
	b.Run("mautrix-memory", func(b *testing.B) {
		as := mas.Create()
		as.Registration = &mas.Registration{ServerToken: testHSToken}
		stop := make(chan struct{})
		defer close(stop)
		go func() {
			for {
				select {
				case <-as.Events:
				case <-stop:
					return
				}
			}
		}()
		runIngest(b, as.Router, func(i int) string { return fmt.Sprintf("/_matrix/app/v1/transactions/m%d", i) })
	})
	for _, d := range []store.Dialect{store.SQLite, store.Postgres} {
		b.Run("switchboard-"+string(d), func(b *testing.B) {
			if d == store.Postgres && os.Getenv("SWITCHBOARD_TEST_POSTGRES") == "" {
				b.Skip("SWITCHBOARD_TEST_POSTGRES is not set")
			}
			st := storetest.Open(b, d)
			c, err := New(Options{
				Registration:  &mas.Registration{ID: "bench", ServerToken: testHSToken, SenderLocalpart: "bot"},
				HomeserverURL: "http://127.0.0.1:1", Domain: "test", Store: st,
			})
			if err != nil {
				b.Fatal(err)
			}
			runIngest(b, c.Handler(), func(i int) string { return fmt.Sprintf("/_matrix/app/v1/transactions/s%d", i) })
		})
	}
}

// nopModule handles every event by counting it.
type nopModule struct{ n atomic.Int64 }

func (m *nopModule) ID() string                                      { return "nop" }
func (m *nopModule) Namespaces() registration.Namespaces             { return registration.Namespaces{} }
func (m *nopModule) Start(context.Context, Host) error               { return nil }
func (m *nopModule) Stop(context.Context) error                      { return nil }
func (m *nopModule) HandleEvent(context.Context, *event.Event) error { m.n.Add(1); return nil }

// BenchmarkDispatch measures the per-event cost of the whole path from the transaction
// endpoint to a module's handler that does nothing: mautrix-go's appservice with its
// EventProcessor in Sync mode (in order, nothing durable) beside Switchboard's endpoint,
// journal and per-room dispatcher, which records every event's completion (SQLite,
// PostgreSQL). scripts/bench prints the ratios.
func BenchmarkDispatch(b *testing.B) {
	b.Run("mautrix-eventprocessor", func(b *testing.B) {
		as := mas.Create()
		as.Registration = &mas.Registration{ServerToken: testHSToken}
		ep := mas.NewEventProcessor(as)
		ep.ExecMode = mas.Sync
		var n atomic.Int64
		ep.On(event.EventMessage, func(context.Context, *event.Event) { n.Add(1) })
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		ep.Start(ctx)
		defer ep.Stop()
		runDispatch(b, as.Router, &n)
	})
	for _, d := range []store.Dialect{store.SQLite, store.Postgres} {
		b.Run("switchboard-"+string(d), func(b *testing.B) {
			if d == store.Postgres && os.Getenv("SWITCHBOARD_TEST_POSTGRES") == "" {
				b.Skip("SWITCHBOARD_TEST_POSTGRES is not set")
			}
			st := storetest.Open(b, d)
			for r := 0; r < 10; r++ {
				if err := st.PutPortal(context.Background(), "nop", fmt.Sprint(r), fmt.Sprintf("!room%d:test", r)); err != nil {
					b.Fatal(err)
				}
			}
			hs := newFakeHomeserver(b)
			mod := &nopModule{}
			c, err := New(Options{
				Registration:  &mas.Registration{ID: "bench", ServerToken: testHSToken, SenderLocalpart: "bot"},
				HomeserverURL: hs.URL, Domain: "test", Store: st, Modules: []Module{mod}, Listen: "127.0.0.1:0",
			})
			if err != nil {
				b.Fatal(err)
			}
			if err := c.Start(context.Background()); err != nil {
				b.Fatal(err)
			}
			defer func() { _ = c.Stop(context.Background()) }()
			runDispatch(b, c.Handler(), &mod.n)
		})
	}
}

// runDispatch pushes b.N 100-event transactions through h and waits until the handler has
// counted every event.
func runDispatch(b *testing.B, h http.Handler, handled *atomic.Int64) {
	bodies := make([]string, b.N)
	for i := range bodies {
		bodies[i] = benchTxn(i)
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		req := httptest.NewRequest(http.MethodPut, fmt.Sprintf("/_matrix/app/v1/transactions/d%d", i), strings.NewReader(bodies[i]))
		req.Header.Set("Authorization", "Bearer "+testHSToken)
		h.ServeHTTP(httptest.NewRecorder(), req)
	}
	for handled.Load() < int64(b.N*benchBatch) {
		time.Sleep(100 * time.Microsecond)
	}
	b.StopTimer()
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*benchBatch), "ns/event")
	b.ReportMetric(float64(b.N*benchBatch)/b.Elapsed().Seconds(), "events/s")
}
