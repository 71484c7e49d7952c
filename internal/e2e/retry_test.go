package e2e

import (
	"bytes"
	"context"
	"database/sql/driver"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"path"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/klauspost/compress/s2"
	"maunium.net/go/mautrix"
	"maunium.net/go/mautrix/id"
	"modernc.org/sqlite"

	"github.com/switchboard-matrix/switchboard/appservice"
	"github.com/switchboard-matrix/switchboard/internal/store"
	"github.com/switchboard-matrix/switchboard/internal/testmodule"
	"github.com/switchboard-matrix/switchboard/internal/testpeer/homeserver"
	"github.com/switchboard-matrix/switchboard/internal/testpeer/peerproc"
)

// txnAttempt is one PUT /transactions the homeserver made.
type txnAttempt struct {
	txnID  string
	status int
	marked bool // the body carries the test's marker
	events int  // timeline events in the body
	at     time.Time
}

// txnRecorder sits on the registration's port in front of the core: it passes every
// request through unchanged and records the transactions and the core's answers.
type txnRecorder struct {
	target string // the core's base URL
	marker []byte
	mu     sync.Mutex
	seen   []txnAttempt
}

func (r *txnRecorder) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	body, _ := io.ReadAll(req.Body)
	out, err := http.NewRequestWithContext(req.Context(), req.Method, r.target+req.URL.RequestURI(), bytes.NewReader(body))
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	out.Header = req.Header.Clone()
	status := http.StatusBadGateway
	if resp, err := http.DefaultTransport.RoundTrip(out); err != nil {
		http.Error(w, err.Error(), status)
	} else {
		for k, v := range resp.Header {
			w.Header()[k] = v
		}
		status = resp.StatusCode
		w.WriteHeader(status)
		_, _ = io.Copy(w, resp.Body)
		resp.Body.Close()
	}
	if req.Method == http.MethodPut && strings.Contains(req.URL.Path, "/transactions/") {
		var txn struct {
			Events []json.RawMessage `json:"events"`
		}
		_ = json.Unmarshal(body, &txn)
		r.mu.Lock()
		r.seen = append(r.seen, txnAttempt{txnID: path.Base(req.URL.Path), status: status, marked: bytes.Contains(body, r.marker),
			events: len(txn.Events), at: time.Now()})
		r.mu.Unlock()
	}
}

func (r *txnRecorder) attempts() []txnAttempt {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]txnAttempt(nil), r.seen...)
}

// startTxnRecorder serves a txnRecorder on port, passing to the core on corePort.
func startTxnRecorder(t *testing.T, port, corePort int, marker string) *txnRecorder {
	t.Helper()
	rec := &txnRecorder{target: fmt.Sprintf("http://127.0.0.1:%d", corePort), marker: []byte(marker)}
	ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port))
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: rec, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	return rec
}

// TestTransactionRetryDendrite: the retry test on Dendrite (see testTransactionRetry);
// TestTransactionRetrySynapse is the same test on Synapse.
func TestTransactionRetryDendrite(t *testing.T) {
	testTransactionRetry(t, onHS(t, homeserver.Dendrite))
}

// registerBatchHas gives SQLite connections opened afterwards e2e_batch_has(body, marker):
// whether a journal batch (inbox_batch.body: S2-compressed frames holding each event's
// JSON) contains marker. The retry test's trigger refuses the batch with the marked event.
var registerBatchHas = sync.OnceValue(func() error {
	return sqlite.RegisterDeterministicScalarFunction("e2e_batch_has", 2,
		func(_ *sqlite.FunctionContext, args []driver.Value) (driver.Value, error) {
			body, _ := args[0].([]byte)
			marker, _ := args[1].(string)
			raw, err := s2.Decode(nil, body)
			if err != nil || marker == "" || !bytes.Contains(raw, []byte(marker)) {
				return int64(0), nil
			}
			return int64(1), nil
		})
})

