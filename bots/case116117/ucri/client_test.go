package ucri

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

const (
	testUser     = "leitstelle-a"
	testPassword = "s3cret-Passw0rd"
	testOID      = "1.2.276.0.58.1.1"
)

var testSecret = []byte("ucrm-hs256-secret")

func testParticipant(oid string) CommParticipant {
	return CommParticipant{
		ID: oid, SystemName: "ELS Test", OperatorName: "Leitstelle Test", OperatorShortName: "ELS T",
		SupportedApps: []AppRef{{AppID: AppIncidentWithPatient, AppVersion: AppVersion}},
		TechSupport:   TechSupport{Phone: "+49 69 123456", Email: "support@example.org"},
		Status:        StatusOnline,
	}
}

func testSendRequest(description string) *SendRequest {
	return &SendRequest{
		Envelope: Envelope{
			Description: description, Source: "1.2.276.0.58.1.2", Ack: AckNACK,
			Payload: Payload{AppID: AppTransport, AppVersion: AppVersion, SchemaID: SchemaAvailability,
				ContentType: ContentTypeJSON, Data: `{"status":"online"}`},
		},
		Destinations: []string{testOID},
	}
}

func testReceived(seq int64) ReceivedMessage {
	req := testSendRequest("")
	req.MessageID = "f8c3de3d-1fea-4d7c-a8b0-29f63c4c3454"
	req.SentDate = "2025-03-01T12:00:00Z"
	req.Timeout = 300
	return ReceivedMessage{Envelope: req.Envelope, Destination: testOID, SequenceID: seq}
}

// fakeUCRM is an in-memory UCRM Client API for the client tests. Its handler hooks may
// be replaced before the first request.
type fakeUCRM struct {
	t   *testing.T
	srv *httptest.Server

	tokenLifetime time.Duration // exp-iat of issued tokens; 0: no exp claim
	clock         func() time.Time
	tokenDelay    time.Duration

	tokenFetches atomic.Int32
	requests     atomic.Int32 // requests other than /token

	mu      sync.Mutex
	valid   map[string]bool // guarded by mu; tokens the server accepts
	lastReq *http.Request   // guarded by mu

	// handle answers an authenticated request; nil means the default answers.
	handle func(w http.ResponseWriter, r *http.Request)
}

func newFakeUCRM(t *testing.T) *fakeUCRM {
	t.Helper()
	f := &fakeUCRM{t: t, tokenLifetime: 10 * time.Minute, clock: time.Now, valid: map[string]bool{}}
	f.srv = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fakeUCRM) client(t *testing.T, mod func(*ClientConfig)) *Client {
	t.Helper()
	cfg := ClientConfig{BaseURL: f.srv.URL + "/ucrm/client/v0", Username: testUser, Password: testPassword}
	if mod != nil {
		mod(&cfg)
	}
	c, err := NewClient(cfg)
	if err != nil {
		t.Fatalf("NewClient: %v", err)
	}
	return c
}

// revokeAll makes the server refuse every token issued so far.
func (f *fakeUCRM) revokeAll() {
	f.mu.Lock()
	defer f.mu.Unlock()
	clear(f.valid)
}

func (f *fakeUCRM) serve(w http.ResponseWriter, r *http.Request) {
	path, ok := strings.CutPrefix(r.URL.EscapedPath(), "/ucrm/client/v0")
	if !ok {
		http.NotFound(w, r)
		return
	}
	if path == "/token" {
		f.serveToken(w, r)
		return
	}
	f.requests.Add(1)
	tok, _ := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	f.mu.Lock()
	valid := f.valid[tok]
	f.lastReq = r
	f.mu.Unlock()
	if !valid {
		writeJSON(w, http.StatusUnauthorized, Error{Code: CodeUnauthorized, Reason: "token invalid"})
		return
	}
	if f.handle != nil {
		f.handle(w, r)
		return
	}
	switch {
	case path == "/info":
		writeJSON(w, http.StatusOK, Info{APIVersion: "0.1", UCRMProductName: "fake", Status: 0})
	case path == "/registry":
		writeJSON(w, http.StatusOK, map[string]any{"commParticipants": []CommParticipant{testParticipant(testOID)}})
	case strings.HasPrefix(path, "/registry/"):
		writeJSON(w, http.StatusNotFound, Error{Code: CodeUnknownDestination, Reason: "unknown participant"})
	case path == "/messaging/send":
		var req SendRequest
		if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
			writeJSON(w, http.StatusBadRequest, Error{Code: CodeInvalidJSON, Reason: err.Error()})
			return
		}
		req.MessageID = "f8c3de3d-1fea-4d7c-a8b0-29f63c4c3454"
		req.SentDate = "2025-03-01T12:00:00Z"
		req.Timeout = 3600
		writeJSON(w, http.StatusOK, req)
	case path == "/messaging/receive":
		w.WriteHeader(http.StatusNoContent)
	case path == "/messaging/commit":
		w.WriteHeader(http.StatusNoContent)
	default:
		http.NotFound(w, r)
	}
}

