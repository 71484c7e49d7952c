package ingestbench

import (
	"encoding/json"
	"io"
	"log"
	"net/http"
	"strings"
	"sync"
)

// StandIn is a homeserver stand-in that answers the calls Switchboard makes at start-up
// (the client API versions, registering the bot, its profile, whoami, the appservice
// ping) and accepts anything else: 200 {} for PUT and POST, 404 M_NOT_FOUND for GET. Each
// unexpected path is logged once.
type StandIn struct {
	Log *log.Logger // may be nil: unexpected paths are not logged

	mu   sync.Mutex          // guards seen
	seen map[string]struct{} // unexpected method+path already logged
}

// ServeHTTP implements http.Handler.
func (s *StandIn) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	_, _ = io.Copy(io.Discard, r.Body)
	p := r.URL.Path
	switch {
	case r.Method == http.MethodGet && p == "/_matrix/client/versions":
		writeJSON(w, http.StatusOK, map[string]any{
			"versions": []string{"r0.6.1", "v1.1", "v1.2", "v1.3", "v1.4", "v1.5", "v1.6", "v1.7", "v1.8", "v1.9", "v1.10", "v1.11"},
		})
	case r.Method == http.MethodPost && strings.HasSuffix(p, "/register"):
		writeJSON(w, http.StatusBadRequest, map[string]string{"errcode": "M_USER_IN_USE", "error": "User ID already taken."})
	case r.Method == http.MethodPost && strings.HasPrefix(p, "/_matrix/client/v1/appservice/") && strings.HasSuffix(p, "/ping"):
		writeJSON(w, http.StatusOK, map[string]int{"duration_ms": 1})
	case r.Method == http.MethodGet && strings.HasSuffix(p, "/account/whoami"):
		writeJSON(w, http.StatusOK, map[string]string{"user_id": r.URL.Query().Get("user_id")})
	case strings.Contains(p, "/profile/"):
		writeJSON(w, http.StatusOK, map[string]string{})
	case r.Method == http.MethodPut || r.Method == http.MethodPost:
		s.unexpected(r)
		writeJSON(w, http.StatusOK, map[string]string{})
	default:
		s.unexpected(r)
		writeJSON(w, http.StatusNotFound, map[string]string{"errcode": "M_NOT_FOUND", "error": "Not found (homeserver stand-in)"})
	}
}

func (s *StandIn) unexpected(r *http.Request) {
	if s.Log == nil {
		return
	}
	key := r.Method + " " + r.URL.Path
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.seen[key]; ok {
		return
	}
	if s.seen == nil {
		s.seen = map[string]struct{}{}
	}
	s.seen[key] = struct{}{}
	s.Log.Printf("homeserver stand-in: unexpected %s", key)
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}
