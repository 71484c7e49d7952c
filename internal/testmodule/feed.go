package testmodule

import (
	"encoding/json"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
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

// Effect is one POST to an EffectLog: who handled which event, when it arrived.
type Effect struct {
	Event string
	PID   int
	At    time.Time
}

// EffectLog records the test module's remote side effects (Config.EffectURL): POST
// ?event=ID&pid=PID, answered 204.
type EffectLog struct {
	mu      sync.Mutex
	effects []Effect // guarded by mu
}

// ServeHTTP records one effect.
func (l *EffectLog) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		http.Error(w, "POST only", http.StatusMethodNotAllowed)
		return
	}
	pid, _ := strconv.Atoi(r.URL.Query().Get("pid"))
	l.mu.Lock()
	l.effects = append(l.effects, Effect{Event: r.URL.Query().Get("event"), PID: pid, At: time.Now()})
	l.mu.Unlock()
	w.WriteHeader(http.StatusNoContent)
}

// Effects returns the effects so far, in arrival order.
func (l *EffectLog) Effects() []Effect {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]Effect(nil), l.effects...)
}
