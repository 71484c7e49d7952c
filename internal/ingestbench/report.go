package ingestbench

import (
	"fmt"
	"io"
	"slices"
	"strings"
	"time"
)

// summary is the median of one server at one concurrency over its repetitions.
type summary struct {
	runs, failed   int // successful runs, failed runs
	eventsPerSec   float64
	cpuPerEvent    float64
	p50, p99       float64 // ms
	rssMB          float64
	lagMS, lagMax  float64
	onceOK, onceNo int
	problems       []string
}

func median(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	v = slices.Clone(v)
	slices.Sort(v)
	if len(v)%2 == 1 {
		return v[len(v)/2]
	}
	return (v[len(v)/2-1] + v[len(v)/2]) / 2
}

func summarise(samples []Sample, server string, c int) summary {
	var s summary
	var eps, cpu, p50, p99, rss, lag []float64
	for _, x := range samples {
		if x.Server != server || x.C != c {
			continue
		}
		if x.Err != nil {
			s.failed++
			s.problems = append(s.problems, fmt.Sprintf("rep %d: %v", x.Rep, x.Err))
			continue
		}
		s.runs++
		eps = append(eps, x.EventsPerSec)
		cpu = append(cpu, x.CPUPerEvent)
		p50 = append(p50, ms(x.P50))
		p99 = append(p99, ms(x.P99))
		rss = append(rss, mb(x.PeakRSS))
		lag = append(lag, ms(x.Lag))
		s.lagMax = max(s.lagMax, ms(x.Lag))
		if x.OK {
			s.onceOK++
		} else {
			s.onceNo++
			s.problems = append(s.problems, fmt.Sprintf("rep %d: %s", x.Rep, x.Check))
		}
	}
	s.eventsPerSec, s.cpuPerEvent = median(eps), median(cpu)
	s.p50, s.p99, s.rssMB, s.lagMS = median(p50), median(p99), median(rss), median(lag)
	return s
}

var serverLabels = map[string]string{
	ServerMautrix:  "mautrix-go appservice (memory)",
	ServerNode:     "matrix-appservice, Node (memory)",
	ServerSQLite:   "switchboard, SQLite",
	ServerPostgres: "switchboard, PostgreSQL",
	ServerState:    "switchboard, SQLite, 100k ghosts+10k portals",
}

func label(server string) string {
	if l, ok := serverLabels[server]; ok {
		return l
	}
	return server
}

