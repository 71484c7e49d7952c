package benchflight

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"testing"
	"time"
)

// loopback starts a receiver that sees every sent body at once, in its own goroutine, and
// returns the send that feeds it.
func loopback(b *testing.B) (start func(sink func(string)), send Send) {
	ch := make(chan string, 64)
	done := make(chan struct{})
	start = func(sink func(string)) {
		go func() {
			defer close(done)
			for body := range ch {
				sink(body)
			}
		}()
		b.Cleanup(func() { close(ch); <-done })
	}
	send = func(ctx context.Context, f *Flight, i int) error {
		select {
		case ch <- f.Body(i):
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return start, send
}

func TestRunReportsTheMetricsScriptsBenchReads(t *testing.T) {
	tests := []struct {
		name   string
		run    func(*testing.B, int, func(func(string)), Send)
		window int
		want   []string
	}{
		{"Run, one in flight", Run, 1, []string{"msgs/s", "p50-ms", "p99-ms"}},
		{"Run, 16 in flight", Run, 16, []string{"msgs/s", "p50-ms", "p99-ms"}},
		{"RunTimingSends, 16 in flight", RunTimingSends, 16, []string{"msgs/s", "p50-ms", "p99-ms", "send-p50-ms", "send-p99-ms"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := testing.Benchmark(func(b *testing.B) {
				start, send := loopback(b)
				tt.run(b, tt.window, start, send)
			})
			if res.N == 0 {
				t.Fatal("the benchmark failed")
			}
			if got := slices.Sorted(maps.Keys(res.Extra)); !slices.Equal(got, tt.want) {
				t.Errorf("metrics %q, want %q", got, tt.want)
			}
			if res.Extra["msgs/s"] <= 0 {
				t.Errorf("msgs/s = %v, want > 0", res.Extra["msgs/s"])
			}
		})
	}
}

func TestFlightRunStopsAtTheFirstFailedSend(t *testing.T) {
	f := newFlight(100, true)
	broken := errors.New("broken pipe")
	err := f.run(4, func(_ context.Context, f *Flight, i int) error {
		if i == 10 {
			return broken
		}
		f.arrive(f.Body(i), time.Now())
		return nil
	})
	if !errors.Is(err, broken) {
		t.Fatalf("run: %v, want %v", err, broken)
	}
	if n := f.count(); n >= 100 {
		t.Errorf("%d messages arrived, want the run stopped before all", n)
	}
}

func TestFlightArrive(t *testing.T) {
	f := newFlight(3, true)
	tests := []struct {
		name    string
		body    string
		theirs  bool
		arrived int
	}{
		{"another flight's message", "bm0000x message 1", false, 0},
		{"not a benchmark message", "hello", false, 0},
		{"its message", f.Body(1), true, 1},
		{"its message again", f.Body(1), true, 1},
		{"with surrounding white space", "  " + f.Body(2) + "\n", true, 2},
		{"out of range", f.Body(3), true, 2},
		{"not a number", f.Body(0) + "x", true, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := f.arrive(tt.body, time.Now()); got != tt.theirs {
				t.Errorf("arrive(%q) = %v, want %v", tt.body, got, tt.theirs)
			}
			if got := f.count(); got != tt.arrived {
				t.Errorf("%d arrived, want %d", got, tt.arrived)
			}
		})
	}
}

func TestPercentile(t *testing.T) {
	ms := func(ns ...int) []time.Duration {
		out := make([]time.Duration, len(ns))
		for i, n := range ns {
			out[i] = time.Duration(n) * time.Millisecond
		}
		return out
	}
	hundred := make([]int, 100)
	for i := range hundred {
		hundred[i] = 100 - i
	}
	tests := []struct {
		name string
		ds   []time.Duration
		p    int
		want time.Duration
	}{
		{"one value", ms(7), 50, 7 * time.Millisecond},
		{"p50 of two", ms(9, 1), 50, 1 * time.Millisecond},
		{"p99 of two", ms(9, 1), 99, 9 * time.Millisecond},
		{"p50 of 100, unsorted", ms(hundred...), 50, 50 * time.Millisecond},
		{"p99 of 100, unsorted", ms(hundred...), 99, 99 * time.Millisecond},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := percentile(tt.ds, tt.p); got != tt.want {
				t.Errorf("percentile(%v, %d) = %v, want %v", tt.ds, tt.p, got, tt.want)
			}
		})
	}
}

// A benchmark sends through its own path; here the receiver sees each body as it is sent.
func ExampleRunTimingSends() {
	res := testing.Benchmark(func(b *testing.B) {
		received := make(chan string, 16)
		RunTimingSends(b, 16, func(sink func(string)) {
			go func() {
				for body := range received {
					sink(body)
				}
			}()
			b.Cleanup(func() { close(received) })
		}, func(_ context.Context, f *Flight, i int) error {
			received <- f.Body(i)
			return nil
		})
	})
	fmt.Println(slices.Sorted(maps.Keys(res.Extra)))
	// Output: [msgs/s p50-ms p99-ms send-p50-ms send-p99-ms]
}
