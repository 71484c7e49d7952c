package testmodule

import (
	"encoding/json"
	"net/http"
	"strconv"
	"sync/atomic"
)

// Feed is a fake remote network for the module's RemoteURL: it serves the numbered
// messages "remote-1" … "remote-<Released>", at most 50 after the asked cursor.
type Feed struct {
	Released atomic.Int64 // how many messages the network has
	Fetches  atomic.Int64 // requests served
}

// ServeHTTP answers GET ?after=N with the released messages after N.
func (f *Feed) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.Fetches.Add(1)
	after, _ := strconv.Atoi(r.URL.Query().Get("after"))
	upto := min(int(f.Released.Load()), after+50)
	msgs := []RemoteMessage{}
	for i := after + 1; i <= upto; i++ {
		msgs = append(msgs, RemoteMessage{Seq: i, Body: "remote-" + strconv.Itoa(i)})
	}
	_ = json.NewEncoder(w).Encode(msgs)
}
