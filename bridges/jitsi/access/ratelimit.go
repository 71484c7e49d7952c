package access

import (
	"net"
	"net/netip"
	"sync"
	"time"
)

// maxBuckets bounds the buckets a limiter keeps. Full buckets are dropped first; if all are
// in use, arbitrary ones are (their keys start again with a full bucket).
const maxBuckets = 10000

// limiter is a set of token buckets by key.
type limiter struct {
	rate Rate
	now  func() time.Time

	mu      sync.Mutex
	buckets map[string]*bucket // guarded by mu
}

// bucket is one key's tokens at last.
type bucket struct {
	tokens float64
	last   time.Time
}

func newLimiter(rate Rate, now func() time.Time) *limiter {
	return &limiter{rate: rate, now: now, buckets: make(map[string]*bucket)}
}

// allow takes a token of key's bucket. When there is none it returns false and the time
// until there is one.
func (l *limiter) allow(key string) (time.Duration, bool) {
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	b, ok := l.buckets[key]
	if !ok {
		if len(l.buckets) >= maxBuckets {
			l.evict(now)
		}
		b = &bucket{tokens: float64(l.rate.Burst), last: now}
		l.buckets[key] = b
	}
	b.refill(now, l.rate)
	if b.tokens >= 1 {
		b.tokens--
		return 0, true
	}
	wait := time.Duration((1 - b.tokens) / l.rate.PerSecond * float64(time.Second))
	return wait, false
}

// refill adds the tokens earned since last (a clock going back earns none).
func (b *bucket) refill(now time.Time, rate Rate) {
	if elapsed := now.Sub(b.last); elapsed > 0 {
		b.tokens += elapsed.Seconds() * rate.PerSecond
		if b.tokens > float64(rate.Burst) {
			b.tokens = float64(rate.Burst)
		}
		b.last = now
	}
}

// evict drops full buckets, then arbitrary ones down to 90 % of maxBuckets. mu is held.
func (l *limiter) evict(now time.Time) {
	for k, b := range l.buckets {
		b.refill(now, l.rate)
		if b.tokens >= float64(l.rate.Burst) {
			delete(l.buckets, k)
		}
	}
	for k := range l.buckets {
		if len(l.buckets) < maxBuckets*9/10 {
			break
		}
		delete(l.buckets, k)
	}
}

// clientKey is the rate limit key of a remote address: its IP, an IPv6 address's /64.
func clientKey(remoteAddr string) string {
	host, _, err := net.SplitHostPort(remoteAddr)
	if err != nil {
		host = remoteAddr
	}
	addr, err := netip.ParseAddr(host)
	if err != nil {
		return host
	}
	addr = addr.Unmap()
	if addr.Is6() {
		if p, err := addr.Prefix(64); err == nil {
			return p.String()
		}
	}
	return addr.String()
}
