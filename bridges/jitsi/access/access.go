// Package access is the HTTP side of Switchboard's Jitsi module: it decides who may join a
// meeting.
//
// It serves three endpoints (see [Handler.ServeHTTP]):
//
//   - POST /verify/user and POST /verify/user_in_room, compatible with matrix-org's
//     matrix-user-verification-service (UVS): the Prosody module
//     prosody-mod-auth-matrix-user-verification can use Switchboard in place of UVS.
//     The caller must present Config.AuthToken as a bearer token.
//   - POST /token, called by browsers: it checks the same things as /verify/user_in_room
//     and answers a Jitsi JWT (HS256 or RS256) for the room's conference.
//   - GET /health.
//
// A user is identified by a Matrix OpenID token, checked with the homeserver's
// /_matrix/federation/v1/openid/userinfo endpoint; only tokens of Config.ServerName are
// accepted. Room membership and power levels come from a [RoomState], which the glue
// implements with the bot's view of the room. Requests are rate limited per client IP and
// per verified user, bodies are bounded and decoded strictly, and the outbound call is
// bounded in time.
//
// The package never logs or returns an OpenID token, a bearer token or room state.
// It does not import the appservice package.
package access

import (
	"context"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"

	"github.com/switchboard-matrix/switchboard/internal/openid"
)

// Defaults applied by [New] to zero fields of [Config] and [JWTConfig].
const (
	DefaultMaxBodyBytes = 8 << 10
	DefaultHTTPTimeout  = 10 * time.Second
	DefaultJWTTTL       = time.Hour
	DefaultAudience     = "jitsi"
	DefaultSubject      = "*"
)

// Default rates of the token buckets (see [Config.PerIP] and [Config.PerUser]).
var (
	DefaultPerIP   = Rate{PerSecond: 10, Burst: 30}
	DefaultPerUser = Rate{PerSecond: 2, Burst: 10}
)

// RoomState answers questions about a room's state as the module's bot sees it. The glue
// implements it with the bot's intent. Both methods return an error wrapping
// [ErrBotNotInRoom] when the bot cannot read the room's state because it is not joined.
type RoomState interface {
	// Membership returns the user's membership ("" when there is none) and display name.
	Membership(ctx context.Context, roomID id.RoomID, userID id.UserID) (membership event.Membership, displayName string, err error)
	// PowerLevels returns the room's m.room.power_levels content, parsed and raw. Either may
	// be nil when the room has none.
	PowerLevels(ctx context.Context, roomID id.RoomID) (*event.PowerLevelsEventContent, json.RawMessage, error)
}

// Rate is a token bucket: PerSecond tokens are added each second up to Burst.
type Rate struct {
	PerSecond float64
	Burst     int
}

// Config configures a [Handler]. ServerName and HomeserverURL are required.
type Config struct {
	// ServerName is the homeserver's server name; OpenID tokens of other servers are refused
	// without asking anyone.
	ServerName string
	// HomeserverURL is where /_matrix/federation/v1/openid/userinfo is asked (the
	// homeserver's listener with the openid resource).
	HomeserverURL string
	// AuthToken is the bearer token required on /verify/*; "" turns /verify/* off (404),
	// since anyone who reaches the listener could otherwise probe tokens. Requests with it
	// are not limited per address (they all come from Prosody's), only per user.
	AuthToken string
	// Conference returns the conference name of a room, for /token's room claim and URL.
	// Required when JWT is set.
	Conference func(id.RoomID) string
	// MeetURL is Jitsi's public base URL, e.g. https://meet.example.org, for /token's answer.
	// Required when JWT is set.
	MeetURL string
	// JWT configures /token; nil: /token answers 404.
	JWT *JWTConfig
	// PerIP and PerUser are the rate limits per client IP (IPv6: per /64) and per verified
	// user. Zero values take DefaultPerIP and DefaultPerUser.
	PerIP, PerUser Rate
	// MaxBodyBytes bounds request bodies; 0 takes DefaultMaxBodyBytes.
	MaxBodyBytes int64
	// HTTPClient asks the homeserver; nil: a client with DefaultHTTPTimeout. Redirects are
	// never followed (the request URL carries the token). May be nil.
	HTTPClient *http.Client
	// OnVerified is called after a successful /verify/user_in_room or /token, before
	// ServeHTTP returns; it must not block. May be nil.
	OnVerified func(ctx context.Context, roomID id.RoomID, userID id.UserID, displayName string)
	// Now returns the current time (tests); nil: time.Now.
	Now func() time.Time
}