func (f *fakeUCRM) serveToken(w http.ResponseWriter, r *http.Request) {
	f.tokenFetches.Add(1)
	time.Sleep(f.tokenDelay)
	user, pass, ok := r.BasicAuth()
	if !ok || user != testUser || pass != testPassword {
		writeJSON(w, http.StatusUnauthorized, Error{Code: CodeUnauthorized, Reason: "bad credentials"})
		return
	}
	now := f.clock()
	claims := jwt.MapClaims{"iat": now.Unix(), "jti": fmt.Sprint(f.tokenFetches.Load())}
	if f.tokenLifetime > 0 {
		claims["exp"] = now.Add(f.tokenLifetime).Unix()
	}
	tok, err := jwt.NewWithClaims(jwt.SigningMethodHS256, claims).SignedString(testSecret)
	if err != nil {
		f.t.Errorf("signing token: %v", err)
		return
	}
	f.mu.Lock()
	f.valid[tok] = true
	f.mu.Unlock()
	writeJSON(w, http.StatusOK, map[string]string{"token": tok})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// fakeClock is a clock the test advances by hand.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func TestClientTokenReuse(t *testing.T) {
	f := newFakeUCRM(t)
	c := f.client(t, nil)
	ctx := t.Context()
	calls := []struct {
		name string
		call func() error
	}{
		{"info", func() error { _, err := c.Info(ctx); return err }},
		{"registry", func() error { _, err := c.Registry(ctx); return err }},
		{"send", func() error { _, err := c.Send(ctx, testSendRequest("")); return err }},
		{"receive", func() error { _, _, err := c.Receive(ctx, ReceiveRequest{Destinations: []string{testOID}}); return err }},
		{"commit", func() error { return c.Commit(ctx, MessageRef{Destination: testOID, SequenceID: 1}) }},
	}
	for _, tc := range calls {
		if err := tc.call(); err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
	}
	if n := f.tokenFetches.Load(); n != 1 {
		t.Errorf("token fetched %d times for %d calls, want 1", n, len(calls))
	}
}

func TestClientTokenRenewal(t *testing.T) {
	tests := []struct {
		name        string
		lifetime    time.Duration // 0: token without exp
		serverSkew  time.Duration
		renewBefore time.Duration
		advance     time.Duration
		wantFetches int32
	}{
		{"fresh token reused", 10 * time.Minute, 0, 0, time.Minute, 1},
		{"just before 20% left", 10 * time.Minute, 0, 0, 7*time.Minute + 59*time.Second, 1},
		{"20% left renews", 10 * time.Minute, 0, 0, 8*time.Minute + time.Second, 2},
		{"short token renews 30s before exp", 2 * time.Minute, 0, 0, 90*time.Second + time.Second, 2},
		{"short token kept until 30s before exp", 2 * time.Minute, 0, 0, 89 * time.Second, 1},
		{"very short token still reused", 20 * time.Second, 0, 0, 9 * time.Second, 1},
		{"no exp claim lasts 5 minutes", 0, 0, 0, 3*time.Minute + 59*time.Second, 1},
		{"no exp claim renewed after 4 minutes", 0, 0, 0, 4*time.Minute + time.Second, 2},
		{"configured RenewBefore", 10 * time.Minute, 0, 5 * time.Minute, 5*time.Minute + time.Second, 2},
		{"server clock an hour ahead", 10 * time.Minute, time.Hour, 0, 7 * time.Minute, 1},
		{"server clock an hour behind", 10 * time.Minute, -time.Hour, 0, 8*time.Minute + time.Second, 2},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			clk := &fakeClock{t: time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)}
			f := newFakeUCRM(t)
			f.tokenLifetime = tc.lifetime
			f.clock = func() time.Time { return clk.Now().Add(tc.serverSkew) }
			c := f.client(t, func(cfg *ClientConfig) { cfg.RenewBefore = tc.renewBefore })
			c.now = clk.Now
			if _, err := c.Info(t.Context()); err != nil {
				t.Fatal(err)
			}
			clk.Advance(tc.advance)
			if _, err := c.Info(t.Context()); err != nil {
				t.Fatal(err)
			}
			if got := f.tokenFetches.Load(); got != tc.wantFetches {
				t.Errorf("token fetched %d times, want %d", got, tc.wantFetches)
			}
		})
	}
}

