// Package ingestbench is Switchboard's process-level ingest benchmark (issue 16): it builds
// and starts the real switchboard binary (the test build with a no-op module) on a fresh
// SQLite file and a fresh PostgreSQL database, a minimal mautrix-go appservice server and
// matrix-org's matrix-appservice 2.0.0 on Node, drives each with the same transactions
// (built before the clock starts; warm-up excluded; interleaved repetitions) as a
// homeserver would push them, reads each server's CPU time and peak RSS from /proc, checks
// that every event was journaled or handled exactly once, and prints the medians and the
// ratios the issue asks for. A homeserver stand-in answers Switchboard's start-up calls.
// It measures; it asserts nothing.
package ingestbench

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"time"
)

// The servers a run can drive.
const (
	ServerMautrix  = "mautrix"
	ServerNode     = "node"
	ServerSQLite   = "sqlite"
	ServerPostgres = "postgres"
	ServerState    = "sqlite+state"
)

// Options configure a benchmark run. Zero values mean the defaults of the command.
type Options struct {
	Reps        int      // repetitions of every server × concurrency
	Txns        int      // measured transactions per run
	Warmup      int      // warm-up transactions before each measured run
	Concurrency []int    // transactions in flight
	Servers     []string // of the Server constants, in the order each repetition runs them
	PostgresURL string   // a server to create fresh databases on; needed for ServerPostgres
	State       bool     // add ServerState: SQLite with 100k ghosts and 10k portals
	Keep        bool     // keep the temporary directory (logs, configs, SQLite files)
	Log         *log.Logger
}

// Sample is one run of one server at one concurrency.
type Sample struct {
	Server       string
	C, Rep       int
	EventsPerSec float64
	CPUPerEvent  float64 // µs of the server's user+system CPU per event
	P50, P99     time.Duration
	PeakRSS      int64         // bytes
	Lag          time.Duration // from the last acknowledged transaction until every event was handled
	Check        string
	OK           bool  // exactly once
	Err          error // the run failed; the figures are zero
}

// Run runs the benchmark and writes the table and ratios to w.
func Run(ctx context.Context, opts Options, w io.Writer) error {
	logf := func(format string, args ...any) {
		if opts.Log != nil {
			opts.Log.Printf(format, args...)
		}
	}
	dir, err := os.MkdirTemp("", "ingestbench-")
	if err != nil {
		return fmt.Errorf("ingestbench: %w", err)
	}
	if opts.Keep {
		logf("keeping %s", dir)
	} else {
		defer os.RemoveAll(dir)
	}
	servers := slices.Clone(opts.Servers)
	if opts.State && !slices.Contains(servers, ServerState) {
		servers = append(servers, ServerState)
	}
	if slices.Contains(servers, ServerPostgres) && opts.PostgresURL == "" {
		return fmt.Errorf("ingestbench: the postgres server needs -postgres or SWITCHBOARD_TEST_POSTGRES")
	}

	logf("building switchboard-test and mautrixas")
	sbBin, err := goBuild(ctx, dir, "github.com/switchboard-matrix/switchboard/internal/testmodule/cmd/switchboard-test")
	if err != nil {
		return err
	}
	masBin, err := goBuild(ctx, dir, "github.com/switchboard-matrix/switchboard/internal/ingestbench/cmd/mautrixas")
	if err != nil {
		return err
	}
	var nodeInst *nodeInstall
	if slices.Contains(servers, ServerNode) {
		logf("installing matrix-appservice 2.0.0 (once, into the cache)")
		if nodeInst, err = installNode(ctx, dir); err != nil {
			return err
		}
	}

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return fmt.Errorf("ingestbench: failed to listen for the homeserver stand-in: %w", err)
	}
	hs := &http.Server{Handler: &StandIn{Log: opts.Log}, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = hs.Serve(ln) }()
	defer hs.Close()

	rooms := make([]string, 20)
	for i := range rooms {
		rooms[i] = fmt.Sprintf("!benchroom%d:%s", i, Domain)
	}
	env := sbEnv{bin: sbBin, standInURL: "http://" + ln.Addr().String(), postgresURL: opts.PostgresURL, rooms: rooms}
	runID := make([]byte, 4)
	_, _ = rand.Read(runID)

	var samples []Sample
	n := 0
	for rep := 1; rep <= opts.Reps; rep++ {
		for _, c := range opts.Concurrency {
			for _, srv := range servers {
				n++
				rdir := filepath.Join(dir, fmt.Sprintf("%03d-%s-c%d-r%d", n, srv, c, rep))
				if err := os.MkdirAll(rdir, 0o755); err != nil {
					return fmt.Errorf("ingestbench: %w", err)
				}
				tag := fmt.Sprintf("%s-%d", hex.EncodeToString(runID), n)
				s := runOne(ctx, runSpec{
					server: srv, c: c, rep: rep, dir: rdir, tag: tag, rooms: rooms,
					txns: opts.Txns, warmup: opts.Warmup, sb: env, mautrixBin: masBin, node: nodeInst,
				})
				if s.Err != nil {
					logf("rep %d, C=%d, %s: %v", rep, c, srv, s.Err)
				} else {
					logf("rep %d, C=%d, %-12s %8.0f events/s %7.1f µs/event  p50 %6.2f p99 %7.2f ms  RSS %5.1f MB  lag %6.1f ms  %s",
						rep, c, srv, s.EventsPerSec, s.CPUPerEvent, ms(s.P50), ms(s.P99), mb(s.PeakRSS), ms(s.Lag), s.Check)
				}
				samples = append(samples, s)
				if ctx.Err() != nil {
					return ctx.Err()
				}
			}
		}
	}
	Report(w, opts, servers, samples)
	if slices.Contains(servers, ServerPostgres) {
		fsync, err := PostgresFsync(ctx, opts.PostgresURL)
		if err != nil {
			fsync = "unknown (" + err.Error() + ")"
		}
		fmt.Fprintf(w, "PostgreSQL: fsync = %s.\n", fsync)
	}
	return nil
}

