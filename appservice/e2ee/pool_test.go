package e2ee

import (
	"context"
	"sync"
	"testing"
	"time"

	"go.mau.fi/util/dbutil"
	"maunium.net/go/mautrix/crypto"
	"maunium.net/go/mautrix/id"

	"github.com/switchboard-matrix/switchboard/internal/store"
	"github.com/switchboard-matrix/switchboard/internal/store/storetest"
)

// TestCryptoStoreOnPoolDoesNotDeadlock: mautrix's crypto store holds a query open while it
// waits for its session cache's lock, which another of its calls holds while it waits for
// a connection. On the core's single SQLite connection the two wait for each other
// forever (it stalled a test run); on store.Pool they do not.
func TestCryptoStoreOnPoolDoesNotDeadlock(t *testing.T) {
	for _, d := range []store.Dialect{store.SQLite, store.Postgres} {
		t.Run(string(d), func(t *testing.T) {
			st := storetest.Open(t, d)
			pool, err := st.Pool()
			if err != nil {
				t.Fatal(err)
			}
			dialect := "postgres"
			if d == store.SQLite {
				dialect = "sqlite3"
			}
			db, err := dbutil.NewWithDB(pool, dialect)
			if err != nil {
				t.Fatal(err)
			}
			db.Log = dbutil.NoopLogger
			cs := crypto.NewSQLCryptoStore(db, dbutil.NoopLogger, "@acct:x", "DEV", []byte("pickle"))
			ctx := context.Background()
			if err := cs.DB.Upgrade(ctx); err != nil {
				t.Fatal(err)
			}
			key := id.SenderKey("yKuPgmyY7IOeM765mtc2M0I2xXHIhR4VWDVhvjc7aEU")
			done := make(chan struct{})
			go func() {
				defer close(done)
				var wg sync.WaitGroup
				for i := 0; i < 2000; i++ {
					wg.Add(1)
					go func() { defer wg.Done(); _, _ = cs.GetLatestSession(ctx, key) }()
					if _, err := cs.GetSessions(ctx, key); err != nil {
						t.Error(err)
						return
					}
				}
				wg.Wait()
			}()
			select {
			case <-done:
			case <-time.After(60 * time.Second):
				t.Fatal("the crypto store is stuck: GetSessions and GetLatestSession wait for each other")
			}
		})
	}
}