func TestClientRetryOn401(t *testing.T) {
	tests := []struct {
		name         string
		revoke       bool // the server forgets the cached token
		rejections   int  // how many valid requests the handler answers 401
		wantErr      bool
		wantFetches  int32 // token fetches after the first
		wantRequests int32
	}{
		{"token revoked", true, 0, false, 1, 2},
		{"401 once", false, 1, false, 1, 2},
		{"401 twice", false, 2, true, 1, 2},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFakeUCRM(t)
			c := f.client(t, nil)
			if _, err := c.Info(t.Context()); err != nil {
				t.Fatal(err)
			}
			f.tokenFetches.Store(0)
			f.requests.Store(0)
			var rejected atomic.Int32
			f.handle = func(w http.ResponseWriter, r *http.Request) {
				if int(rejected.Add(1)) <= tc.rejections {
					writeJSON(w, http.StatusUnauthorized, Error{Code: CodeUnauthorized, Reason: "token revoked"})
					return
				}
				writeJSON(w, http.StatusOK, Info{UCRMProductName: "fake"})
			}
			if tc.revoke {
				f.revokeAll()
			}
			_, err := c.Info(t.Context())
			if got := err != nil; got != tc.wantErr {
				t.Fatalf("Info error = %v, want error %v", err, tc.wantErr)
			}
			if err != nil {
				if !errors.Is(err, ErrUnauthorized) {
					t.Errorf("error %v does not wrap ErrUnauthorized", err)
				}
				if ae, ok := errors.AsType[*APIError](err); !ok || ae.Status != http.StatusUnauthorized || ae.UCRI == nil || ae.UCRI.Code != CodeUnauthorized {
					t.Errorf("error %v: want an APIError 401 with UCRI2 code %d", err, CodeUnauthorized)
				}
				if IsTemporary(err) {
					t.Errorf("IsTemporary(%v) = true", err)
				}
			}
			if got := f.tokenFetches.Load(); got != tc.wantFetches {
				t.Errorf("token fetched %d more times, want %d", got, tc.wantFetches)
			}
			if got := f.requests.Load(); got != tc.wantRequests {
				t.Errorf("%d requests to /info, want %d", got, tc.wantRequests)
			}
		})
	}
}

func TestClientWrongCredentials(t *testing.T) {
	f := newFakeUCRM(t)
	c := f.client(t, func(cfg *ClientConfig) { cfg.Password = "wrong-" + testPassword })
	_, err := c.Info(t.Context())
	if !errors.Is(err, ErrUnauthorized) {
		t.Fatalf("error %v does not wrap ErrUnauthorized", err)
	}
	msg := err.Error()
	if strings.Contains(msg, testPassword) {
		t.Errorf("error message contains the password: %q", msg)
	}
	if !strings.Contains(msg, "refused the credentials") || !strings.Contains(msg, testUser) {
		t.Errorf("error message %q should say the credentials of %s were refused", msg, testUser)
	}
	if IsTemporary(err) {
		t.Errorf("IsTemporary(%v) = true", err)
	}
	if n := f.requests.Load(); n != 0 {
		t.Errorf("%d requests sent without a token", n)
	}
}

