package appservice

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"maunium.net/go/mautrix/event"
)

// fakeScanner finds "EVIL" in a file and can be made unreachable.
type fakeScanner struct {
	mu    sync.Mutex
	down  error // when set, every scan and ping fails with it
	scans int   // scans made (reached or not)
	seen  [][]byte
}

func (f *fakeScanner) Scan(ctx context.Context, r io.Reader) (string, error) {
	data, err := io.ReadAll(r)
	if err != nil {
		return "", err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.scans++
	if f.down != nil {
		return "", f.down
	}
	f.seen = append(f.seen, data)
	if bytes.Contains(data, []byte("EVIL")) {
		return "Test.Evil", nil
	}
	return "", nil
}

func (f *fakeScanner) Ping(context.Context) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.down
}

func (f *fakeScanner) Version(context.Context) (string, error) { return "Fake 1.0", nil }

func (f *fakeScanner) setDown(err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.down = err
}

func (f *fakeScanner) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.scans
}

var errFakeDown = fmt.Errorf("%w: dial tcp 127.0.0.1:3310: connection refused", ErrScannerUnavailable)

func newTestScanner(t *testing.T, fs *fakeScanner, tweak func(*Scanning)) *scanner {
	opts := Scanning{Scanner: fs, Outbound: true, MaxBytes: 1 << 20, Hold: time.Hour}
	if tweak != nil {
		tweak(&opts)
	}
	return newScanner(opts, sqliteStore(t), newScanMetrics(prometheus.NewRegistry()))
}

func TestScanFile(t *testing.T) {
	big := bytes.Repeat([]byte("a"), 1<<20+1)
	tests := []struct {
		name      string
		tweak     func(*Scanning)
		dir       Direction
		data      []byte
		down      error
		wantErr   string // substring of the error; "" for none
		wantPerm  bool   // the error is permanent
		wantScans int
	}{
		{name: "clean", data: []byte("hello"), wantScans: 1},
		{name: "empty file", data: nil, wantScans: 1},
		{name: "infected", data: []byte("an EVIL file"), wantErr: `the virus scanner found Test.Evil in the file "f.txt"`, wantPerm: true, wantScans: 1},
		{name: "infected outbound", dir: Outbound, data: []byte("EVIL"), wantErr: "Test.Evil", wantPerm: true, wantScans: 1},
		{name: "outbound not scanned when off", tweak: func(s *Scanning) { s.Outbound = false }, dir: Outbound, data: []byte("EVIL"), wantScans: 0},
		{name: "too large, fail closed", data: big, wantErr: "larger than the virus scanner's limit of 1048576 bytes", wantPerm: true},
		{name: "too large, fail open", tweak: func(s *Scanning) { s.FailOpen = true }, data: big},
		{name: "scanner refuses the size", data: []byte("x"), down: fmt.Errorf("%w: clamd: size limit", ErrScanTooLarge), wantErr: "larger than the virus scanner accepts", wantPerm: true, wantScans: 1},
		{name: "unreachable, fail open", tweak: func(s *Scanning) { s.FailOpen = true }, data: []byte("EVIL"), down: errFakeDown, wantScans: 1},
		{name: "unreachable, held past the hold", tweak: func(s *Scanning) { s.Hold = time.Nanosecond }, data: []byte("x"), down: errFakeDown,
			wantErr: `the file "f.txt" could not be checked for malware: the virus scanner was unreachable for 1ns`, wantPerm: true, wantScans: 2}, // the last try when the hold ends
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			fs := &fakeScanner{down: tc.down}
			s := newTestScanner(t, fs, tc.tweak)
			dir := tc.dir
			if dir == "" {
				dir = Inbound
			}
			err := s.scanFile(t.Context(), "mod", dir, "f.txt", tc.data)
			switch {
			case tc.wantErr == "" && err != nil:
				t.Fatalf("scanFile: %v", err)
			case tc.wantErr != "" && err == nil:
				t.Fatalf("scanFile = nil, want %q", tc.wantErr)
			case err != nil && errors.Is(err, ErrPermanent) != tc.wantPerm:
				t.Errorf("permanent = %v, want %v", errors.Is(err, ErrPermanent), tc.wantPerm)
			}
			if err != nil {
				reason, ok := ScanRefusal(err)
				if !ok || !strings.Contains(reason, tc.wantErr) {
					t.Errorf("ScanRefusal = %q, %v; want %q", reason, ok, tc.wantErr)
				}
				if strings.Contains(err.Error(), "f.txt") {
					t.Errorf("the error names the file (errors are logged): %v", err)
				}
			}
			if got := fs.count(); got != tc.wantScans {
				t.Errorf("scans = %d, want %d", got, tc.wantScans)
			}
		})
	}
}

