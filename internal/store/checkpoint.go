package store

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/rs/zerolog"
)

// SQLite's write-ahead log is copied back into the database file by checkpoints. Left to
// SQLite, the commit that takes the log past wal_autocheckpoint pages runs one itself:
// a page write per page and two fsyncs on the path of that commit, which made every
// hundredth homeserver transaction wait milliseconds for its acknowledgement. The store
// runs them instead on a connection of its own, in the background: a PASSIVE checkpoint
// copies what no reader still needs while writers go on appending, and a page written by
// many commits between two checkpoints is copied once. The connections' own threshold is
// raised to checkpointFallbackPages, a fallback should the background ones fall behind.
const (
	checkpointInterval      = 200 * time.Millisecond
	checkpointFallbackPages = 8192 // 32 MiB of 4 KiB pages
)

// checkpointer runs PASSIVE checkpoints of the SQLite database every checkpointInterval
// until ctx ends; done is closed when it has stopped.
type checkpointer struct {
	db     *sql.DB // one connection of its own
	cancel context.CancelFunc
	done   chan struct{}
}

// startCheckpointer opens the checkpointer's connection to path and starts it. Its
// failures are logged through ctx's logger and retried at the next tick.
func startCheckpointer(ctx context.Context, path string) (*checkpointer, error) {
	db, err := sql.Open("sqlite", path+"?"+sqliteParams)
	if err != nil {
		return nil, fmt.Errorf("store: open sqlite checkpointer %s: %w", path, err)
	}
	db.SetMaxOpenConns(1)
	log := zerolog.Ctx(ctx).With().Str("component", "sqlite-checkpoint").Logger()
	ctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	c := &checkpointer{db: db, cancel: cancel, done: make(chan struct{})}
	go c.run(ctx, &log)
	return c, nil
}

func (c *checkpointer) run(ctx context.Context, log *zerolog.Logger) {
	defer close(c.done)
	t := time.NewTicker(checkpointInterval)
	defer t.Stop()
	failing := false
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		var busy, logPages, done int
		err := c.db.QueryRowContext(ctx, `PRAGMA wal_checkpoint(PASSIVE)`).Scan(&busy, &logPages, &done)
		switch {
		case err != nil && ctx.Err() != nil:
			return
		case err != nil && !failing:
			log.Warn().Err(err).Msg("background checkpoint failed; retrying (commits checkpoint themselves past the fallback threshold)")
			failing = true
		case err == nil && failing:
			log.Info().Msg("background checkpoints work again")
			failing = false
		}
	}
}

// stop ends the checkpointer and closes its connection.
func (c *checkpointer) stop() {
	c.cancel()
	<-c.done
	_ = c.db.Close()
}
