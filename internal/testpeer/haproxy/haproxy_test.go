package haproxy_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/switchboard-matrix/switchboard/internal/testpeer/haproxy"
	"github.com/switchboard-matrix/switchboard/internal/testpeer/peerproc"
)

// backend stands in for one Switchboard process: a transaction endpoint and, on another
// port, GET /health/ready. Like Switchboard, a backend that is not ready answers
// transactions 503 with Retry-After.
type backend struct {
	name   string
	ready  atomic.Bool  // what /health/ready answers: 200 or 503
	status atomic.Int32 // when not 0, every transaction is answered with it
	txns   atomic.Int32 // transactions received
	checks atomic.Int32 // readiness checks answered
	last   atomic.Value // []byte: the body of the last transaction
	tx     *httptest.Server
	ops    *httptest.Server
}

func newBackend(t *testing.T, name string, ready bool) *backend {
	b := &backend{name: name}
	b.ready.Store(ready)
	b.tx = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			return
		}
		b.txns.Add(1)
		b.last.Store(body)
		w.Header().Set("X-Backend", name)
		switch {
		case b.status.Load() != 0:
			w.WriteHeader(int(b.status.Load()))
		case !b.ready.Load():
			w.Header().Set("Retry-After", "1")
			w.WriteHeader(http.StatusServiceUnavailable)
			fmt.Fprint(w, `{"errcode":"M_UNKNOWN","error":"standby"}`)
		default:
			fmt.Fprint(w, `{}`)
		}
	}))
	t.Cleanup(b.tx.Close)
	b.ops = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/health/ready" {
			http.NotFound(w, r)
			return
		}
		defer b.checks.Add(1)
		if !b.ready.Load() {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
	}))
	t.Cleanup(b.ops.Close)
	return b
}

func (b *backend) haproxy() haproxy.Backend {
	return haproxy.Backend{Name: b.name, Addr: b.tx.Listener.Addr().String(), CheckPort: b.ops.Listener.Addr().(*net.TCPAddr).Port}
}

// startFront starts HAProxy in front of backends and waits until it has counted each
// backend's readiness (three checks answered: the result of the first two is known).
func startFront(t *testing.T, backends ...*backend) *haproxy.Server {
	t.Helper()
	port, err := peerproc.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	opts := haproxy.Options{Listen: "127.0.0.1:" + strconv.Itoa(port)}
	for _, b := range backends {
		opts.Backends = append(opts.Backends, b.haproxy())
	}
	begin := time.Now()
	front := haproxy.StartTest(t, opts)
	t.Logf("haproxy accepting after %v", time.Since(begin))
	settle(t, backends...)
	return front
}

