// Package main is ingestbench, Switchboard's process-level ingest benchmark (issue 16): see
// package internal/ingestbench. scripts/bench ingest runs it.
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"

	"github.com/switchboard-matrix/switchboard/internal/ingestbench"
)

func main() {
	opts := ingestbench.Options{}
	flag.IntVar(&opts.Reps, "reps", 3, "interleaved repetitions of every server and concurrency (medians are reported)")
	flag.IntVar(&opts.Txns, "txns", 300, "measured transactions of 100 events per run")
	flag.IntVar(&opts.Warmup, "warmup", 30, "warm-up transactions before each measured run")
	conc := flag.String("concurrency", "1,8", "transactions in flight, comma-separated")
	servers := flag.String("servers", "mautrix,node,sqlite,postgres", "servers in the order each repetition runs them")
	flag.StringVar(&opts.PostgresURL, "postgres", os.Getenv("SWITCHBOARD_TEST_POSTGRES"), "PostgreSQL server to create fresh databases on")
	flag.BoolVar(&opts.State, "state", false, "add a run on SQLite holding 100k ghosts and 10k portals (sqlite+state)")
	flag.BoolVar(&opts.Keep, "keep", false, "keep the temporary directory (logs, configs, SQLite files)")
	flag.Parse()
	for _, f := range strings.Split(*conc, ",") {
		c, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || c < 1 {
			fmt.Fprintf(os.Stderr, "ingestbench: bad -concurrency %q\n", *conc)
			os.Exit(2)
		}
		opts.Concurrency = append(opts.Concurrency, c)
	}
	for _, s := range strings.Split(*servers, ",") {
		if s = strings.TrimSpace(s); s != "" {
			opts.Servers = append(opts.Servers, s)
		}
	}
	if opts.Reps < 1 || opts.Txns < 1 || opts.Warmup < 0 {
		fmt.Fprintln(os.Stderr, "ingestbench: -reps and -txns must be at least 1, -warmup at least 0")
		os.Exit(2)
	}
	opts.Log = log.New(os.Stderr, "ingestbench: ", log.Ltime)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := ingestbench.Run(ctx, opts, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
