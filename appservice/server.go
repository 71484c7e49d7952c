package appservice

import (
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/rs/zerolog"
	"maunium.net/go/mautrix/id"
)

// matrixError is the JSON error body of the Application Service API.
type matrixError struct {
	ErrCode string `json:"errcode"`
	Error   string `json:"error"`
}

func writeJSON(w http.ResponseWriter, status int, body any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(body)
}

func writeError(w http.ResponseWriter, status int, code, msg string) {
	writeJSON(w, status, matrixError{ErrCode: code, Error: msg})
}

// route is one endpoint of the Application Service API.
type route struct {
	method  string
	pattern string // http.ServeMux pattern without the method
	handler http.HandlerFunc
}

// Handler returns the HTTP handler of the Application Service API (spec v1.19), including
// the legacy unprefixed paths and the legacy access_token query parameter. Every route
// checks the homeserver token in constant time: a missing token is 401 M_UNAUTHORIZED, a
// wrong one 403 M_FORBIDDEN. Unknown paths are 404 and known paths with another method 405,
// both M_UNRECOGNIZED.
func (c *Core) Handler() http.Handler {
	routes := []route{
		{http.MethodPut, "/transactions/{txnId}", c.putTransaction},
		{http.MethodGet, "/users/{userId}", c.getUser},
		{http.MethodGet, "/rooms/{roomAlias}", c.getRoom},
		{http.MethodGet, "/thirdparty/protocol/{protocol}", c.getProtocol},
		{http.MethodGet, "/thirdparty/location/{protocol}", c.getLocations},
		{http.MethodGet, "/thirdparty/location", c.getLocationsByAlias},
		{http.MethodGet, "/thirdparty/user/{protocol}", c.getUsers},
		{http.MethodGet, "/thirdparty/user", c.getUsersByID},
		{http.MethodPost, "/ping", c.postPing},
	}
	mux := http.NewServeMux()
	paths := map[string][]string{} // full path pattern -> allowed methods
	for _, r := range routes {
		prefixes := []string{"/_matrix/app/v1"}
		if !strings.HasPrefix(r.pattern, "/ping") {
			prefixes = append(prefixes, "") // legacy paths (spec: "Legacy routes")
		}
		if strings.HasPrefix(r.pattern, "/thirdparty") {
			prefixes = append(prefixes, "/_matrix/app/unstable")
		}
		for _, p := range prefixes {
			full := p + r.pattern
			mux.Handle(r.method+" "+full, c.authenticated(r.handler))
			paths[full] = append(paths[full], r.method)
		}
	}
	for full, methods := range paths {
		allowed := strings.Join(methods, ", ")
		mux.HandleFunc(full, func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Allow", allowed)
			writeError(w, http.StatusMethodNotAllowed, "M_UNRECOGNIZED", "method not allowed on this endpoint")
		})
	}
	mux.HandleFunc("/", func(w http.ResponseWriter, _ *http.Request) {
		writeError(w, http.StatusNotFound, "M_UNRECOGNIZED", "unrecognized endpoint")
	})
	return mux
}

// authenticated checks the homeserver token: the Authorization header, or the legacy
// access_token query parameter.
func (c *Core) authenticated(next http.HandlerFunc) http.Handler {
	want := []byte(c.reg.ServerToken)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		token, ok := "", false
		if h := r.Header.Get("Authorization"); h != "" {
			// The scheme is case-insensitive (RFC 9110, section 11.1).
			if scheme, rest, found := strings.Cut(h, " "); found && strings.EqualFold(scheme, "Bearer") {
				token, ok = strings.TrimSpace(rest), true
			}
		} else if q := r.URL.Query(); q.Has("access_token") {
			token, ok = q.Get("access_token"), true
		}
		switch {
		case !ok || token == "":
			c.metrics.authFailures.WithLabelValues("missing").Inc()
			writeError(w, http.StatusUnauthorized, "M_UNAUTHORIZED", "missing homeserver token")
		case subtle.ConstantTimeCompare([]byte(token), want) != 1:
			c.metrics.authFailures.WithLabelValues("invalid").Inc()
			zerolog.Ctx(r.Context()).Warn().Str("remote", r.RemoteAddr).Str("path", r.URL.Path).
				Msg("Rejected request with a wrong homeserver token")
			writeError(w, http.StatusForbidden, "M_FORBIDDEN", "invalid homeserver token")
		default:
			next(w, r)
		}
	})
}

