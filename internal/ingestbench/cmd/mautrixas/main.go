// Package main is mautrixas, the mautrix-go baseline of Switchboard's ingest benchmark
// (internal/ingestbench): a minimal server of maunium.net/go/mautrix/appservice whose own
// transaction handler acknowledges from memory; a goroutine consumes its event channel and
// counts the events by event ID. GET /count answers {"events": n, "distinct": m}.
//
// Usage: mautrixas -listen 127.0.0.1:PORT -hs-token TOKEN
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net/http"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"

	"maunium.net/go/mautrix/appservice"
	"maunium.net/go/mautrix/id"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:0", "address to listen on")
	hsToken := flag.String("hs-token", "", "the homeserver token (hs_token)")
	flag.Parse()
	if *hsToken == "" {
		fmt.Fprintln(os.Stderr, "mautrixas: -hs-token is required")
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, *listen, *hsToken); err != nil {
		fmt.Fprintln(os.Stderr, "mautrixas:", err)
		os.Exit(1)
	}
}

// counter counts events by ID.
type counter struct {
	mu     sync.Mutex
	events int                     // guarded by mu
	seen   map[id.EventID]struct{} // guarded by mu
}

func run(ctx context.Context, listen, hsToken string) error {
	as := appservice.Create()
	as.Registration = &appservice.Registration{ServerToken: hsToken}
	c := &counter{seen: map[id.EventID]struct{}{}}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			select {
			case evt := <-as.Events:
				c.mu.Lock()
				c.events++
				c.seen[evt.ID] = struct{}{}
				c.mu.Unlock()
			case <-ctx.Done():
				return
			}
		}
	}()
	as.Router.HandleFunc("GET /count", func(w http.ResponseWriter, _ *http.Request) {
		c.mu.Lock()
		n, d := c.events, len(c.seen)
		c.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"events":%d,"distinct":%d}`, n, d)
	})
	srv := &http.Server{Addr: listen, Handler: as.Router, ReadHeaderTimeout: 10 * time.Second}
	errc := make(chan error, 1)
	go func() { errc <- srv.ListenAndServe() }()
	select {
	case err := <-errc:
		return fmt.Errorf("failed to serve on %s: %w", listen, err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err := srv.Shutdown(sctx)
	<-done
	if errors.Is(err, http.ErrServerClosed) {
		err = nil
	}
	return err
}
