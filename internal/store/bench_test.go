package store_test

import (
	"fmt"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/switchboard-matrix/switchboard/internal/store"
	"github.com/switchboard-matrix/switchboard/internal/store/storetest"
)

// benchEvents fills evs with new timeline events of about 600 bytes each, unique per txn.
func benchEvents(evs []store.InboxEvent, txn string) {
	body := strings.Repeat("x", 400)
	for i := range evs {
		id := fmt.Sprintf("$%s-%d:example.org", txn, i)
		evs[i] = store.InboxEvent{EventID: id, RoomID: "!room:example.org", Kind: "timeline",
			Payload: []byte(`{"type":"m.room.message","event_id":"` + id +
				`","sender":"@alice:example.org","content":{"msgtype":"m.text","body":"` + body + `"}}`)}
	}
}

// BenchmarkCommitTransaction100 commits homeserver transactions of 100 new timeline
// events of about 600 bytes each.
func BenchmarkCommitTransaction100(b *testing.B) {
	const perTxn = 100
	for _, d := range []store.Dialect{store.SQLite, store.Postgres} {
		b.Run(string(d), func(b *testing.B) {
			s := storetest.Open(b, d)
			ctx := b.Context()
			evs := make([]store.InboxEvent, perTxn)
			txn := 0
			var cpu cpuClock
			cpu.start()
			for b.Loop() {
				txn++
				benchEvents(evs, fmt.Sprint(txn))
				_, n, err := s.CommitTransaction(ctx, "as", fmt.Sprint(txn), evs)
				if err != nil || n != perTxn {
					b.Fatalf("CommitTransaction = %d, %v", n, err)
				}
			}
			cpu.stop()
			reportPerEvent(b, txn*perTxn, &cpu)
		})
	}
}

// BenchmarkCommitTransactions8x100 commits eight homeserver transactions of 100 events
// each in one call (one database transaction), as the group commit of concurrent PUTs does.
func BenchmarkCommitTransactions8x100(b *testing.B) {
	const perTxn, txns = 100, 8
	for _, d := range []store.Dialect{store.SQLite, store.Postgres} {
		b.Run(string(d), func(b *testing.B) {
			s := storetest.Open(b, d)
			ctx := b.Context()
			batch := make([]store.TxnCommit, txns)
			for i := range batch {
				batch[i].Events = make([]store.InboxEvent, perTxn)
			}
			txn := 0
			var cpu cpuClock
			cpu.start()
			for b.Loop() {
				for i := range batch {
					txn++
					batch[i].TxnID = fmt.Sprint(txn)
					benchEvents(batch[i].Events, batch[i].TxnID)
				}
				if err := s.CommitTransactions(ctx, "as", batch); err != nil {
					b.Fatalf("CommitTransactions: %v", err)
				}
				for _, c := range batch {
					if c.Inserted != perTxn {
						b.Fatalf("CommitTransactions inserted %d of %d", c.Inserted, perTxn)
					}
				}
			}
			cpu.stop()
			reportPerEvent(b, txn*perTxn, &cpu)
		})
	}
}

// BenchmarkMarkEventsDone100 marks batches of 100 consecutive pending events done, as the
// dispatcher does after handling them. The commits that fill the inbox are not timed.
func BenchmarkMarkEventsDone100(b *testing.B) {
	const perTxn = 100
	for _, d := range []store.Dialect{store.SQLite, store.Postgres} {
		b.Run(string(d), func(b *testing.B) {
			s := storetest.Open(b, d)
			ctx := b.Context()
			evs := make([]store.InboxEvent, perTxn)
			seqs := make([]int64, perTxn)
			txn := 0
			var cpu cpuClock
			for b.Loop() {
				b.StopTimer()
				txn++
				benchEvents(evs, fmt.Sprint(txn))
				if _, _, err := s.CommitTransaction(ctx, "as", fmt.Sprint(txn), evs); err != nil {
					b.Fatal(err)
				}
				pending, err := s.PendingEvents(ctx, 0, perTxn)
				if err != nil || len(pending) != perTxn {
					b.Fatalf("PendingEvents = %d, %v", len(pending), err)
				}
				for i, e := range pending {
					seqs[i] = e.Seq
				}
				b.StartTimer()
				cpu.start()
				if err := s.MarkEventsDone(ctx, seqs); err != nil {
					b.Fatal(err)
				}
				cpu.stop()
			}
			reportPerEvent(b, txn*perTxn, &cpu)
		})
	}
}

// reportPerEvent adds events/s, µs/event (wall clock) and cpu-µs/event (the CPU time of
// this process, which on SQLite includes the database's work; it is steadier than the
// wall clock on a busy machine, but on PostgreSQL leaves the server out) to a benchmark
// that handled n events.
func reportPerEvent(b *testing.B, n int, cpu *cpuClock) {
	if n == 0 {
		return
	}
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "events/s")
	b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(n), "µs/event")
	b.ReportMetric(float64(cpu.total.Microseconds())/float64(n), "cpu-µs/event")
}

// cpuClock adds up the CPU time (user and system) of the process between start and stop.
type cpuClock struct {
	began time.Duration
	total time.Duration
}

func (c *cpuClock) start() { c.began = processCPU() }
func (c *cpuClock) stop()  { c.total += processCPU() - c.began }

func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
