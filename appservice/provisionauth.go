package appservice

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/rs/zerolog"
	"maunium.net/go/mautrix/id"

	"github.com/switchboard-matrix/switchboard/internal/openid"
)

// Provisioning configures the provisioning API (provision.go). At least one of SharedSecret
// and OpenID must be set.
type Provisioning struct {
	// SharedSecret authenticates "Authorization: Bearer <secret>": an operator's tool, with
	// admin rights, or acting for the user named by the user_id query parameter. "": the
	// shared secret is not accepted.
	SharedSecret string
	// OpenID accepts "Authorization: Bearer openid:<token>", a Matrix OpenID token of a user
	// of the homeserver, checked with the homeserver's federation userinfo endpoint.
	OpenID bool
	// OpenIDURL is where the homeserver answers /_matrix/federation/v1/openid/userinfo;
	// default Options.HomeserverURL.
	OpenIDURL string
	// Admins are Switchboard's admins (management.admins): user patterns as in
	// [ParseUserPatterns]. They may use the admin-only routes and see error texts.
	Admins []string
	// HTTPClient asks the homeserver; nil: a client with a 10 s timeout.
	HTTPClient *http.Client
}

// Failed authentications are limited per client address: provisionFailBurst in a row, then
// one per provisionFailEvery; a success does not reset the count (an attacker could
// interleave a valid token).
const (
	provisionFailBurst = 10
	provisionFailEvery = 6 * time.Second
	provisionFailKeys  = 10000
	// openIDCacheTTL is how long a checked OpenID token is trusted without asking again.
	openIDCacheTTL = time.Minute
)

// provisionAuth checks provisioning credentials.
type provisionAuth struct {
	secret   []byte
	verifier *openid.Verifier // nil: OpenID tokens are not accepted
	admins   UserPatterns
	now      func() time.Time

	mu    sync.Mutex
	fails map[string]*failBucket        // client address -> failed attempts
	known map[[32]byte]openIDCacheEntry // sha256 of a token -> its user
}

type failBucket struct {
	tokens float64
	at     time.Time
}

type openIDCacheEntry struct {
	user    id.UserID
	expires time.Time
}

func newProvisionAuth(opts Options) (*provisionAuth, error) {
	p := opts.Provisioning
	if p.SharedSecret == "" && !p.OpenID {
		return nil, errors.New("provisioning: neither a shared secret nor OpenID tokens are accepted")
	}
	admins, err := ParseUserPatterns(p.Admins)
	if err != nil {
		return nil, err
	}
	a := &provisionAuth{secret: []byte(p.SharedSecret), admins: admins, now: time.Now,
		fails: map[string]*failBucket{}, known: map[[32]byte]openIDCacheEntry{}}
	if p.OpenID {
		u := p.OpenIDURL
		if u == "" {
			u = opts.HomeserverURL
		}
		a.verifier = &openid.Verifier{HomeserverURL: u, ServerName: opts.Domain, Client: p.HTTPClient}
	}
	return a, nil
}

// provisioned wraps a provisioning endpoint: it authenticates the request and logs it.
func (c *Core) provisioned(h func(http.ResponseWriter, *http.Request, provisionCaller)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		started := time.Now()
		ctx, cancel := context.WithTimeout(r.Context(), provisionTimeout)
		defer cancel()
		log := c.log.With().Str("component", "provisioning").Logger()
		ctx = log.WithContext(ctx)
		r = r.WithContext(ctx)
		w.Header().Set("Cache-Control", "no-store")
		rec := &statusRecorder{ResponseWriter: w, status: http.StatusOK}
		caller, ok := c.provision.authenticate(rec, r)
		if ok {
			h(rec, r, caller)
		}
		level := zerolog.DebugLevel
		if r.Method != http.MethodGet || rec.status >= 400 {
			level = zerolog.InfoLevel
		}
		log.WithLevel(level).Str("method", r.Method).Str("path", r.URL.Path).Str("user_id", caller.user.String()).
			Str("auth", caller.auth).Int("status", rec.status).Dur("duration", time.Since(started)).
			Msg("Provisioning request")
	}
}

