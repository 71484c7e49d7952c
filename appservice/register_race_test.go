package appservice

import (
	"context"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"

	"maunium.net/go/mautrix/id"
)

// TestConcurrentFirstRegistration: two goroutines acting as the same new ghost at once
// (two mailboxes posting as one sender) register it without a data race on mautrix's
// shared intent (run with -race; it raced before asintent).
func TestConcurrentFirstRegistration(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{}`))
	}))
	defer srv.Close()
	as := fakeAppService(t, srv.URL)
	api := as.Intent(id.NewUserID("_mail_alice", "test")) // mautrix's one intent for the user
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			in := &Intent{api: api}
			if err := in.SetDisplayName(context.Background(), "Alice"); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
}
