package store_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/switchboard-matrix/switchboard/internal/store"
	"github.com/switchboard-matrix/switchboard/internal/store/storetest"
)

// BenchmarkCommitTransaction100 commits homeserver transactions of 100 new timeline
// events of about 600 bytes each.
func BenchmarkCommitTransaction100(b *testing.B) {
	const perTxn = 100
	body := strings.Repeat("x", 400)
	for _, d := range []store.Dialect{store.SQLite, store.Postgres} {
		b.Run(string(d), func(b *testing.B) {
			s := storetest.Open(b, d)
			ctx := b.Context()
			evs := make([]store.InboxEvent, perTxn)
			txn := 0
			for b.Loop() {
				txn++
				for i := range evs {
					id := fmt.Sprintf("$%d-%d:example.org", txn, i)
					evs[i] = store.InboxEvent{EventID: id, RoomID: "!room:example.org", Kind: "timeline",
						Payload: []byte(`{"type":"m.room.message","event_id":"` + id +
							`","sender":"@alice:example.org","content":{"msgtype":"m.text","body":"` + body + `"}}`)}
				}
				_, n, err := s.CommitTransaction(ctx, "as", fmt.Sprint(txn), evs)
				if err != nil || n != perTxn {
					b.Fatalf("CommitTransaction = %d, %v", n, err)
				}
			}
			b.ReportMetric(float64(txn*perTxn)/b.Elapsed().Seconds(), "events/s")
		})
	}
}