// testTransactionRetry: the core's journal fails once (a trigger in the test's SQLite store
// refuses the journal batch that carries a marker), so the core answers the homeserver's
// transaction with 500 M_UNKNOWN; the homeserver retries, and every event reaches the
// module exactly once. On Synapse the retry is the same transaction ID after the
// recoverer's backoff (2 s for a first failure; it doubles while failures go on, up to
// 512 s, and new events queue behind the failed transaction meanwhile).
func testTransactionRetry(t *testing.T, h homeserver.HS) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := registerBatchHas(); err != nil {
		t.Fatal(err)
	}
	st := openStore(t, store.SQLite) // after registerBatchHas: its connections have the function
	corePort, err := peerproc.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	marker := fmt.Sprintf("fail-once-%d", time.Now().UnixNano())
	rec := startTxnRecorder(t, h.AppservicePort(), corePort, marker)
	tm := testmodule.New(testmodule.Config{}, st)
	startCore(t, h, st, coreOptions{modules: []appservice.Module{tm}, port: corePort})
	alice := newUser(t, h, "retry")
	ghost := id.NewUserID(testmodule.GhostPrefix+"retry", domain)
	resp, err := alice.CreateRoom(ctx, &mautrix.ReqCreateRoom{Preset: "public_chat", Invite: []id.UserID{ghost}})
	if err != nil {
		t.Fatal(err)
	}
	room := resp.RoomID
	waitFor(t, 30*time.Second, "the ghost to join", func() (bool, error) { return isJoined(ctx, alice, room, ghost) })

	if _, err := st.DB().ExecContext(ctx, `CREATE TRIGGER e2e_fail_once BEFORE INSERT ON inbox_batch
		WHEN e2e_batch_has(NEW.body, '`+marker+`')
		BEGIN SELECT RAISE(ABORT, 'injected journal failure'); END`); err != nil {
		t.Fatal(err)
	}
	first, err := alice.SendText(ctx, room, marker)
	if err != nil {
		t.Fatal(err)
	}
	var failed txnAttempt
	waitFor(t, 30*time.Second, "the core to answer the marked transaction with a 5xx", func() (bool, error) {
		for _, a := range rec.attempts() {
			if a.marked && a.status >= 500 {
				failed = a
				return true, nil
			}
		}
		return false, nil
	})
	if _, err := st.DB().ExecContext(ctx, `DROP TRIGGER e2e_fail_once`); err != nil {
		t.Fatal(err)
	}
	if failed.status != http.StatusInternalServerError {
		t.Errorf("the core answered the failed journal with %d, want 500", failed.status)
	}
	sent := []id.EventID{first.EventID}
	for i := range 2 {
		r, err := alice.SendText(ctx, room, fmt.Sprintf("after the failure %d", i))
		if err != nil {
			t.Fatal(err)
		}
		sent = append(sent, r.EventID)
	}
	waitFor(t, 90*time.Second, "every event at the module after the retry", func() (bool, error) {
		eff, err := testmodule.Effects(ctx, st)
		if err != nil {
			return false, err
		}
		for _, eid := range sent {
			if eff[eid.String()] == 0 {
				return false, nil
			}
		}
		return true, nil
	})
	time.Sleep(time.Second) // a late redelivery would show now
	eff, err := testmodule.Effects(ctx, st)
	if err != nil {
		t.Fatal(err)
	}
	for _, eid := range sent {
		if n := eff[eid.String()]; n != 1 {
			t.Errorf("event %s handled %d times, want exactly once", eid, n)
		}
	}
	var retry *txnAttempt
	var ids []string
	for _, a := range rec.attempts() {
		if a.at.After(failed.at) && a.marked && a.status == http.StatusOK && retry == nil {
			retry = &a
		}
		ids = append(ids, fmt.Sprintf("%s(%d events):%d", a.txnID, a.events, a.status))
	}
	if retry == nil {
		t.Fatalf("no successful retry of the marked event; transactions %v", ids)
	}
	sameID := retry.txnID == failed.txnID
	t.Logf("%s: transaction %s answered 500, retried as transaction %s after %s (same ID: %v); events handled exactly once; transactions %v",
		h.Kind(), failed.txnID, retry.txnID, retry.at.Sub(failed.at).Round(10*time.Millisecond), sameID, ids)
	if h.Kind() == homeserver.Synapse && !sameID {
		t.Errorf("Synapse retried with transaction %s, want the failed transaction's ID %s", retry.txnID, failed.txnID)
	}
	if retry.events != failed.events {
		// Dendrite: the retry under the same ID carries the events sent meanwhile too; the
		// core journals by event ID, so a known transaction ID with new events loses none.
		t.Logf("%s differs from Synapse: the retry of transaction %s carries %d events, the failed attempt %d", h.Kind(), failed.txnID, retry.events, failed.events)
	} else {
		t.Logf("%s retries the failed transaction unchanged; events sent meanwhile come in later transactions", h.Kind())
	}
	if err := ctx.Err(); errors.Is(err, context.DeadlineExceeded) {
		t.Fatal(err)
	}
}