// goBuild builds the main package pkg into dir.
func goBuild(ctx context.Context, dir, pkg string) (string, error) {
	bin := filepath.Join(dir, filepath.Base(pkg))
	out, err := exec.CommandContext(ctx, "go", "build", "-o", bin, pkg).CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("ingestbench: go build %s: %w\n%s", pkg, err, out)
	}
	return bin, nil
}

// runSpec is one run: one fresh server process, warm-up, measured transactions.
type runSpec struct {
	server     string
	c, rep     int
	dir, tag   string
	rooms      []string
	txns       int
	warmup     int
	sb         sbEnv
	mautrixBin string
	node       *nodeInstall // nil unless the node server is selected
}

// runOne starts the server, sends the warm-up and waits until it is handled, then sends the
// measured transactions, reading the server's CPU time before the first and after every
// event was handled (so CPU per event includes dispatch), and its peak RSS at the end.
func runOne(ctx context.Context, r runSpec) Sample {
	s := Sample{Server: r.server, C: r.c, Rep: r.rep}
	// Built before the server starts, and before the clock.
	all, err := BuildTxns(r.tag, Domain, r.rooms, r.warmup+r.txns)
	if err != nil {
		s.Err = err
		return s
	}
	warm, measured := all[:r.warmup], all[r.warmup:]
	token := randomToken()
	var p *proc
	switch r.server {
	case ServerMautrix:
		p, err = startMautrix(ctx, r.mautrixBin, r.dir, token)
	case ServerNode:
		p, err = startNode(ctx, r.node, r.dir, token)
	case ServerSQLite, ServerPostgres, ServerState:
		p, err = startSwitchboard(ctx, r.sb, sbKind(r.server), r.dir)
	default:
		err = fmt.Errorf("ingestbench: unknown server %q", r.server)
	}
	if err != nil {
		s.Err = err
		return s
	}
	if p.cleanup != nil {
		defer p.cleanup(ctx)
	}
	stopped := false
	defer func() {
		if !stopped {
			p.stop()
		}
	}()
	client := NewClient(r.c)
	defer client.CloseIdleConnections()
	const catchUp = 2 * time.Minute
	if _, err := Drive(ctx, client, p.baseURL, p.hsToken, warm, r.c); err != nil {
		s.Err = fmt.Errorf("warm-up: %w", err)
		return s
	}
	if _, err := p.waitHandled(ctx, int64(Sent(warm)), catchUp); err != nil {
		s.Err = fmt.Errorf("warm-up: %w", err)
		return s
	}
	cpu0, err := ProcCPU(p.pid())
	if err != nil {
		s.Err = err
		return s
	}
	res, err := Drive(ctx, client, p.baseURL, p.hsToken, measured, r.c)
	if err != nil {
		s.Err = err
		return s
	}
	caught, err := p.waitHandled(ctx, int64(Sent(all)), catchUp)
	if err != nil {
		s.Err = err
		return s
	}
	cpu1, err := ProcCPU(p.pid())
	if err != nil {
		s.Err = err
		return s
	}
	if s.PeakRSS, err = ProcPeakRSS(p.pid()); err != nil {
		s.Err = err
		return s
	}
	events := float64(Sent(measured))
	s.EventsPerSec = events / res.Wall.Seconds()
	s.CPUPerEvent = float64(cpu1-cpu0) * 1e6 / float64(clockTicks) / events
	s.P50, s.P99 = res.Quantile(0.50), res.Quantile(0.99)
	s.Lag = caught.Sub(res.LastAck)
	p.stop()
	stopped = true
	s.Check, s.OK = p.check(ctx, Sent(all))
	return s
}

// clockTicks is the kernel's clock ticks per second.
var clockTicks = ClockTicks()

func randomToken() string {
	b := make([]byte, 24)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
func mb(b int64) float64         { return float64(b) / (1 << 20) }
