package access

import (
	"fmt"
	"net/http"
	"testing"
	"time"
)

// TestRateLimitPerIP: callers without the bearer token (anyone but Prosody) are limited
// per address (their requests are refused after that: 403); Prosody's, with the token,
// are not (every join comes from its one address).
func TestRateLimitPerIP(t *testing.T) {
	h, hs, clock := newTestHandler(t, func(c *Config) { c.PerIP = Rate{PerSecond: 0.5, Burst: 2} })
	ok := `{"token":"tok-alice"}`
	tests := []struct {
		name       string
		remote     string
		advance    time.Duration
		bearer     string
		wantStatus int
		wantRetry  string
	}{
		{name: "first", remote: "192.0.2.1:1000", wantStatus: 403},
		{name: "second (burst)", remote: "192.0.2.1:1001", wantStatus: 403},
		{name: "third limited", remote: "192.0.2.1:1002", wantStatus: 429, wantRetry: "2"},
		{name: "with the bearer token not limited", remote: "192.0.2.1:1002", bearer: testBearer, wantStatus: 200},
		{name: "other address", remote: "192.0.2.2:1000", wantStatus: 403},
		{name: "still limited after 1s", remote: "192.0.2.1:1003", advance: time.Second, wantStatus: 429, wantRetry: "1"},
		{name: "allowed after 2s", remote: "192.0.2.1:1004", advance: time.Second, wantStatus: 403},
		{name: "ipv6 first", remote: "[2001:db8::1]:1000", wantStatus: 403},
		{name: "ipv6 same /64", remote: "[2001:db8::2]:1000", wantStatus: 403},
		{name: "ipv6 same /64 limited", remote: "[2001:db8::3]:1000", wantStatus: 429, wantRetry: "2"},
		{name: "ipv6 other /64", remote: "[2001:db8:0:1::1]:1000", wantStatus: 403},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clock.Add(tt.advance)
			before := hs.calls.Load()
			w := call{path: "/verify/user", body: ok, bearer: tt.bearer, remote: tt.remote}.do(h)
			if w.Code != tt.wantStatus {
				t.Fatalf("status %d, want %d: %s", w.Code, tt.wantStatus, w.Body)
			}
			if got := w.Header().Get("Retry-After"); got != tt.wantRetry {
				t.Errorf("Retry-After %q, want %q", got, tt.wantRetry)
			}
			if tt.wantStatus == http.StatusTooManyRequests {
				assertJSON(t, w.Body.Bytes(), fmt.Sprintf(`{"errcode":"M_LIMIT_EXCEEDED","error":"too many requests from this address; retry later","retry_after_ms":%s000}`, tt.wantRetry))
				if hs.calls.Load() != before {
					t.Error("a rate limited request reached the homeserver")
				}
			}
		})
	}
}

func TestRateLimitPerUser(t *testing.T) {
	h, _, clock := newTestHandler(t, func(c *Config) { c.PerUser = Rate{PerSecond: 1, Burst: 1} })
	tests := []struct {
		name       string
		token      string
		remote     string
		advance    time.Duration
		wantStatus int
	}{
		{name: "alice", token: "tok-alice", remote: "192.0.2.1:1", wantStatus: 200},
		{name: "alice again from elsewhere", token: "tok-alice", remote: "192.0.2.9:1", wantStatus: 429},
		{name: "bob", token: "tok-bob", remote: "192.0.2.1:1", wantStatus: 200},
		{name: "alice after 1s", token: "tok-alice", remote: "192.0.2.9:1", advance: time.Second, wantStatus: 200},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clock.Add(tt.advance)
			w := call{path: "/verify/user", body: `{"token":"` + tt.token + `"}`, bearer: testBearer, remote: tt.remote}.do(h)
			if w.Code != tt.wantStatus {
				t.Fatalf("status %d, want %d: %s", w.Code, tt.wantStatus, w.Body)
			}
			if tt.wantStatus == http.StatusTooManyRequests {
				if got := w.Header().Get("Retry-After"); got != "1" {
					t.Errorf("Retry-After %q, want 1", got)
				}
				assertJSON(t, w.Body.Bytes(), `{"errcode":"M_LIMIT_EXCEEDED","error":"too many requests from this user; retry later","retry_after_ms":1000}`)
			}
		})
	}
}

func TestLimiterEvicts(t *testing.T) {
	clock := &testClock{now: testEpoch}
	l := newLimiter(Rate{PerSecond: 1, Burst: 1}, clock.Now)
	for i := range maxBuckets + 10 {
		if _, ok := l.allow(fmt.Sprint(i)); !ok {
			t.Fatalf("key %d refused", i)
		}
	}
	if n := len(l.buckets); n > maxBuckets {
		t.Errorf("%d buckets kept, want at most %d", n, maxBuckets)
	}
}

func TestClientKey(t *testing.T) {
	tests := []struct{ name, remote, want string }{
		{"ipv4", "192.0.2.1:5", "192.0.2.1"},
		{"ipv4-mapped", "[::ffff:192.0.2.1]:5", "192.0.2.1"},
		{"ipv6", "[2001:db8::1]:5", "2001:db8::/64"},
		{"no port", "192.0.2.1", "192.0.2.1"},
		{"garbage", "x", "x"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := clientKey(tt.remote); got != tt.want {
				t.Errorf("clientKey(%q) = %q, want %q", tt.remote, got, tt.want)
			}
		})
	}
}