// settle waits until every backend has answered three more readiness checks, so that
// HAProxy has counted what they answer now, and then resets the transaction counters.
func settle(t *testing.T, backends ...*backend) {
	t.Helper()
	var marks []int32
	for _, b := range backends {
		marks = append(marks, b.checks.Load())
	}
	deadline := time.Now().Add(5 * time.Second)
	for i, b := range backends {
		for b.checks.Load() < marks[i]+3 {
			if time.Now().After(deadline) {
				t.Fatalf("backend %s: %d readiness checks in 5 s, want 3", b.name, b.checks.Load()-marks[i])
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	for _, b := range backends {
		b.txns.Store(0)
	}
}

// reply is what the homeserver gets for a transaction.
type reply struct {
	status  int
	backend string // X-Backend, "" when HAProxy answered itself
	body    string
}

var txnCounter atomic.Int64

// put sends a transaction with body through the front, as a homeserver does.
func put(t *testing.T, front *haproxy.Server, body []byte) reply {
	t.Helper()
	url := fmt.Sprintf("http://%s/_matrix/app/v1/transactions/%d", front.Addr(), txnCounter.Add(1))
	req, err := http.NewRequest(http.MethodPut, url, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	client := http.Client{Timeout: 10 * time.Second}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("PUT %s: %v", url, err)
	}
	defer resp.Body.Close()
	got, _ := io.ReadAll(resp.Body)
	return reply{status: resp.StatusCode, backend: resp.Header.Get("X-Backend"), body: string(got)}
}

// txn returns a transaction body of about size bytes.
func txn(size int) []byte {
	pad := strings.Repeat("x", max(0, size-60))
	return []byte(`{"events":[{"type":"m.room.message","content":{"body":"` + pad + `"}}]}`)
}

func TestOnlyTheReadyBackendGetsTransactions(t *testing.T) {
	t.Parallel()
	a, b := newBackend(t, "a", true), newBackend(t, "b", false)
	front := startFront(t, a, b)
	for i := range 6 {
		if r := put(t, front, txn(200)); r.status != http.StatusOK || r.backend != "a" {
			t.Fatalf("transaction %d: %d from %q, want 200 from a", i, r.status, r.backend)
		}
	}
	if n := b.txns.Load(); n != 0 {
		t.Errorf("the backend that is not ready got %d transactions, want 0", n)
	}
	if !strings.Contains(front.LogTail(20), `switchboard/a `) {
		t.Errorf("the log names no request to a:\n%s", front.LogTail(20))
	}
}

func TestTransactionsFollowReadiness(t *testing.T) {
	t.Parallel()
	a, b := newBackend(t, "a", true), newBackend(t, "b", false)
	front := startFront(t, a, b)
	if r := put(t, front, txn(200)); r.backend != "a" {
		t.Fatalf("before the switch: %d from %q, want 200 from a", r.status, r.backend)
	}

	// a loses the lead (a standby again: 503 on both ports), b takes it.
	switched := time.Now()
	a.ready.Store(false)
	b.ready.Store(true)
	for {
		r := put(t, front, txn(200))
		if r.status == http.StatusOK && r.backend == "b" {
			break
		}
		if time.Since(switched) > 3*time.Second {
			t.Fatalf("3 s after the switch a transaction got %d from %q, want 200 from b", r.status, r.backend)
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Logf("transactions reach b %v after the switch", time.Since(switched))

	settle(t, a, b)
	for i := range 6 {
		if r := put(t, front, txn(200)); r.status != http.StatusOK || r.backend != "b" {
			t.Fatalf("transaction %d after the switch: %d from %q, want 200 from b", i, r.status, r.backend)
		}
	}
	if n := a.txns.Load(); n != 0 {
		t.Errorf("the former leader got %d transactions once it was counted not ready, want 0", n)
	}
}

// redispatched matches a request log line of a request that HAProxy sent to a second
// server: the retries field reads +N.
var redispatched = regexp.MustCompile(`/\+[0-9]+ [0-9]+/[0-9]+ "PUT `)

// TestResend covers HAProxy's retry-on: both backends pass their checks (as in the
// moments before a failed check is counted), and a fails every transaction. Round robin
// sends every other transaction to a first.
func TestResend(t *testing.T) {
	t.Parallel()
	unavailable := func(b *backend) { b.status.Store(http.StatusServiceUnavailable) }
	refusing := func(b *backend) { b.tx.Close() }
	tests := []struct {
		name   string
		size   int
		fail   func(*backend) // how a fails
		resent bool           // whether what a fails reaches b
	}{
		{"a standby's 503 is resent to the leader", 2 << 10, unavailable, true},
		{"a transaction of 14 KiB is resent", 14 << 10, unavailable, true},
		{"a transaction larger than the buffer gets the 503", 16 << 10, unavailable, false},
		{"a refused connection is resent", 2 << 10, refusing, true},
		{"a refused connection is resent whatever its size", 64 << 10, refusing, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			a, b := newBackend(t, "a", true), newBackend(t, "b", true)
			front := startFront(t, a, b)
			tc.fail(a)
			var failed int // transactions answered 503 by a
			for i := range 6 {
				body := txn(tc.size)
				r := put(t, front, body)
				switch {
				case r.status == http.StatusOK && r.backend == "b":
					if got, _ := b.last.Load().([]byte); !bytes.Equal(got, body) {
						t.Fatalf("transaction %d: b got %d bytes, want the %d sent", i, len(got), len(body))
					}
				case !tc.resent && r.status == http.StatusServiceUnavailable && r.backend == "a":
					failed++
				default:
					t.Fatalf("transaction %d: %d from %q, want 200 from b", i, r.status, r.backend)
				}
			}
			if tc.resent {
				// The request log is written as the response goes out: wait for it.
				deadline := time.Now().Add(2 * time.Second)
				for len(redispatched.FindAllString(front.LogTail(100), -1)) == 0 {
					if time.Now().After(deadline) {
						t.Fatalf("no transaction was resent to b, the test shows nothing; log:\n%s", front.LogTail(30))
					}
					time.Sleep(10 * time.Millisecond)
				}
				return
			}
			if failed == 0 {
				t.Fatal("no transaction was sent to a first, the test shows nothing")
			}
			if n := a.txns.Load(); int(n) != failed {
				t.Errorf("a got %d transactions and %d of them came back 503: HAProxy resent some to a", n, failed)
			}
		})
	}
}

func TestNoBackendReady(t *testing.T) {
	t.Parallel()
	a, b := newBackend(t, "a", false), newBackend(t, "b", false)
	front := startFront(t, a, b)
	r := put(t, front, txn(200))
	if r.status != http.StatusServiceUnavailable || r.backend != "" {
		t.Errorf("transaction: %d from %q, want 503 from HAProxy itself", r.status, r.backend)
	}
	if !strings.Contains(r.body, "503 Service Unavailable") {
		t.Errorf("body %q is not HAProxy's 503 page", r.body)
	}
	if n := a.txns.Load() + b.txns.Load(); n != 0 {
		t.Errorf("backends got %d transactions, want 0", n)
	}
}

func TestHaltRestart(t *testing.T) {
	t.Parallel()
	a := newBackend(t, "a", true)
	front := startFront(t, a)
	if err := front.Halt(); err != nil {
		t.Fatalf("Halt: %v", err)
	}
	if conn, err := net.DialTimeout("tcp", front.Addr(), time.Second); err == nil {
		conn.Close()
		t.Fatal("the frontend accepts connections after Halt")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := front.Restart(ctx); err != nil {
		t.Fatalf("Restart: %v", err)
	}
	if r := put(t, front, txn(200)); r.status != http.StatusOK || r.backend != "a" {
		t.Errorf("after Restart: %d from %q, want 200 from a", r.status, r.backend)
	}
}

func TestConfig(t *testing.T) {
	t.Parallel()
	a, b := newBackend(t, "a", true), newBackend(t, "b", false)
	front := startFront(t, a, b)
	written, err := os.ReadFile(filepath.Join(front.Dir, "haproxy.cfg"))
	if err != nil {
		t.Fatal(err)
	}
	if string(written) != front.Config() {
		t.Errorf("Config() is not the haproxy.cfg HAProxy runs")
	}
	for _, want := range []string{
		"bind " + front.Addr() + "\n",
		"retry-on conn-failure empty-response 503\n",
		"option httpchk GET /health/ready\n",
		fmt.Sprintf("server a %s check port %d\n", a.haproxy().Addr, a.haproxy().CheckPort),
		fmt.Sprintf("server b %s check port %d\n", b.haproxy().Addr, b.haproxy().CheckPort),
	} {
		if !strings.Contains(front.Config(), want) {
			t.Errorf("Config() lacks %q:\n%s", want, front.Config())
		}
	}
}

func TestListenInUse(t *testing.T) {
	t.Parallel()
	peerproc.RequireOrSkip(t, "haproxy", haproxy.Available())
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	a := newBackend(t, "a", true)
	_, err = haproxy.Start(context.Background(), haproxy.Options{Dir: t.TempDir(), Listen: ln.Addr().String(), Backends: []haproxy.Backend{a.haproxy()}})
	if !errors.Is(err, peerproc.ErrAddrInUse) {
		t.Errorf("Start on a taken port: %v, want an error wrapping ErrAddrInUse", err)
	}
}

func TestInvalidOptions(t *testing.T) {
	tests := []struct {
		name string
		opts haproxy.Options
		want []string // in the error
	}{
		{"nothing", haproxy.Options{}, []string{"Options.Listen: required", "Options.Backends: required"}},
		{"bad listen", haproxy.Options{Listen: "127.0.0.1", Backends: []haproxy.Backend{{Name: "a", Addr: "127.0.0.1:1", CheckPort: 2}}},
			[]string{"Options.Listen: \"127.0.0.1\" is not HOST:PORT"}},
		{"bad backends", haproxy.Options{Listen: "127.0.0.1:1", Backends: []haproxy.Backend{
			{Name: "a b", Addr: "127.0.0.1:0", CheckPort: 2},
			{Name: "c", Addr: "127.0.0.1:3", CheckPort: 0},
			{Name: "c", Addr: ":4", CheckPort: 70000},
		}}, []string{
			`Options.Backends[0].Name: "a b" is not`,
			`Options.Backends[0].Addr: "127.0.0.1:0" has no port`,
			`Options.Backends[1].CheckPort: 0 is not a port`,
			`Options.Backends[2].Name: "c" is used twice`,
			`Options.Backends[2].Addr: ":4" has no usable host`,
			`Options.Backends[2].CheckPort: 70000 is not a port`,
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := haproxy.Start(context.Background(), tc.opts)
			if err == nil {
				t.Fatal("Start accepted the options")
			}
			for _, want := range tc.want {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error lacks %q:\n%v", want, err)
				}
			}
		})
	}
}
