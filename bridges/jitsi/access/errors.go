package access

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"strconv"
	"time"
)

// Sentinel errors.
var (
	// ErrBotNotInRoom is wrapped by a RoomState's error when the bot cannot read the room's
	// state because it is not joined.
	ErrBotNotInRoom = errors.New("access: Switchboard's bot is not in the room")
	// ErrConfig is wrapped by every error of New about its Config.
	ErrConfig = errors.New("access: invalid config")
)

// Matrix error codes of the answers.
const (
	codeForbidden    = "M_FORBIDDEN"
	codeUnknownToken = "M_UNKNOWN_TOKEN"
	codeBadJSON      = "M_BAD_JSON"
	codeNotJSON      = "M_NOT_JSON"
	codeMissingParam = "M_MISSING_PARAM"
	codeInvalidParam = "M_INVALID_PARAM"
	codeTooLarge     = "M_TOO_LARGE"
	codeLimited      = "M_LIMIT_EXCEEDED"
	codeUnknown      = "M_UNKNOWN"
	codeUnrecognized = "M_UNRECOGNIZED"
	codeNotFound     = "M_NOT_FOUND"
)

// Messages of the refusals that tests and callers may rely on.
const (
	msgInvalidToken = "the OpenID token is invalid or has expired"
	msgNotMember    = "you are not a member of this room"
	msgBanned       = "you are banned from this room"
	msgBotNotInRoom = "Switchboard is not in this room"
	msgHomeserver   = "the homeserver could not be asked"
	msgBearer       = "the bearer token is missing or wrong"
)

// refusal is a non-2xx answer: an HTTP status with a Matrix errcode and message.
type refusal struct {
	status     int
	errcode    string
	msg        string
	retryAfter time.Duration // 429 only
}

func (e *refusal) Error() string {
	return fmt.Sprintf("access: %d %s: %s", e.status, e.errcode, e.msg)
}

var (
	errNotFound = &refusal{status: http.StatusNotFound, errcode: codeUnrecognized, msg: "no such endpoint"}
	errBearer   = &refusal{status: http.StatusForbidden, errcode: codeForbidden, msg: msgBearer}
	errToken    = &refusal{status: http.StatusUnauthorized, errcode: codeUnknownToken, msg: msgInvalidToken}
	errUpstream = &refusal{status: http.StatusBadGateway, errcode: codeUnknown, msg: msgHomeserver}
	errBotOut   = &refusal{status: http.StatusForbidden, errcode: codeForbidden, msg: msgBotNotInRoom}
	errNotIn    = &refusal{status: http.StatusForbidden, errcode: codeForbidden, msg: msgNotMember}
	errBanned   = &refusal{status: http.StatusForbidden, errcode: codeForbidden, msg: msgBanned}
)

// rateLimited is the 429 refusal for a bucket that has a token again after wait.
func rateLimited(who string, wait time.Duration) *refusal {
	return &refusal{status: http.StatusTooManyRequests, errcode: codeLimited,
		msg: "too many requests from " + who + "; retry later", retryAfter: wait}
}

// errorBody is the Matrix error object added to every refusal.
type errorBody struct {
	Errcode      string `json:"errcode"`
	Error        string `json:"error"`
	RetryAfterMS int64  `json:"retry_after_ms,omitempty"`
}

// writeRefusal answers e alone.
func writeRefusal(w http.ResponseWriter, e *refusal) {
	writeRefusalWith(w, e, nil)
}

// writeRefusalWith answers e; a non-nil uvs (a JSON object) is merged in front of
// errcode and error, so UVS clients find the fields they know.
func writeRefusalWith(w http.ResponseWriter, e *refusal, uvs any) {
	body := errorBody{Errcode: e.errcode, Error: e.msg}
	if e.status == http.StatusTooManyRequests {
		secs := int64(math.Ceil(e.retryAfter.Seconds()))
		if secs < 1 {
			secs = 1
		}
		w.Header().Set("Retry-After", strconv.FormatInt(secs, 10))
		body.RetryAfterMS = e.retryAfter.Milliseconds()
	}
	if uvs == nil {
		writeJSON(w, e.status, body)
		return
	}
	writeJSON(w, e.status, mergeObjects(uvs, body))
}

// mergeObjects encodes a and b, both JSON objects, as one object (a's fields first).
func mergeObjects(a, b any) json.RawMessage {
	ja, errA := json.Marshal(a)
	jb, errB := json.Marshal(b)
	if errA != nil || errB != nil || len(ja) < 2 || len(jb) < 2 {
		return jb
	}
	if len(ja) == 2 { // {}
		return jb
	}
	out := make([]byte, 0, len(ja)+len(jb))
	out = append(out, ja[:len(ja)-1]...)
	out = append(out, ',')
	return append(out, jb[1:]...)
}

// writeJSON answers v as JSON with status.
func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		status, b = http.StatusInternalServerError, []byte(`{"errcode":"M_UNKNOWN","error":"the answer could not be encoded"}`)
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write(append(b, '\n'))
}
