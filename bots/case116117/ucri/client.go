package ucri

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/rs/zerolog"
)

// Sentinel errors of the client.
var (
	// ErrNotFound is wrapped when the UCRM answers 404, e.g. for an unknown participant.
	ErrNotFound = errors.New("ucri: not found")
	// ErrUnauthorized is wrapped when the UCRM refuses the credentials at /token, or answers
	// 401 to a request also after one retry with a fresh token.
	ErrUnauthorized = errors.New("ucri: unauthorized")
)

// Client limits.
const (
	// requestTimeout bounds every request but the long-poll receive.
	requestTimeout = 30 * time.Second
	// longPollDefault is the UCRM's long-poll time when ReceiveRequest.MaxDelay is nil.
	longPollDefault = 30 * time.Second
	// longPollSlack is added to the long-poll time for the receive request's deadline.
	longPollSlack = 15 * time.Second
	// maxReasonRunes caps the UCRM's error reason in APIError.Error.
	maxReasonRunes = 200

	defaultUserAgent = "switchboard-ucri/1"
)

// ClientConfig configures a Client. BaseURL, Username and Password are required; the zero
// value of every other field means its default.
type ClientConfig struct {
	// BaseURL is the UCRM Client API's base, e.g. https://ucrm.example/ucrm/client/v0.
	// Required; https, or http to a loopback host (or anywhere with AllowInsecureHTTP).
	BaseURL string
	// Username and Password are the HTTP Basic credentials for /token. Required.
	Username, Password string
	// TLS sets the client certificate and the trusted roots. May be nil (system roots).
	// Not allowed together with HTTPClient.
	TLS *tls.Config
	// HTTPClient replaces the client's own HTTP client, e.g. in tests. May be nil. Its
	// Timeout must be 0 or longer than a long poll (45 s); deadlines come from the client.
	HTTPClient *http.Client
	// RenewBefore is how long before the token's expiry it is renewed. 0 means when 20 % of
	// the token's lifetime is left, and at least 30 s before expiry. It is never more than
	// half the token's lifetime.
	RenewBefore time.Duration
	// UserAgent is sent with every request. "" means "switchboard-ucri/1".
	UserAgent string
	// AllowInsecureHTTP allows plain http to a host that is not loopback. Credentials and
	// tokens then travel in clear text; for test setups only.
	AllowInsecureHTTP bool
}

// validate returns every problem of the config, each with its field name.
func (cfg *ClientConfig) validate() error {
	var errs []error
	problem := func(field, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: "+format, append([]any{field}, args...)...))
	}
	if cfg.BaseURL == "" {
		problem("BaseURL", "required")
	} else if u, err := url.Parse(cfg.BaseURL); err != nil {
		problem("BaseURL", "not a URL")
	} else {
		switch {
		case u.Scheme != "https" && u.Scheme != "http":
			problem("BaseURL", "scheme must be https or http, not %q", u.Scheme)
		case u.Host == "":
			problem("BaseURL", "must be an absolute URL with a host")
		case u.User != nil:
			problem("BaseURL", "must not contain credentials; set Username and Password")
		case u.RawQuery != "" || u.Fragment != "" || u.ForceQuery:
			problem("BaseURL", "must not have a query or fragment")
		case u.Scheme == "http" && !cfg.AllowInsecureHTTP && !isLoopback(u.Hostname()):
			problem("BaseURL", "plain http to %q would send the credentials in clear text; use https or set AllowInsecureHTTP", u.Hostname())
		}
	}
	if cfg.Username == "" {
		problem("Username", "required")
	}
	if cfg.Password == "" {
		problem("Password", "required")
	}
	if cfg.TLS != nil && cfg.HTTPClient != nil {
		problem("TLS", "set either TLS or HTTPClient, not both")
	}
	if cfg.HTTPClient != nil && cfg.HTTPClient.Timeout != 0 && cfg.HTTPClient.Timeout < longPollDefault+longPollSlack {
		problem("HTTPClient.Timeout", "must be 0 or at least %s for long polls", longPollDefault+longPollSlack)
	}
	if cfg.RenewBefore < 0 {
		problem("RenewBefore", "must not be negative")
	}
	if len(errs) > 0 {
		return fmt.Errorf("ucri: invalid client config: %w", errors.Join(errs...))
	}
	return nil
}

func isLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// Client talks to a UCRM's Client API: token, send, long-poll receive, commit, registry and
// info. It fetches its access token lazily and renews it before expiry. A Client is safe
// for concurrent use and starts no goroutines.
type Client struct {
	base           string // immutable; BaseURL without a trailing slash
	username       string // immutable
	password       string // immutable; never in errors or logs
	userAgent      string // immutable
	renewBeforeCfg time.Duration
	hc             *http.Client
	now            func() time.Time // immutable; time.Now except in tests

	mu     sync.Mutex
	tok    tokenState   // guarded by mu
	flight *tokenFlight // guarded by mu; the running /token fetch, may be nil
}

// NewClient validates cfg and returns a client. It does no I/O.
func NewClient(cfg ClientConfig) (*Client, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	hc := cfg.HTTPClient
	if hc == nil {
		tr := http.DefaultTransport.(*http.Transport).Clone()
		if cfg.TLS != nil {
			tr.TLSClientConfig = cfg.TLS.Clone()
		}
		hc = &http.Client{Transport: tr}
	}
	ua := cfg.UserAgent
	if ua == "" {
		ua = defaultUserAgent
	}
	u, _ := url.Parse(cfg.BaseURL) // validated above
	return &Client{
		base:           strings.TrimRight(u.String(), "/"),
		username:       cfg.Username,
		password:       cfg.Password,
		userAgent:      ua,
		renewBeforeCfg: cfg.RenewBefore,
		hc:             hc,
		now:            time.Now,
	}, nil
}

// Send posts a message (POST /messaging/send) and returns the UCRM's answer: the request
// with messageId, sentDate, timeout and ack filled in.
func (c *Client) Send(ctx context.Context, req *SendRequest) (*SendRequest, error) {
	const op = "send"
	if req == nil {
		return nil, errors.New("ucri: send: nil request")
	}
	ctx, cancel := context.WithTimeout(ctx, requestTimeout)
	defer cancel()
	resp, err := c.do(ctx, op, http.MethodPost, "/messaging/send", req)
	if err != nil {
		return nil, err
	}
	if err := resp.expect(op, http.StatusOK); err != nil {
		return nil, err
	}
	out, err := DecodeSendResponse(resp.body)
	if err != nil {
		return nil, fmt.Errorf("ucri: send: %w: %w", ErrInvalidAnswer, err)
	}
	return out, nil
}

// ErrInvalidAnswer is wrapped when the UCRM took a request (HTTP 200) but its answer does
// not match the specification: the request took effect, only its answer is unusable.
var ErrInvalidAnswer = errors.New("the UCRM took the request but its answer does not match the specification")

// Receive long-polls for messages (POST /messaging/receive). When there are none (204) it
// returns an empty response, not an error. The request's deadline is ctx's or the long-poll
// time (MaxDelay, default 30 s) plus 15 s, whichever comes first.
//
// The answer is decoded with DecodeReceiveResponse: an invalid message is left out of the
// response and returned as a MessageError. The caller must reject it and still commit its
// sequenceId (a commit covers every lower one too), or the UCRM delivers it again forever.
// On an error nothing may be committed.
func (c *Client) Receive(ctx context.Context, req ReceiveRequest) (*ReceiveResponse, []MessageError, error) {
	const op = "receive"
	wait := longPollDefault
	if req.MaxDelay != nil {
		wait = time.Duration(max(*req.MaxDelay, 0)) * time.Second
	}
	ctx, cancel := context.WithTimeout(ctx, wait+longPollSlack)
	defer cancel()
	resp, err := c.do(ctx, op, http.MethodPost, "/messaging/receive", req)
	if err != nil {
		return nil, nil, err
	}
	if resp.status == http.StatusNoContent {
		return &ReceiveResponse{}, nil, nil
	}
	if err := resp.expect(op, http.StatusOK); err != nil {
		return nil, nil, err
	}
	out, rejected, err := DecodeReceiveResponse(resp.body)
	if err != nil {
		return nil, nil, fmt.Errorf("ucri: receive: %w", err)
	}
	return out, rejected, nil
}

// Commit acknowledges every message to ref.Destination up to and including
// ref.SequenceID (POST /messaging/commit); the UCRM removes them from its queue.
func (c *Client) Commit(ctx context.Context, ref MessageRef) error {
	const op = "commit"
	ctx, cancel := context.WithTimeout(ctx, requestTimeout)
	defer cancel()
	resp, err := c.do(ctx, op, http.MethodPost, "/messaging/commit", ref)
	if err != nil {
		return err
	}
	if resp.status/100 != 2 {
		return resp.apiError(op)
	}
	return nil
}