// JWTConfig configures the Jitsi JWTs minted by /token. Exactly one of Secret and
// PrivateKey is set.
type JWTConfig struct {
	Issuer   string // iss: Jitsi's app_id; required
	Audience string // aud: one of Jitsi's accepted audiences; default DefaultAudience
	Subject  string // sub: the Jitsi domain or tenant; default DefaultSubject ("*")
	// Secret signs with HS256 (Jitsi's app_secret).
	Secret []byte
	// PrivateKey signs with RS256 (Jitsi's ASAP key, at least 2048 bits); KeyID is then
	// required and goes into the header as "kid".
	PrivateKey *rsa.PrivateKey
	KeyID      string
	// TTL is the JWT's lifetime: exp = now+TTL, nbf = now-10s, iat = now. 0 takes
	// DefaultJWTTTL.
	TTL time.Duration
}

// Handler serves the endpoints. It is safe for concurrent use.
type Handler struct {
	cfg     Config // immutable after New; defaults applied
	jwt     JWTConfig
	state   RoomState
	openid  *openid.Verifier
	meetURL string // without trailing slash
	perIP   *limiter
	perUser *limiter
}

// New validates cfg, applies defaults and returns a Handler. It does no I/O. All problems
// of cfg are returned together, each wrapping [ErrConfig].
func New(cfg Config, state RoomState) (*Handler, error) {
	var errs []error
	bad := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf("%w: "+format, append([]any{ErrConfig}, args...)...))
	}
	if state == nil {
		bad("RoomState is required")
	}
	if cfg.ServerName == "" {
		bad("ServerName is required")
	} else if strings.ContainsAny(cfg.ServerName, "/?#@ \t\r\n") {
		bad("ServerName %q is not a Matrix server name", cfg.ServerName)
	}
	hs, err := parseBaseURL(cfg.HomeserverURL)
	if err != nil {
		bad("HomeserverURL: %v", err)
	}
	if cfg.MaxBodyBytes < 0 {
		bad("MaxBodyBytes must not be negative")
	} else if cfg.MaxBodyBytes == 0 {
		cfg.MaxBodyBytes = DefaultMaxBodyBytes
	}
	for _, r := range []struct {
		name string
		rate *Rate
		def  Rate
	}{{"PerIP", &cfg.PerIP, DefaultPerIP}, {"PerUser", &cfg.PerUser, DefaultPerUser}} {
		switch {
		case r.rate.PerSecond < 0 || r.rate.Burst < 0:
			bad("%s must not be negative", r.name)
		case *r.rate == Rate{}:
			*r.rate = r.def
		case r.rate.PerSecond == 0 || r.rate.Burst == 0:
			bad("%s needs both PerSecond and Burst", r.name)
		}
	}
	h := &Handler{state: state}
	if cfg.JWT != nil {
		h.jwt = *cfg.JWT
		errs = append(errs, h.jwt.validate()...)
		if cfg.Conference == nil {
			bad("Conference is required with JWT")
		}
		meet, err := parseBaseURL(cfg.MeetURL)
		if err != nil {
			bad("MeetURL: %v", err)
		}
		h.meetURL = meet
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	h.openid = &openid.Verifier{HomeserverURL: hs, ServerName: cfg.ServerName, Client: cfg.HTTPClient}
	h.cfg = cfg
	h.perIP = newLimiter(cfg.PerIP, cfg.Now)
	h.perUser = newLimiter(cfg.PerUser, cfg.Now)
	return h, nil
}