func TestClientReceive(t *testing.T) {
	delay := func(n int) *int { return &n }
	msgs := ReceiveResponse{Messages: []ReceivedMessage{testReceived(7)}, MaxMessages: 5}
	bad := testReceived(8)
	bad.Source = "not an oid"
	mixed := ReceiveResponse{Messages: []ReceivedMessage{testReceived(7), bad}, MaxMessages: 5}
	tests := []struct {
		name         string
		req          ReceiveRequest
		answer       func(w http.ResponseWriter)
		wantMsgs     int
		wantRejected []int64 // sequence ids
		wantErr      bool
	}{
		{"no content", ReceiveRequest{Destinations: []string{testOID}},
			func(w http.ResponseWriter) { w.WriteHeader(http.StatusNoContent) }, 0, nil, false},
		{"messages", ReceiveRequest{Destinations: []string{testOID}, MaxMessages: 5, MaxDelay: delay(0)},
			func(w http.ResponseWriter) { writeJSON(w, http.StatusOK, msgs) }, 1, nil, false},
		{"invalid message set aside", ReceiveRequest{Destinations: []string{testOID}},
			func(w http.ResponseWriter) { writeJSON(w, http.StatusOK, mixed) }, 1, []int64{8}, false},
		{"200 without body", ReceiveRequest{Destinations: []string{testOID}},
			func(w http.ResponseWriter) { w.Header().Set("Content-Type", "application/json") }, 0, nil, true},
		{"empty message list", ReceiveRequest{Destinations: []string{testOID}},
			func(w http.ResponseWriter) {
				writeJSON(w, http.StatusOK, ReceiveResponse{Messages: []ReceivedMessage{}, MaxMessages: 5})
			}, 0, nil, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFakeUCRM(t)
			var got ReceiveRequest
			f.handle = func(w http.ResponseWriter, r *http.Request) {
				if err := json.NewDecoder(r.Body).Decode(&got); err != nil {
					t.Errorf("decoding request: %v", err)
				}
				tc.answer(w)
			}
			resp, rejected, err := f.client(t, nil).Receive(t.Context(), tc.req)
			if tc.wantErr {
				if err == nil {
					t.Fatal("Receive succeeded, want error")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(resp.Messages) != tc.wantMsgs {
				t.Errorf("%d messages, want %d", len(resp.Messages), tc.wantMsgs)
			}
			if tc.wantMsgs > 0 && resp.Messages[0].SequenceID != 7 {
				t.Errorf("sequenceId %d, want 7", resp.Messages[0].SequenceID)
			}
			var gotRejected []int64
			for _, me := range rejected {
				gotRejected = append(gotRejected, me.SequenceID)
			}
			if fmt.Sprint(gotRejected) != fmt.Sprint(tc.wantRejected) {
				t.Errorf("rejected sequence ids %v, want %v", gotRejected, tc.wantRejected)
			}
			if len(got.Destinations) != 1 || (tc.req.MaxDelay != nil) != (got.MaxDelay != nil) {
				t.Errorf("server got %+v, want %+v", got, tc.req)
			}
		})
	}
}

func TestClientReceiveCancel(t *testing.T) {
	f := newFakeUCRM(t)
	arrived, release := make(chan struct{}), make(chan struct{})
	t.Cleanup(func() { close(release) }) // runs before the server's Close
	f.handle = func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body) // lets the server notice the closed connection
		close(arrived)
		select { // a long poll that never answers
		case <-r.Context().Done():
		case <-release:
		}
	}
	c := f.client(t, nil)
	ctx, cancel := context.WithCancel(t.Context())
	go func() {
		<-arrived
		cancel()
	}()
	start := time.Now()
	_, _, err := c.Receive(ctx, ReceiveRequest{Destinations: []string{testOID}})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("error %v, want context.Canceled", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("Receive returned after %s", d)
	}
	if IsTemporary(err) {
		t.Errorf("IsTemporary(%v) = true for a cancelled receive", err)
	}
}