// Registry lists every communication participant the UCRM knows (GET /registry). Like
// DecodeRegistry, it returns the valid entries together with an error naming the invalid
// ones, if some are invalid.
func (c *Client) Registry(ctx context.Context) ([]CommParticipant, error) {
	const op = "registry"
	body, err := c.getJSON(ctx, op, "/registry")
	if err != nil {
		return nil, err
	}
	ps, err := DecodeRegistry(body)
	if err != nil {
		return ps, fmt.Errorf("ucri: registry: %w", err)
	}
	return ps, nil
}

// Participant returns the registry entry of one participant (GET /registry/{oid}). An
// unknown oid gives an error wrapping ErrNotFound.
func (c *Client) Participant(ctx context.Context, oid string) (*CommParticipant, error) {
	if oid == "" {
		return nil, errors.New("ucri: participant: empty oid")
	}
	op := "participant " + strconv.Quote(oid)
	body, err := c.getJSON(ctx, op, "/registry/"+url.PathEscape(oid))
	if err != nil {
		return nil, err
	}
	p, err := DecodeParticipant(body)
	if err != nil {
		return nil, fmt.Errorf("ucri: %s: %w", op, err)
	}
	return p, nil
}

// Info returns the UCRM's description and status (GET /info).
func (c *Client) Info(ctx context.Context) (*Info, error) {
	body, err := c.getJSON(ctx, "info", "/info")
	if err != nil {
		return nil, err
	}
	info, err := DecodeInfo(body)
	if err != nil {
		return nil, fmt.Errorf("ucri: info: %w", err)
	}
	return info, nil
}

// getJSON does a GET that must answer 200 with JSON and returns the body.
func (c *Client) getJSON(ctx context.Context, op, path string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, requestTimeout)
	defer cancel()
	resp, err := c.do(ctx, op, http.MethodGet, path, nil)
	if err != nil {
		return nil, err
	}
	if err := resp.expect(op, http.StatusOK); err != nil {
		return nil, err
	}
	return resp.body, nil
}

// do sends an authenticated request. On a 401 it drops the token and retries once with a
// fresh one; a second 401 gives an error wrapping ErrUnauthorized. Any other status is the
// caller's to judge.
func (c *Client) do(ctx context.Context, op, method, path string, in any) (*response, error) {
	var body []byte
	if in != nil {
		var err error
		if body, err = json.Marshal(in); err != nil {
			return nil, fmt.Errorf("ucri: %s: encoding the request: %w", op, err)
		}
	}
	for attempt := 0; ; attempt++ {
		tok, err := c.token(ctx)
		if err != nil {
			return nil, err
		}
		resp, err := c.roundTrip(ctx, op, method, path, body, func(r *http.Request) {
			r.Header.Set("Authorization", "Bearer "+tok)
		})
		if err != nil {
			return nil, err
		}
		if resp.status != http.StatusUnauthorized {
			return resp, nil
		}
		c.dropToken(tok)
		if attempt > 0 {
			return nil, fmt.Errorf("%w: %w", resp.apiError(op), ErrUnauthorized)
		}
		zerolog.Ctx(ctx).Debug().Str("op", op).Msg("ucri: UCRM answered 401; retrying with a new token")
	}
}

// response is a read HTTP response.
type response struct {
	status      int
	contentType string
	body        []byte // at most MaxBodyBytes
}

// roundTrip sends one request and reads the answer. A body of nil means none; auth sets
// the credentials. Network errors are wrapped as *netError.
func (c *Client) roundTrip(ctx context.Context, op, method, path string, body []byte, auth func(*http.Request)) (*response, error) {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, rd)
	if err != nil {
		return nil, fmt.Errorf("ucri: %s: %w", op, err)
	}
	if body != nil {
		req.Header.Set("Content-Type", ContentTypeJSON)
	}
	req.Header.Set("Accept", ContentTypeJSON)
	req.Header.Set("User-Agent", c.userAgent)
	auth(req)
	hr, err := c.hc.Do(req)
	if err != nil {
		return nil, &netError{op: op, err: err}
	}
	defer hr.Body.Close()
	if hr.ContentLength > MaxBodyBytes {
		return nil, fmt.Errorf("ucri: %s: answer of %d bytes exceeds the limit of %d", op, hr.ContentLength, MaxBodyBytes)
	}
	b, err := io.ReadAll(io.LimitReader(hr.Body, MaxBodyBytes+1))
	if err != nil {
		return nil, &netError{op: op, err: fmt.Errorf("reading the answer: %w", err)}
	}
	if len(b) > MaxBodyBytes {
		return nil, fmt.Errorf("ucri: %s: answer exceeds the limit of %d bytes", op, MaxBodyBytes)
	}
	return &response{status: hr.StatusCode, contentType: hr.Header.Get("Content-Type"), body: b}, nil
}

