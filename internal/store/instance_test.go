package store_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/switchboard-matrix/switchboard/internal/store"
	"github.com/switchboard-matrix/switchboard/internal/store/storetest"
)

func TestLockInstance(t *testing.T) {
	for _, d := range []store.Dialect{store.SQLite, store.Postgres} {
		t.Run(string(d), func(t *testing.T) {
			uri := storetest.NewDatabaseURI(t, d)
			ctx := context.Background()
			a, err := store.Open(ctx, uri)
			if err != nil {
				t.Fatal(err)
			}
			defer a.Close()
			b, err := store.Open(ctx, uri)
			if err != nil {
				t.Fatal(err)
			}
			defer b.Close()
			release, err := a.LockInstance(ctx, 0)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := b.LockInstance(ctx, 300*time.Millisecond); !errors.Is(err, store.ErrInstanceRunning) {
				t.Fatalf("second instance: err = %v, want ErrInstanceRunning", err)
			}
			release()
			releaseB, err := b.LockInstance(ctx, time.Second)
			if err != nil {
				t.Fatalf("after release: %v", err)
			}
			releaseB()
		})
	}
}