func TestClientErrorAnswers(t *testing.T) {
	tests := []struct {
		name     string
		status   int
		ctype    string
		body     string
		wantCode int // 0: no UCRI2 error
		wantTemp bool
		wantIn   string
		wantOut  string
	}{
		{"400 invalid payload", 400, "application/json",
			`{"code":464,"reason":"payload invalid per app spec","message":"patient.name missing"}`,
			CodeInvalidPayload, false, "HTTP 400 Bad Request: UCRI2 464 payload invalid per app spec", "patient.name"},
		{"500 internal", 500, "application/json",
			`{"code":491,"reason":"internal error"}`, CodeInternalError, true, "UCRI2 491 internal error", ""},
		{"503 without body", 503, "", "", 0, true, "send: HTTP 503 Service Unavailable", ""},
		{"429", 429, "text/plain", "slow down", 0, true, "HTTP 429", "slow down"},
		{"404 html", 404, "text/html", "<h1>nope</h1>", 0, false, "HTTP 404", "nope"},
		{"reason with control characters cut", 400, "application/json",
			`{"code":460,"reason":"bad\u001b[31m\r\nInjected: ` + strings.Repeat("x", 300) + `"}`,
			CodeInvalidTransport, false, "UCRI2 460 bad[31mInjected: xxx", "\r\n"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFakeUCRM(t)
			f.handle = func(w http.ResponseWriter, r *http.Request) {
				if tc.ctype != "" {
					w.Header().Set("Content-Type", tc.ctype)
				}
				w.WriteHeader(tc.status)
				_, _ = io.WriteString(w, tc.body)
			}
			_, err := f.client(t, nil).Send(t.Context(), testSendRequest(""))
			ae, ok := errors.AsType[*APIError](err)
			if !ok {
				t.Fatalf("error %v is not an APIError", err)
			}
			if ae.Status != tc.status || ae.Op != "send" {
				t.Errorf("APIError %+v, want op send, status %d", ae, tc.status)
			}
			var ue *Error
			if gotUCRI := errors.As(err, &ue); gotUCRI != (tc.wantCode != 0) || (gotUCRI && ue.Code != tc.wantCode) {
				t.Errorf("UCRI2 error %v, want code %d", ue, tc.wantCode)
			}
			if got := IsTemporary(err); got != tc.wantTemp {
				t.Errorf("IsTemporary = %v, want %v", got, tc.wantTemp)
			}
			msg := err.Error()
			if !strings.Contains(msg, tc.wantIn) {
				t.Errorf("message %q does not contain %q", msg, tc.wantIn)
			}
			if tc.wantOut != "" && strings.Contains(msg, tc.wantOut) {
				t.Errorf("message %q contains %q", msg, tc.wantOut)
			}
			if len(msg) > 400 {
				t.Errorf("message is %d bytes long", len(msg))
			}
		})
	}
}

func TestClientTemporary(t *testing.T) {
	closed := httptest.NewServer(http.NotFoundHandler())
	closed.Close()
	down, err := NewClient(ClientConfig{BaseURL: closed.URL, Username: testUser, Password: testPassword})
	if err != nil {
		t.Fatal(err)
	}
	_, netErr := down.Info(t.Context())

	tests := []struct {
		name string
		err  error
		want bool
	}{
		{"nil", nil, false},
		{"plain error", errors.New("boom"), false},
		{"500", &APIError{Op: "send", Status: 500}, true},
		{"502 wrapped", fmt.Errorf("outer: %w", &APIError{Status: 502}), true},
		{"408", &APIError{Status: 408}, true},
		{"429", &APIError{Status: 429}, true},
		{"400", &APIError{Status: 400, UCRI: &Error{Code: CodeInvalidPayload}}, false},
		{"401", &APIError{Status: 401}, false},
		{"404", &APIError{Status: 404}, false},
		{"UCRI2 error alone", &Error{Code: CodeInternalError}, false},
		{"deadline", fmt.Errorf("x: %w", context.DeadlineExceeded), true},
		{"cancelled", fmt.Errorf("x: %w", context.Canceled), false},
		{"connection refused", netErr, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := IsTemporary(tc.err); got != tc.want {
				t.Errorf("IsTemporary(%v) = %v, want %v", tc.err, got, tc.want)
			}
		})
	}
	if netErr == nil || !strings.HasPrefix(netErr.Error(), "ucri: token: ") {
		t.Errorf("network error %v should name the op", netErr)
	}
}