func (c *Core) putTransaction(w http.ResponseWriter, r *http.Request) {
	if c.opts.Leading != nil && !c.opts.Leading() {
		// Not journaled by a process that may not lead: the homeserver sends it again,
		// to the leader (fence.go).
		c.metrics.transactions.WithLabelValues("error").Inc()
		w.Header().Set("Retry-After", "1")
		writeError(w, http.StatusServiceUnavailable, "M_UNKNOWN", "this Switchboard instance is not the leader")
		return
	}
	txnID := r.PathValue("txnId")
	log := c.log.With().Str("txn_id", txnID).Logger()
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, c.opts.MaxBodyBytes))
	var tooLarge *http.MaxBytesError
	switch {
	case errors.As(err, &tooLarge):
		c.metrics.transactions.WithLabelValues("rejected").Inc()
		writeError(w, http.StatusRequestEntityTooLarge, "M_TOO_LARGE",
			fmt.Sprintf("transaction larger than %d bytes", c.opts.MaxBodyBytes))
		return
	case err != nil:
		writeError(w, http.StatusBadRequest, "M_NOT_JSON", "failed to read body")
		return
	}
	txn, err := ParseTransaction(body)
	if err != nil {
		c.metrics.transactions.WithLabelValues("rejected").Inc()
		log.Warn().Err(err).Msg("Rejected malformed transaction")
		code := "M_BAD_JSON"
		if !json.Valid(body) {
			code = "M_NOT_JSON"
		}
		writeError(w, http.StatusBadRequest, code, err.Error())
		return
	}
	dup, inserted, err := c.inbox.commit(r.Context(), txnID, txn)
	if err != nil {
		c.metrics.transactions.WithLabelValues("error").Inc()
		log.Error().Err(err).Msg("Failed to journal transaction; the homeserver will retry")
		writeError(w, http.StatusInternalServerError, "M_UNKNOWN", "failed to store transaction")
		return
	}
	for _, s := range txn.Skipped {
		log.Warn().Str("skipped", s).Msg("Skipped a malformed to-device event")
	}
	if cm := c.crypto.Load(); cm != nil && len(txn.OTKCounts) > 0 {
		cm.HandleOTKCounts(txn.OTKCounts) // in the background; counts come with every transaction
	}
	if dup {
		c.metrics.transactions.WithLabelValues("duplicate").Inc()
		log.Debug().Msg("Ignoring duplicate transaction")
	} else {
		c.metrics.transactions.WithLabelValues("committed").Inc()
		log.Debug().Int("events", len(txn.Events)).Int("new", inserted).
			Int("ephemeral", len(txn.Ephemeral)).Msg("Journaled transaction")
	}
	writeJSON(w, http.StatusOK, struct{}{})
}

func (c *Core) getUser(w http.ResponseWriter, r *http.Request) {
	userID := id.UserID(r.PathValue("userId"))
	c.answerQuery(w, r, "user", string(userID), func(m Module) (bool, error) {
		q, ok := m.(QueryHandler)
		if !ok {
			return false, nil
		}
		return q.QueryUser(r.Context(), userID)
	}, c.router.moduleForUser(userID))
}

func (c *Core) getRoom(w http.ResponseWriter, r *http.Request) {
	alias := id.RoomAlias(r.PathValue("roomAlias"))
	c.answerQuery(w, r, "alias", string(alias), func(m Module) (bool, error) {
		q, ok := m.(QueryHandler)
		if !ok {
			return false, nil
		}
		return q.QueryAlias(r.Context(), alias)
	}, c.router.moduleForAlias(alias))
}

func (c *Core) answerQuery(w http.ResponseWriter, r *http.Request, kind, subject string, ask func(Module) (bool, error), m Module) {
	if m == nil {
		writeError(w, http.StatusNotFound, "M_NOT_FOUND", kind+" is not in any module's namespace")
		return
	}
	found, err := ask(m)
	switch {
	case err != nil:
		c.log.Error().Err(err).Str("module", m.ID()).Str(kind, subject).Msg("Query failed")
		writeError(w, http.StatusInternalServerError, "M_UNKNOWN", "query failed")
	case !found:
		writeError(w, http.StatusNotFound, "M_NOT_FOUND", kind+" does not exist")
	default:
		writeJSON(w, http.StatusOK, struct{}{})
	}
}

func (c *Core) postPing(w http.ResponseWriter, r *http.Request) {
	var req struct {
		TxnID string `json:"transaction_id"`
	}
	body, _ := io.ReadAll(http.MaxBytesReader(w, r.Body, 64*1024))
	if len(strings.TrimSpace(string(body))) > 0 {
		if !json.Valid(body) {
			writeError(w, http.StatusBadRequest, "M_NOT_JSON", "body is not JSON")
			return
		}
		if err := json.Unmarshal(body, &req); err != nil {
			writeError(w, http.StatusBadRequest, "M_BAD_JSON", "body is not a JSON object with a string transaction_id")
			return
		}
	}
	c.log.Debug().Str("ping_txn_id", req.TxnID).Msg("Ping from the homeserver")
	writeJSON(w, http.StatusOK, struct{}{})
}