// expect checks that the status is want and that a body is JSON.
func (r *response) expect(op string, want int) error {
	if r.status != want {
		return r.apiError(op)
	}
	return r.requireJSON(op)
}

// requireJSON checks that a response with a body says it is JSON.
func (r *response) requireJSON(op string) error {
	if len(r.body) == 0 {
		return fmt.Errorf("ucri: %s: HTTP %d with an empty body", op, r.status)
	}
	if !isJSONMediaType(r.contentType) {
		return fmt.Errorf("ucri: %s: HTTP %d answer has content type %q, want %s",
			op, r.status, cleanText(r.contentType, 80), ContentTypeJSON)
	}
	return nil
}

// apiError makes the error of an unexpected status, with the UCRI2 error of the body if
// there is one. A body that DecodeError refuses (e.g. a code outside error.yaml's list) is
// still used if it has a code, for the diagnosis. 404 also wraps ErrNotFound.
func (r *response) apiError(op string) error {
	e := &APIError{Op: op, Status: r.status}
	if len(r.body) > 0 {
		if ue, err := DecodeError(r.body); err == nil {
			e.UCRI = ue
		} else if ue := new(Error); json.Unmarshal(r.body, ue) == nil && ue.Code != 0 {
			e.UCRI = ue
		}
	}
	if r.status == http.StatusNotFound {
		return fmt.Errorf("%w: %w", e, ErrNotFound)
	}
	return e
}

func isJSONMediaType(ct string) bool {
	mt, _, err := mime.ParseMediaType(ct)
	if err != nil {
		return false
	}
	return mt == ContentTypeJSON || (strings.HasPrefix(mt, "application/") && strings.HasSuffix(mt, "+json"))
}

// APIError is an answer of the UCRM with an unexpected HTTP status.
type APIError struct {
	Op     string // what the client did: "send", "receive", "token", …
	Status int    // HTTP status
	UCRI   *Error // the UCRI2 error of the body; may be nil
}

func (e *APIError) Error() string {
	s := "ucri: " + e.Op + ": HTTP " + strconv.Itoa(e.Status)
	if t := http.StatusText(e.Status); t != "" {
		s += " " + t
	}
	if e.UCRI != nil {
		s += ": UCRI2 " + strconv.Itoa(e.UCRI.Code)
		if r := cleanText(e.UCRI.Reason, maxReasonRunes); r != "" {
			s += " " + r
		}
	}
	return s
}

// Unwrap returns the UCRI2 error, or nil.
func (e *APIError) Unwrap() error {
	if e.UCRI == nil {
		return nil
	}
	return e.UCRI
}

// Temporary reports whether the same request may succeed later: true for 5xx, 408 and 429.
func (e *APIError) Temporary() bool {
	return e.Status >= 500 || e.Status == http.StatusRequestTimeout || e.Status == http.StatusTooManyRequests
}

// netError is a failure to reach the UCRM or to read its answer.
type netError struct {
	op  string
	err error
}

func (e *netError) Error() string { return "ucri: " + e.op + ": " + e.err.Error() }
func (e *netError) Unwrap() error { return e.err }

// IsTemporary reports whether retrying the same request may succeed: after a network
// error, a timeout or a temporary APIError. It is false for a cancelled context, a refused
// request and an answer that could not be decoded.
func IsTemporary(err error) bool {
	if err == nil || errors.Is(err, context.Canceled) {
		return false
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return true
	}
	if ae, ok := errors.AsType[*APIError](err); ok {
		return ae.Temporary()
	}
	_, ok := errors.AsType[*netError](err)
	return ok
}

// cleanText strips control characters from s and cuts it to n runes, for error messages.
func cleanText(s string, n int) string {
	var b strings.Builder
	count := 0
	for _, r := range s {
		if r == utf8.RuneError || unicode.IsControl(r) || unicode.In(r, unicode.Cf, unicode.Zl, unicode.Zp) {
			continue
		}
		if count == n {
			b.WriteString("…")
			break
		}
		b.WriteRune(r)
		count++
	}
	return strings.TrimSpace(b.String())
}