// authenticate returns the caller, or answers 401/403/429/502 and returns false.
func (a *provisionAuth) authenticate(w http.ResponseWriter, r *http.Request) (provisionCaller, bool) {
	client := clientAddress(r.RemoteAddr)
	if wait, ok := a.allowed(client); !ok {
		w.Header().Set("Retry-After", strconv.Itoa(int(wait/time.Second)+1))
		writeError(w, http.StatusTooManyRequests, "M_LIMIT_EXCEEDED", "too many failed authentications from this address; try again later")
		return provisionCaller{}, false
	}
	token, hasBearer := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !hasBearer || token == "" {
		writeError(w, http.StatusUnauthorized, "M_MISSING_TOKEN",
			`missing "Authorization: Bearer <shared secret>" or "Authorization: Bearer openid:<OpenID token>"`)
		return provisionCaller{}, false
	}
	asUser := id.UserID(r.URL.Query().Get("user_id"))
	if asUser != "" {
		if local, _, err := asUser.ParseAndValidateRelaxed(); err != nil || local == "" {
			writeError(w, http.StatusBadRequest, "M_INVALID_PARAM", "user_id is not a valid user ID")
			return provisionCaller{}, false
		}
	}
	if oidToken, isOpenID := strings.CutPrefix(token, "openid:"); isOpenID && a.verifier != nil {
		user, err := a.openIDUser(r.Context(), oidToken)
		switch {
		case errors.Is(err, openid.ErrInvalidToken):
			a.failed(client)
			writeError(w, http.StatusUnauthorized, "M_UNKNOWN_TOKEN", "the OpenID token is invalid, has expired or is not of this homeserver's users")
			return provisionCaller{}, false
		case err != nil:
			zerolog.Ctx(r.Context()).Warn().Err(err).Msg("Failed to check an OpenID token with the homeserver")
			writeError(w, http.StatusBadGateway, "M_UNKNOWN", "failed to check the OpenID token with the homeserver; try again later")
			return provisionCaller{}, false
		case asUser != "" && asUser != user:
			writeError(w, http.StatusForbidden, "M_FORBIDDEN", "user_id is not the user of the OpenID token")
			return provisionCaller{}, false
		}
		return provisionCaller{user: user, admin: a.admins.Match(user), auth: "openid"}, true
	}
	if len(a.secret) > 0 && subtle.ConstantTimeCompare([]byte(token), a.secret) == 1 {
		if asUser != "" {
			return provisionCaller{user: asUser, admin: a.admins.Match(asUser), auth: "shared_secret"}, true
		}
		return provisionCaller{admin: true, auth: "shared_secret"}, true
	}
	a.failed(client)
	writeError(w, http.StatusUnauthorized, "M_UNKNOWN_TOKEN", "unknown token")
	return provisionCaller{}, false
}

// openIDUser is the user of an OpenID token, from the cache or the homeserver.
func (a *provisionAuth) openIDUser(ctx context.Context, token string) (id.UserID, error) {
	key := sha256.Sum256([]byte(token))
	now := a.now()
	a.mu.Lock()
	e, ok := a.known[key]
	a.mu.Unlock()
	if ok && now.Before(e.expires) {
		return e.user, nil
	}
	user, err := a.verifier.UserID(ctx, token)
	if err != nil {
		return "", err
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if len(a.known) >= provisionFailKeys {
		for k, e := range a.known {
			if !now.Before(e.expires) {
				delete(a.known, k)
			}
		}
		if len(a.known) >= provisionFailKeys {
			a.known = map[[32]byte]openIDCacheEntry{}
		}
	}
	a.known[key] = openIDCacheEntry{user: user, expires: now.Add(openIDCacheTTL)}
	return user, nil
}

// allowed reports whether client may try to authenticate now, or how long it must wait.
func (a *provisionAuth) allowed(client string) (time.Duration, bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	b := a.fails[client]
	if b == nil {
		return 0, true
	}
	a.refill(b)
	if b.tokens >= 1 {
		return 0, true
	}
	return time.Duration((1 - b.tokens) * float64(provisionFailEvery)), false
}

// failed counts a failed authentication of client.
func (a *provisionAuth) failed(client string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	b := a.fails[client]
	if b == nil {
		if len(a.fails) >= provisionFailKeys {
			for k, old := range a.fails {
				if a.refill(old); old.tokens >= provisionFailBurst {
					delete(a.fails, k)
				}
			}
		}
		b = &failBucket{tokens: provisionFailBurst, at: a.now()}
		a.fails[client] = b
	}
	a.refill(b)
	b.tokens--
}

func (a *provisionAuth) refill(b *failBucket) {
	now := a.now()
	b.tokens += float64(now.Sub(b.at)) / float64(provisionFailEvery)
	b.tokens = min(b.tokens, provisionFailBurst)
	b.at = now
}

// clientAddress is the rate-limiting key of a peer: its IP, an IPv6 peer's /64.
func clientAddress(remoteAddr string) string {
	host, _, err := net.SplitHostPort(remoteAddr)
	if err != nil {
		host = remoteAddr
	}
	ip := net.ParseIP(host)
	if ip == nil {
		return host
	}
	if ip.To4() == nil {
		return ip.Mask(net.CIDRMask(64, 128)).String()
	}
	return ip.String()
}

// statusRecorder remembers the status written, for the log.
type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (s *statusRecorder) WriteHeader(code int) {
	s.status = code
	s.ResponseWriter.WriteHeader(code)
}
