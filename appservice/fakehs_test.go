package appservice

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
)

// fakeHomeserver is a minimal client-server API for unit tests: registration, profiles,
// joins and sends (deduplicated by transaction ID like a real homeserver). The end-to-end
// tests use a real Dendrite instead.
type fakeHomeserver struct {
	*httptest.Server
	mu       sync.Mutex
	sent     []fakeSent        // guarded by mu
	txns     map[string]string // txn key -> event id
	failSend int               // sends to fail with 500 before succeeding
	// failStatus and failBody, when set, are the answer of a failed send instead of a 500
	// with a Matrix error; dropSend sends are answered by closing the connection.
	failStatus int
	failBody   string
	dropSend   int
	leaves     []fakeLeave // guarded by mu
	ping       bool        // answer the appservice ping
	eventGets  int         // guarded by mu; GET .../event/{id} requests
}

// fakeLeave is a leave (or a declined invite) with its reason.
type fakeLeave struct {
	Room, User, Reason string
}

type fakeSent struct {
	Room, Type, Sender, TxnID string
	Content                   json.RawMessage
}

func newFakeHomeserver(t testing.TB) *fakeHomeserver {
	f := &fakeHomeserver{txns: map[string]string{}}
	mux := http.NewServeMux()
	ok := func(w http.ResponseWriter, body any) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(body)
	}
	mux.HandleFunc("GET /_matrix/client/versions", func(w http.ResponseWriter, _ *http.Request) {
		ok(w, map[string]any{"versions": []string{"v1.2"}})
	})
	mux.HandleFunc("POST /_matrix/client/v3/register", func(w http.ResponseWriter, _ *http.Request) {
		ok(w, map[string]any{"user_id": "@x:test"})
	})
	mux.HandleFunc("PUT /_matrix/client/v3/profile/{user}/displayname", func(w http.ResponseWriter, _ *http.Request) { ok(w, struct{}{}) })
	mux.HandleFunc("GET /_matrix/client/v3/profile/{user}", func(w http.ResponseWriter, _ *http.Request) { ok(w, struct{}{}) })
	mux.HandleFunc("POST /_matrix/client/v3/join/{room}", func(w http.ResponseWriter, r *http.Request) {
		ok(w, map[string]any{"room_id": r.PathValue("room")})
	})
	mux.HandleFunc("POST /_matrix/client/v3/rooms/{room}/join", func(w http.ResponseWriter, r *http.Request) {
		ok(w, map[string]any{"room_id": r.PathValue("room")})
	})
	mux.HandleFunc("POST /_matrix/client/v3/rooms/{room}/leave", func(w http.ResponseWriter, r *http.Request) {
		var req struct {
			Reason string `json:"reason"`
		}
		_ = json.NewDecoder(r.Body).Decode(&req)
		f.mu.Lock()
		f.leaves = append(f.leaves, fakeLeave{Room: r.PathValue("room"), User: r.URL.Query().Get("user_id"), Reason: req.Reason})
		f.mu.Unlock()
		ok(w, struct{}{})
	})
	mux.HandleFunc("POST /_matrix/client/v1/appservice/{id}/ping", func(w http.ResponseWriter, _ *http.Request) {
		f.mu.Lock()
		defer f.mu.Unlock()
		if !f.ping {
			w.WriteHeader(http.StatusNotFound)
			ok(w, map[string]string{"errcode": "M_UNRECOGNIZED", "error": "unknown"})
			return
		}
		ok(w, map[string]any{"duration_ms": 1})
	})
	mux.HandleFunc("PUT /_matrix/client/v3/rooms/{room}/send/{type}/{txn}", func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		defer f.mu.Unlock()
		if f.dropSend > 0 {
			f.dropSend--
			if conn, _, err := http.NewResponseController(w).Hijack(); err == nil {
				_ = conn.Close()
			}
			return
		}
		if f.failSend > 0 && f.failStatus != 0 {
			f.failSend--
			w.WriteHeader(f.failStatus)
			_, _ = w.Write([]byte(f.failBody))
			return
		}
		if f.failSend > 0 {
			f.failSend--
			w.WriteHeader(http.StatusInternalServerError)
			ok(w, map[string]string{"errcode": "M_UNKNOWN", "error": "try later"})
			return
		}
		sender := r.URL.Query().Get("user_id")
		key := sender + "|" + r.PathValue("txn")
		if eid, dup := f.txns[key]; dup {
			ok(w, map[string]string{"event_id": eid})
			return
		}
		var content json.RawMessage
		_ = json.NewDecoder(r.Body).Decode(&content)
		eid := fmt.Sprintf("$ev%d", len(f.sent)+1)
		f.txns[key] = eid
		f.sent = append(f.sent, fakeSent{Room: r.PathValue("room"), Type: r.PathValue("type"), Sender: sender, TxnID: r.PathValue("txn"), Content: content})
		ok(w, map[string]string{"event_id": eid})
	})
	mux.HandleFunc("GET /_matrix/client/v3/rooms/{room}/event/{event}", func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		defer f.mu.Unlock()
		f.eventGets++
		for i, s := range f.sent {
			if eid := fmt.Sprintf("$ev%d", i+1); eid == r.PathValue("event") && s.Room == r.PathValue("room") {
				ok(w, map[string]any{"event_id": eid, "room_id": s.Room, "type": s.Type, "sender": s.Sender,
					"origin_server_ts": 1, "content": s.Content})
				return
			}
		}
		w.WriteHeader(http.StatusNotFound)
		ok(w, map[string]string{"errcode": "M_NOT_FOUND", "error": "no such event"})
	})
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, "/_matrix/client/v3/rooms/") && strings.Contains(r.URL.Path, "/state/") {
			ok(w, map[string]string{"event_id": "$state"})
			return
		}
		w.WriteHeader(http.StatusNotFound)
		ok(w, map[string]string{"errcode": "M_UNRECOGNIZED", "error": r.Method + " " + r.URL.Path})
	})
	f.Server = httptest.NewServer(mux)
	t.Cleanup(f.Close)
	return f
}

func (f *fakeHomeserver) leftRooms() []fakeLeave {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]fakeLeave(nil), f.leaves...)
}

func (f *fakeHomeserver) sentMessages() []fakeSent {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]fakeSent(nil), f.sent...)
}