func TestClientBadAnswers(t *testing.T) {
	big := strings.Repeat(" ", MaxBodyBytes) + `{}`
	tests := []struct {
		name   string
		answer func(w http.ResponseWriter)
		wantIn string
	}{
		{"oversize with length", func(w http.ResponseWriter) {
			w.Header().Set("Content-Type", "application/json")
			w.Header().Set("Content-Length", fmt.Sprint(len(big)))
			_, _ = io.WriteString(w, big)
		}, "exceeds the limit"},
		{"oversize chunked", func(w http.ResponseWriter) {
			w.Header().Set("Content-Type", "application/json")
			for i := 0; i < len(big); i += 1 << 16 {
				_, _ = io.WriteString(w, big[i:min(i+1<<16, len(big))])
				w.(http.Flusher).Flush()
			}
		}, "exceeds the limit"},
		{"html", func(w http.ResponseWriter) {
			w.Header().Set("Content-Type", "text/html; charset=utf-8")
			_, _ = io.WriteString(w, "<html>login</html>")
		}, `content type "text/html; charset=utf-8"`},
		{"no content type", func(w http.ResponseWriter) {
			w.Header()["Content-Type"] = nil
			_, _ = io.WriteString(w, `{"apiVersion":"0.1"}`)
		}, "content type"},
		{"broken JSON", func(w http.ResponseWriter) {
			w.Header().Set("Content-Type", "application/json")
			_, _ = io.WriteString(w, `{"apiVersion":`)
		}, "ucri: info: ucri: 460 invalid info"},
		{"status outside the schema", func(w http.ResponseWriter) {
			writeJSON(w, http.StatusOK, Info{APIVersion: "0.1", Status: 7})
		}, "ucri: info: ucri: 460 invalid info: /status"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFakeUCRM(t)
			f.handle = func(w http.ResponseWriter, r *http.Request) { tc.answer(w) }
			_, err := f.client(t, nil).Info(t.Context())
			if err == nil || !strings.Contains(err.Error(), tc.wantIn) {
				t.Fatalf("error %v, want one containing %q", err, tc.wantIn)
			}
			if IsTemporary(err) {
				t.Errorf("IsTemporary(%v) = true", err)
			}
		})
	}
}

func TestClientParticipant(t *testing.T) {
	tests := []struct {
		name     string
		oid      string
		wantPath string
		wantErr  error
	}{
		{"known", testOID, "/ucrm/client/v0/registry/" + testOID, nil},
		{"escaped", "1.2/../x y", "/ucrm/client/v0/registry/1.2%2F..%2Fx%20y", ErrNotFound},
		{"unknown", "9.9.9", "/ucrm/client/v0/registry/9.9.9", ErrNotFound},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFakeUCRM(t)
			var gotPath string
			f.handle = func(w http.ResponseWriter, r *http.Request) {
				gotPath = r.URL.EscapedPath()
				if strings.HasSuffix(gotPath, "/"+testOID) {
					writeJSON(w, http.StatusOK, testParticipant(testOID))
					return
				}
				writeJSON(w, http.StatusNotFound, Error{Code: CodeUnknownDestination, Reason: "unknown"})
			}
			p, err := f.client(t, nil).Participant(t.Context(), tc.oid)
			if gotPath != tc.wantPath {
				t.Errorf("path %q, want %q", gotPath, tc.wantPath)
			}
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("error %v, want %v", err, tc.wantErr)
			}
			if err == nil && (p.ID != testOID || p.Status != StatusOnline) {
				t.Errorf("participant %+v", p)
			}
			if err != nil && !strings.Contains(err.Error(), tc.oid) {
				t.Errorf("error %q does not name the oid", err)
			}
		})
	}
}