// Report writes the table of medians and the ratios of issue 16's "Done when".
func Report(w io.Writer, opts Options, servers []string, samples []Sample) {
	sum := map[string]map[int]summary{}
	for _, srv := range servers {
		sum[srv] = map[int]summary{}
		for _, c := range opts.Concurrency {
			sum[srv][c] = summarise(samples, srv, c)
		}
	}
	fmt.Fprintf(w, "\nProcess-level ingest: %d measured transactions of %d m.room.message events (after %d warm-up), 20 rooms,\nmedians of %d interleaved repetitions, a fresh process and database per run.\n\n",
		opts.Txns, EventsPerTxn, opts.Warmup, opts.Reps)
	fmt.Fprintf(w, "%-46s %2s %10s %9s %17s %8s %15s  %s\n", "server", "C", "events/s", "CPU µs/ev", "p50 / p99 ms", "RSS MB", "lag ms (max)", "exactly once")
	for _, c := range opts.Concurrency {
		for _, srv := range servers {
			s := sum[srv][c]
			if s.runs == 0 {
				fmt.Fprintf(w, "%-46s %2d %s\n", label(srv), c, "failed (see below)")
				continue
			}
			once := fmt.Sprintf("%d/%d runs", s.onceOK, s.runs)
			if s.failed > 0 {
				once += fmt.Sprintf(", %d failed", s.failed)
			}
			fmt.Fprintf(w, "%-46s %2d %10.0f %9.1f %8.2f / %6.2f %8.1f %6.1f (%6.1f)  %s\n", label(srv), c,
				s.eventsPerSec, s.cpuPerEvent, s.p50, s.p99, s.rssMB, s.lagMS, s.lagMax, once)
		}
	}
	for _, srv := range servers {
		for _, c := range opts.Concurrency {
			for _, p := range sum[srv][c].problems {
				fmt.Fprintf(w, "  %s C=%d %s\n", srv, c, p)
			}
		}
	}
	get := func(srv string, c int) (summary, bool) {
		s, ok := sum[srv][c]
		return s, ok && s.runs > 0
	}
	ratio := func(a, b float64) string {
		if b == 0 {
			return "n/a"
		}
		return fmt.Sprintf("%.2fx", a/b)
	}
	var lines []string
	add := func(format string, args ...any) { lines = append(lines, fmt.Sprintf(format, args...)) }
	mau, hasMau := get(ServerMautrix, 1)
	node, hasNode := get(ServerNode, 1)
	if sq, ok := get(ServerSQLite, 1); ok {
		if hasMau {
			add("SQLite C=1 events/s / mautrix C=1:          %s  (goal >= 2x)", ratio(sq.eventsPerSec, mau.eventsPerSec))
		}
		if hasNode {
			add("SQLite C=1 events/s / Node C=1:             %s  (goal >= 1x)", ratio(sq.eventsPerSec, node.eventsPerSec))
		}
		add("SQLite C=1 CPU per event:                   %.1f µs  (goal <= 10)%s", sq.cpuPerEvent,
			func() string {
				if hasMau {
					return fmt.Sprintf("; mautrix %.1f µs, %s", mau.cpuPerEvent, ratio(sq.cpuPerEvent, mau.cpuPerEvent))
				}
				return ""
			}())
		if hasMau {
			add("SQLite C=1 p99 / mautrix C=1 p99:           %.2f / %.2f ms = %s  (goal <= 1x)", sq.p99, mau.p99, ratio(sq.p99, mau.p99))
		}
		add("SQLite C=1 dispatch lag after the last ack: median %.1f ms, max %.1f ms  (goal <= 1000)", sq.lagMS, sq.lagMax)
	}
	if pg, ok := get(ServerPostgres, 1); ok {
		if hasMau {
			add("PostgreSQL C=1 events/s / mautrix C=1:      %s  (goal >= 1x)", ratio(pg.eventsPerSec, mau.eventsPerSec))
		}
		add("PostgreSQL C=1 dispatch lag after the last ack: median %.1f ms, max %.1f ms  (goal <= 1000)", pg.lagMS, pg.lagMax)
	}
	for _, srv := range []string{ServerSQLite, ServerPostgres} {
		one, ok1 := get(srv, 1)
		for _, c := range opts.Concurrency {
			if c == 1 {
				continue
			}
			if many, ok := get(srv, c); ok && ok1 {
				add("%-10s C=%d / C=1 events/s:              %s  (goal >= 1x)", srv, c, ratio(many.eventsPerSec, one.eventsPerSec))
			}
		}
	}
	for _, c := range opts.Concurrency {
		st, ok1 := get(ServerState, c)
		sq, ok2 := get(ServerSQLite, c)
		if ok1 && ok2 {
			add("100k ghosts + 10k portals, C=%d: peak RSS %.1f MB (plain %.1f; goal <= 150), CPU %.1f µs/event (plain %.1f, %s)",
				c, st.rssMB, sq.rssMB, st.cpuPerEvent, sq.cpuPerEvent, ratio(st.cpuPerEvent, sq.cpuPerEvent))
		}
	}
	total, bad := 0, 0
	for _, x := range samples {
		if x.Err == nil {
			total++
			if !x.OK {
				bad++
			}
		}
	}
	add("exactly once: %d of %d completed runs had every event journaled and handled (or counted) once", total-bad, total)
	fmt.Fprintln(w)
	fmt.Fprintln(w, strings.Join(lines, "\n"))
	fmt.Fprintf(w, `
events/s: measured events over the wall time from the first measured PUT to the last answer.
CPU µs/ev: the server process's user+system time (/proc/PID/stat) from the first measured
PUT until every event was handled, over the measured events (PostgreSQL's own CPU is not
counted). RSS: peak resident set (VmHWM) at the end of the run. lag: from the last
acknowledged transaction until the module / event listener had every event (polled every
%s; Switchboard's /metrics, the baselines' /count). Switchboard commits before it answers;
mautrix-go and matrix-appservice acknowledge from memory.
`, 5*time.Millisecond)
}