// A verdict is recorded: the same file (a resend, a redelivery after a crash) is not
// scanned again, clean or infected, until a clean verdict is older than the TTL.
func TestScanVerdictRecorded(t *testing.T) {
	fs := &fakeScanner{}
	s := newTestScanner(t, fs, func(o *Scanning) { o.VerdictTTL = time.Hour })
	ctx := t.Context()
	for range 2 {
		if err := s.scanFile(ctx, "mod", Inbound, "a", []byte("clean")); err != nil {
			t.Fatal(err)
		}
		var ie *InfectedError
		if err := s.scanFile(ctx, "mod", Outbound, "b", []byte("EVIL")); !errors.As(err, &ie) || ie.Name != "b" || ie.Signature != "Test.Evil" {
			t.Fatalf("infected = %v", err)
		}
	}
	if got := fs.count(); got != 2 {
		t.Errorf("scans = %d, want 2 (one per file)", got)
	}
	if got := gaugeOrCounter(t, s.metrics.scans.WithLabelValues("mod", "inbound", "known")); got != 1 {
		t.Errorf("known verdicts = %v, want 1", got)
	}
	s.now = func() time.Time { return time.Now().Add(2 * time.Hour) }
	if err := s.scanFile(ctx, "mod", Inbound, "a", []byte("clean")); err != nil {
		t.Fatal(err)
	}
	if got := fs.count(); got != 3 {
		t.Errorf("scans = %d, want 3 (a stale clean verdict is scanned again)", got)
	}
}

// Fail closed: while the scanner is unreachable the file is held; when it comes back the
// file is scanned once and passes. A caller whose context ends first gets a held error.
func TestScanHeldUntilScannerReturns(t *testing.T) {
	fs := &fakeScanner{down: errFakeDown}
	s := newTestScanner(t, fs, nil)
	ctx := t.Context()

	short, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	err := s.scanFile(short, "mod", Outbound, "f", []byte("x"))
	cancel()
	if !held(err) {
		t.Fatalf("while unreachable = %v, want a held error (ErrScannerUnavailable, not permanent)", err)
	}
	if state, errText := s.state(); state != "unreachable; 1 file(s) held" || !strings.Contains(errText, "connection refused") {
		t.Errorf("state = %q, %q", state, errText)
	}

	done := make(chan error, 1)
	go func() { done <- s.scanFile(ctx, "mod", Outbound, "f", []byte("x")) }()
	time.Sleep(100 * time.Millisecond)
	fs.setDown(nil)
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("after the scanner returned: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the held file was not scanned after the scanner returned")
	}
	if state, _ := s.state(); state != "ok" {
		t.Errorf("state = %q, want ok", state)
	}
	if got := gaugeOrCounter(t, s.metrics.held); got != 0 {
		t.Errorf("held gauge = %v", got)
	}
}

// briefScan asks s about the same file for 20 ms, as a caller whose deadline ends while
// the file is held.
func briefScan(t *testing.T, s *scanner) error {
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Millisecond)
	defer cancel()
	return s.scanFile(ctx, "mod", Inbound, "f", []byte("x"))
}

// The hold is measured from the first time the file was seen, across calls.
func TestScanHoldSpansCalls(t *testing.T) {
	fs := &fakeScanner{down: errFakeDown}
	now := time.Now()
	s := newTestScanner(t, fs, func(o *Scanning) { o.Hold = time.Minute })
	s.now = func() time.Time { return now }
	short := func() error { return briefScan(t, s) }
	if err := short(); !held(err) {
		t.Fatalf("first call = %v, want held", err)
	}
	now = now.Add(90 * time.Second)
	if err := short(); !errors.Is(err, ErrPermanent) || !errors.Is(err, ErrScannerUnavailable) {
		t.Fatalf("after the hold = %v, want a permanent refusal", err)
	}
}