func TestClientConcurrentSendSharesToken(t *testing.T) {
	f := newFakeUCRM(t)
	f.tokenDelay = 50 * time.Millisecond
	c := f.client(t, nil)
	const n = 20
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Go(func() {
			req := testSendRequest(fmt.Sprint(i))
			resp, err := c.Send(t.Context(), req)
			if err == nil && resp.Description != req.Description {
				err = fmt.Errorf("answer %q to request %q", resp.Description, req.Description)
			}
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	if got := f.tokenFetches.Load(); got != 1 {
		t.Errorf("token fetched %d times by %d concurrent senders, want 1", got, n)
	}
}

func TestClientTokenWaiterOutlivesCancelledFetcher(t *testing.T) {
	f := newFakeUCRM(t)
	f.tokenDelay = 100 * time.Millisecond
	c := f.client(t, nil)
	ctx, cancel := context.WithCancel(t.Context())
	first := make(chan error, 1)
	go func() { _, err := c.Info(ctx); first <- err }()
	time.Sleep(20 * time.Millisecond) // let the first caller start the fetch
	second := make(chan error, 1)
	go func() { _, err := c.Info(t.Context()); second <- err }()
	time.Sleep(20 * time.Millisecond)
	cancel()
	if err := <-first; !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled caller: %v, want context.Canceled", err)
	}
	if err := <-second; err != nil {
		t.Errorf("waiting caller: %v", err)
	}
}

func TestNewClientConfig(t *testing.T) {
	ok := ClientConfig{BaseURL: "https://ucrm.example/ucrm/client/v0/", Username: "u", Password: "p"}
	tests := []struct {
		name    string
		mod     func(*ClientConfig)
		wantErr []string
	}{
		{"valid", func(*ClientConfig) {}, nil},
		{"loopback http", func(c *ClientConfig) { c.BaseURL = "http://127.0.0.1:8080/v0" }, nil},
		{"localhost http", func(c *ClientConfig) { c.BaseURL = "http://localhost/v0" }, nil},
		{"remote http allowed", func(c *ClientConfig) { c.BaseURL = "http://ucrm.lan/v0"; c.AllowInsecureHTTP = true }, nil},
		{"remote http refused", func(c *ClientConfig) { c.BaseURL = "http://ucrm.lan/v0" }, []string{"BaseURL: plain http"}},
		{"empty", func(c *ClientConfig) { *c = ClientConfig{} }, []string{"BaseURL: required", "Username: required", "Password: required"}},
		{"relative", func(c *ClientConfig) { c.BaseURL = "/ucrm/client/v0" }, []string{"BaseURL: scheme"}},
		{"no host", func(c *ClientConfig) { c.BaseURL = "https:///v0" }, []string{"BaseURL: must be an absolute URL"}},
		{"ftp", func(c *ClientConfig) { c.BaseURL = "ftp://ucrm.example/" }, []string{"BaseURL: scheme"}},
		{"credentials in URL", func(c *ClientConfig) { c.BaseURL = "https://u:hunter2@ucrm.example/" }, []string{"BaseURL: must not contain credentials"}},
		{"query", func(c *ClientConfig) { c.BaseURL = "https://ucrm.example/?x=1" }, []string{"BaseURL: must not have a query"}},
		{"negative RenewBefore", func(c *ClientConfig) { c.RenewBefore = -time.Second }, []string{"RenewBefore"}},
		{"short HTTP timeout", func(c *ClientConfig) { c.HTTPClient = &http.Client{Timeout: 10 * time.Second} }, []string{"HTTPClient.Timeout"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := ok
			tc.mod(&cfg)
			c, err := NewClient(cfg)
			if len(tc.wantErr) == 0 {
				if err != nil || c == nil {
					t.Fatalf("NewClient: %v", err)
				}
				if strings.HasSuffix(c.base, "/") {
					t.Errorf("base %q ends in a slash", c.base)
				}
				return
			}
			if err == nil {
				t.Fatal("NewClient succeeded, want error")
			}
			for _, w := range tc.wantErr {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
			if strings.Contains(err.Error(), "hunter2") {
				t.Errorf("error %q contains the password", err)
			}
		})
	}
}

func FuzzClientErrorAnswer(f *testing.F) {
	f.Add(400, []byte(`{"code":464,"reason":"invalid"}`))
	f.Add(500, []byte(`{"code":491,"reason":"\u0000\u202e\n`+strings.Repeat("y", 500)+`"}`))
	f.Add(401, []byte(`not json`))
	f.Fuzz(func(t *testing.T, status int, body []byte) {
		r := &response{status: status, contentType: "application/json", body: body}
		msg := r.apiError("send").Error()
		if len([]rune(msg)) > 300 {
			t.Errorf("message of %d runes", len([]rune(msg)))
		}
		if strings.ContainsAny(msg, "\x00\r\n\x1b\u202e") {
			t.Errorf("message %q contains control characters", msg)
		}
	})
}

func TestClientRegistry(t *testing.T) {
	invalid := testParticipant("1.2.3")
	invalid.Status = "off" // as in the official example; the schema forbids it
	tests := []struct {
		name    string
		entries []CommParticipant
		wantIDs []string
		wantErr string
	}{
		{"valid", []CommParticipant{testParticipant(testOID)}, []string{testOID}, ""},
		{"empty", []CommParticipant{}, nil, ""},
		{"invalid entry left out", []CommParticipant{invalid, testParticipant(testOID)}, []string{testOID}, "/commParticipants/0/status"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFakeUCRM(t)
			f.handle = func(w http.ResponseWriter, r *http.Request) {
				writeJSON(w, http.StatusOK, map[string]any{"commParticipants": tc.entries})
			}
			ps, err := f.client(t, nil).Registry(t.Context())
			var ids []string
			for _, p := range ps {
				ids = append(ids, p.ID)
			}
			if fmt.Sprint(ids) != fmt.Sprint(tc.wantIDs) {
				t.Errorf("ids %v, want %v", ids, tc.wantIDs)
			}
			if tc.wantErr == "" && err != nil || tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)) {
				t.Errorf("error %v, want one containing %q", err, tc.wantErr)
			}
		})
	}
}
