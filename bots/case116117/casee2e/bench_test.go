package casee2e

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"maunium.net/go/mautrix"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"

	"github.com/switchboard-matrix/switchboard/internal/store"
	"github.com/switchboard-matrix/switchboard/internal/store/storetest"
	"github.com/switchboard-matrix/switchboard/internal/testpeer/ucrm"
)

// The benchmarks below take b.N incidents that centre A handed over to the bot's centre
// before the timer starts. BenchmarkCases times Switchboard with the bot from its start
// until every case is processed (its room made, summary, payload, state and announcement
// posted, the message marked done); BenchmarkRawCases is the baseline of the same run: a
// plain client that receives and commits the same messages from the fake UCRM and, as a
// Matrix user, makes one room per case with the summary in it — the least any bot must
// do, without checks, signatures, storage or the other events. Both report cases/s;
// scripts/bench prints the ratio.

// handOver sends n incidents from A to the centre.
func handOver(b *testing.B, oid string, n int) {
	b.Helper()
	for range n {
		if _, err := peerA.Send(context.Background(), oid, app, "incident", incident(uuid.NewString()), "NONE"); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkCases: the bot processes b.N waiting incidents.
func BenchmarkCases(b *testing.B) {
	alice := newMatrixUser(b, "alice")
	l := newCentre(b, alice.UserID)
	handOver(b, l.OID, b.N)
	st := storetest.Open(b, store.SQLite)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()

	b.ResetTimer()
	startBot(b, st, l)
	for {
		rows, err := st.ListKV(ctx, "module/case116117/done:"+l.Name+":", 0)
		if err != nil {
			b.Fatal(err)
		}
		if len(rows) >= b.N {
			break
		}
		if ctx.Err() != nil {
			b.Fatalf("%d of %d cases processed", len(rows), b.N)
		}
		time.Sleep(20 * time.Millisecond)
	}
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "cases/s")
}

// BenchmarkRawCases is the baseline: receive, commit, one room and one message per case.
func BenchmarkRawCases(b *testing.B) {
	alice := newMatrixUser(b, "alice")
	l := newCentre(b, alice.UserID)
	handOver(b, l.OID, b.N)
	raw := newMatrixUser(b, "rawbot")
	peer := srv.Peer(l.OID, keyB)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()

	b.ResetTimer()
	for done := 0; done < b.N; {
		items, err := peer.Receive(ctx, time.Second)
		if err != nil {
			b.Fatal(err)
		}
		for _, it := range items {
			m, err := ucrm.ParseMessage(it)
			if err != nil {
				b.Fatal(err)
			}
			var inc map[string]any
			if err := json.Unmarshal(m.Data, &inc); err != nil {
				b.Fatal(err)
			}
			resp, err := raw.CreateRoom(ctx, &mautrix.ReqCreateRoom{Preset: "private_chat", Name: "Fall", Invite: []id.UserID{alice.UserID}})
			if err != nil {
				b.Fatal(err)
			}
			summary := fmt.Sprintf("Neuer Fall %v: %s", inc["sharedIncidentId"], strings.Repeat("x", 400))
			if _, err := raw.SendMessageEvent(ctx, resp.RoomID, event.EventMessage, &event.MessageEventContent{MsgType: event.MsgNotice, Body: summary}); err != nil {
				b.Fatal(err)
			}
			done++
		}
		if ctx.Err() != nil {
			b.Fatalf("%d of %d cases", done, b.N)
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "cases/s")
}