// parseBaseURL checks an http(s) base URL and returns it without a trailing slash.
func parseBaseURL(s string) (string, error) {
	if s == "" {
		return "", errors.New("required")
	}
	u, err := url.Parse(s)
	if err != nil {
		return "", fmt.Errorf("not a URL: %w", err)
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return "", fmt.Errorf("%q is not an http(s) URL with a host", s)
	}
	if u.RawQuery != "" || u.Fragment != "" || u.User != nil {
		return "", fmt.Errorf("%q must not have a query, fragment or user info", s)
	}
	return strings.TrimSuffix(s, "/"), nil
}

// ServeHTTP routes a request:
//
//	POST /verify/user          UVS: {"token","matrix_server_name"} → {"results":{"user"},"user_id"}
//	POST /verify/user_in_room  UVS: {"token","room_id","matrix_server_name"} →
//	                           {"results":{"user","room_membership"},"user_id","power_levels"}
//	POST /token                {"token","room_id","matrix_server_name"} →
//	                           {"jwt","conference","url","expires_at"} (CORS *, no bearer)
//	GET  /health               200
//
// Refusals are JSON with a Matrix errcode and error (and the UVS body on /verify/*):
// 400 bad body, 401 invalid OpenID token, 403 bearer or server name or membership,
// 404 unknown path (or /token without JWT), 405 wrong method, 413 body too large,
// 429 rate limited (Retry-After), 502 homeserver could not be asked.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch r.URL.Path {
	case "/verify/user", "/verify/user_in_room":
		if h.cfg.AuthToken == "" {
			// Without a bearer token anyone who reaches the listener could ask: not offered.
			writeRefusal(w, errNotFound)
			return
		}
		if r.URL.Path == "/verify/user" {
			h.serveMethod(w, r, http.MethodPost, h.serveVerifyUser)
		} else {
			h.serveMethod(w, r, http.MethodPost, h.serveVerifyUserInRoom)
		}
	case "/token":
		if h.cfg.JWT == nil {
			writeRefusal(w, errNotFound)
			return
		}
		w.Header().Set("Access-Control-Allow-Origin", "*")
		if r.Method == http.MethodOptions {
			w.Header().Set("Access-Control-Allow-Methods", "POST, OPTIONS")
			w.Header().Set("Access-Control-Allow-Headers", "Content-Type")
			w.Header().Set("Access-Control-Max-Age", "86400")
			w.WriteHeader(http.StatusNoContent)
			return
		}
		h.serveMethod(w, r, http.MethodPost, h.serveToken)
	case "/health":
		h.serveMethod(w, r, http.MethodGet, func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/plain; charset=utf-8")
			w.WriteHeader(http.StatusOK)
			if r.Method != http.MethodHead {
				_, _ = w.Write([]byte("ok\n"))
			}
		})
	default:
		writeRefusal(w, errNotFound)
	}
}

// serveMethod answers 405 unless r uses method (GET also admits HEAD), then applies the
// per-IP rate limit and calls next.
func (h *Handler) serveMethod(w http.ResponseWriter, r *http.Request, method string, next http.HandlerFunc) {
	if r.Method != method && (method != http.MethodGet || r.Method != http.MethodHead) {
		allow := method
		if method == http.MethodGet {
			allow = "GET, HEAD"
		}
		w.Header().Set("Allow", allow)
		writeRefusal(w, &refusal{status: http.StatusMethodNotAllowed, errcode: codeUnrecognized,
			msg: fmt.Sprintf("method %s is not allowed on %s; use %s", safeMethod(r.Method), r.URL.Path, method)})
		return
	}
	// Every join's verification comes from Prosody's one address with the bearer token:
	// those are limited per user only, or a big meeting would be refused.
	trusted := strings.HasPrefix(r.URL.Path, "/verify/") && h.checkBearer(r) == nil
	if method == http.MethodPost && !trusted {
		if wait, ok := h.perIP.allow(clientKey(r.RemoteAddr)); !ok {
			writeRefusal(w, rateLimited("this address", wait))
			return
		}
	}
	next(w, r)
}

// safeMethod bounds a request method for an error message.
func safeMethod(m string) string {
	if len(m) > 16 {
		return m[:16] + "…"
	}
	return m
}