// A held file nobody asks about any more (its caller gave up) stops counting, and when it
// comes back later its hold starts anew.
func TestScanStaleHold(t *testing.T) {
	fs := &fakeScanner{down: errFakeDown}
	now := time.Now()
	s := newTestScanner(t, fs, func(o *Scanning) { o.Hold = time.Minute; o.Timeout = time.Second })
	s.now = func() time.Time { return now }
	short := func() error { return briefScan(t, s) }
	if err := short(); !held(err) {
		t.Fatalf("first call = %v, want held", err)
	}
	now = now.Add(5 * time.Minute) // beyond the hold, but the file went stale long before
	if state, _ := s.state(); state != "unreachable" {
		t.Errorf("state = %q, want no file held", state)
	}
	if err := short(); !held(err) {
		t.Fatalf("asked again much later = %v, want held (a new hold), not refused", err)
	}
}

// scanModule is a recModule whose handler is a function.
type scanModule struct {
	*recModule
	handle func(ctx context.Context, evt *event.Event) error
}

func (m *scanModule) HandleEvent(ctx context.Context, evt *event.Event) error {
	return m.handle(ctx, evt)
}

// Outbound scanning through the dispatcher: an infected file fails its event with a
// notice naming the signature; a held one is retried without using up attempts.
func TestDispatcherScanErrors(t *testing.T) {
	fs := &fakeScanner{}
	var mu sync.Mutex
	calls := 0
	var c *Core
	m := &scanModule{recModule: &recModule{id: "rec"}, handle: func(ctx context.Context, _ *event.Event) error {
		mu.Lock()
		calls++
		n := calls
		mu.Unlock()
		if n == 1 {
			// The first call finds the scanner away and ends (its deadline) holding.
			fs.setDown(errFakeDown)
			short, cancel := context.WithTimeout(ctx, 20*time.Millisecond)
			defer cancel()
			err := c.scan.scanFile(short, "rec", Outbound, "f", []byte("x"))
			fs.setDown(nil)
			return err
		}
		return c.scan.scanFile(ctx, "rec", Outbound, "f", []byte("EVIL"))
	}}
	env := startCoreWith(t, sqliteStore(t), func(o *Options) {
		o.Retry = Retry{Attempts: 1, Initial: time.Millisecond, Max: time.Millisecond}
		o.Scanning = Scanning{Scanner: fs, Outbound: true}
	}, m)
	c = env.core
	putPortal(t, env, "!p:test")
	env.putTxn(t, "1", msgEvent("$evt1", "!p:test", "a file"))
	eventually(t, "the failure notice", func() bool {
		for _, s := range env.hs.sentMessages() {
			if strings.Contains(string(s.Content), "the virus scanner found Test.Evil in the file") {
				return true
			}
		}
		return false
	})
	mu.Lock()
	defer mu.Unlock()
	if calls != 2 {
		t.Errorf("handler calls = %d, want 2 (a held call is not an attempt; Attempts is 1)", calls)
	}
}

// gaugeOrCounter reads a counter's or a gauge's value.
func gaugeOrCounter(t *testing.T, m prometheus.Metric) float64 {
	t.Helper()
	var out dto.Metric
	if err := m.Write(&out); err != nil {
		t.Fatal(err)
	}
	if out.Counter != nil {
		return out.Counter.GetValue()
	}
	return out.Gauge.GetValue()
}

// A held file is tried again as soon as the scanner answers a ping, not at the end of its
// backoff.
func TestScanWokenWhenScannerReturns(t *testing.T) {
	fs := &fakeScanner{down: errFakeDown}
	s := newTestScanner(t, fs, nil)
	s.firstBackoff = time.Hour // the backoff alone would not try again within the test
	done := make(chan error, 1)
	go func() { done <- s.scanFile(t.Context(), "mod", Inbound, "f", []byte("x")) }()
	eventually(t, "the file held", func() bool { state, _ := s.state(); return state == "unreachable; 1 file(s) held" })
	fs.setDown(nil)
	s.noteReached(s.opts.Scanner.Ping(t.Context())) // what watch does
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the held file was not woken by the scanner's return")
	}
}
