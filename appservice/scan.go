package appservice

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/switchboard-matrix/switchboard/internal/store"
)

// Virus scanning. Every file a module carries into Matrix (Host.ScanFile before it uploads
// it) and every Matrix file a module carries out (Intent.DownloadFile does it for the
// module) is checked by the configured Scanner (clamd in the daemon) before it reaches the
// other side. A verdict is recorded by the SHA-256 of the file, so a file handled again
// after a crash or a resend is not scanned twice; clean verdicts are trusted for
// Scanning.VerdictTTL (signatures change), infected ones until pruned.
//
// When the scanner cannot be reached (fail_closed, the default) ScanFile holds the file:
// it retries with backoff for Scanning.Hold, measured from the first time this process saw
// the file, across calls. While the caller's context ends first (a handler's deadline, a
// stop) the error wraps ErrScannerUnavailable and the caller keeps the file to try again:
// the dispatcher retries such an event without counting an attempt; the journal, a
// module's queue or the remote side keep it over a restart. After Hold the file is refused
// for good (a permanent UserError). With FailOpen a file that cannot be scanned passes,
// logged and counted.

// Scanner checks files for malware.
type Scanner interface {
	// Scan reads r to its end and returns the name of what it found, empty when the file
	// is clean. Errors wrapping ErrScannerUnavailable are worth retrying later; errors
	// wrapping ErrScanTooLarge are not.
	Scan(ctx context.Context, r io.Reader) (signature string, err error)
	// Ping checks that the scanner answers; Version describes it (engine and signatures).
	Ping(ctx context.Context) error
	Version(ctx context.Context) (string, error)
}

// Scanning configures virus scanning; a nil Scanner turns it off.
type Scanning struct {
	Scanner Scanner
	// FailOpen lets files through that cannot be scanned (scanner unreachable, file larger
	// than MaxBytes). The default, fail closed, holds them and then refuses them.
	FailOpen bool
	// MaxBytes is the largest file the scanner accepts (clamd's StreamMaxLength); default
	// 25 MiB.
	MaxBytes int64
	// Outbound scans Matrix files going out too (Intent.DownloadFile).
	Outbound bool
	// Hold is how long a file waits for an unreachable scanner (fail closed); default 10m.
	Hold time.Duration
	// VerdictTTL is how long a clean verdict is trusted; default 24h.
	VerdictTTL time.Duration
	// Timeout bounds one scan; default 2m.
	Timeout time.Duration
}

func (s *Scanning) defaults() {
	if s.MaxBytes <= 0 {
		s.MaxBytes = 25 << 20
	}
	if s.Hold <= 0 {
		s.Hold = 10 * time.Minute
	}
	if s.VerdictTTL <= 0 {
		s.VerdictTTL = 24 * time.Hour
	}
	if s.Timeout <= 0 {
		s.Timeout = 2 * time.Minute
	}
}

// Errors of scanning.
var (
	// ErrScannerUnavailable is wrapped by a scan that could not be made (scanner
	// unreachable or timed out).
	ErrScannerUnavailable = errors.New("appservice: the virus scanner is unavailable")
	// ErrScanTooLarge is wrapped when a file is larger than the scanner accepts.
	ErrScanTooLarge = errors.New("appservice: the file is larger than the virus scanner accepts")
)

// Direction is which way a file goes.
type Direction string

// The directions of a file.
const (
	Inbound  Direction = "inbound"  // from a remote network into Matrix
	Outbound Direction = "outbound" // from Matrix to a remote network
)

// InfectedError is the error of a file in which the scanner found malware. It is
// permanent (errors.Is ErrPermanent) and a UserError: its UserMessage names the file and
// what was found, never the file's contents.
type InfectedError struct {
	Name      string // the file's name, as the sender gave it
	Signature string // what the scanner found
}

// Error leaves the file's name out: names can say whom a file is about, and errors are
// logged.
func (e *InfectedError) Error() string {
	return "appservice: the virus scanner found " + e.Signature + " in a file"
}

// UserMessage implements UserError.
func (e *InfectedError) UserMessage() string {
	return fmt.Sprintf("the virus scanner found %s in the file %q", e.Signature, e.Name)
}

// Is makes an InfectedError match ErrPermanent.
func (e *InfectedError) Is(target error) bool { return target == ErrPermanent }

// unscannedError refuses a file that could not be scanned (too large, the scanner
// unreachable for too long). Like InfectedError it is permanent, and its name appears
// in UserMessage only.
type unscannedError struct {
	user  string // for the room; names the file
	cause error  // ErrScanTooLarge or ErrScannerUnavailable, wrapped
}

func (e *unscannedError) Error() string {
	return "appservice: file refused unscanned: " + e.cause.Error()
}
func (e *unscannedError) UserMessage() string { return e.user }
func (e *unscannedError) Unwrap() error       { return e.cause }
func (e *unscannedError) Is(target error) bool {
	return target == ErrPermanent
}

// ScanRefusal is the reason, for a notice in the room, why ScanFile refused a file for
// good (malware found, too large to scan, the scanner unreachable for too long); ok is
// false for any other error, such as a scan still held.
func ScanRefusal(err error) (reason string, ok bool) {
	var ie *InfectedError
	var ue *unscannedError
	switch {
	case errors.As(err, &ie):
		return ie.UserMessage(), true
	case errors.As(err, &ue):
		return ue.UserMessage(), true
	}
	return "", false
}

// scanWatchInterval is how often the scanner is pinged for readiness and status;
// scanDownInterval while it is unreachable.
const (
	scanWatchInterval = 30 * time.Second
	scanDownInterval  = 2 * time.Second
)

// scanner is the core's side of scanning: the policy, the verdicts and the files held.
type scanner struct {
	opts    Scanning
	store   *store.Store
	metrics *scanMetrics
	now     func() time.Time // time.Now; tests replace it
	// firstBackoff is the first wait of a held file (1 s, doubling to 30 s); tests
	// replace it.
	firstBackoff time.Duration

	mu      sync.Mutex
	held    map[string]heldFile // guarded by mu; by SHA-256, the files waiting for the scanner
	lastErr string              // guarded by mu; the last failure to reach the scanner
	up      bool                // guarded by mu; the last scan or ping reached it
	version string              // guarded by mu; the scanner's last known version
	back    chan struct{}       // guarded by mu; closed (and replaced) when the scanner answers again
}

func newScanner(opts Scanning, st *store.Store, m *scanMetrics) *scanner {
	opts.defaults()
	return &scanner{opts: opts, store: st, metrics: m, now: time.Now, firstBackoff: time.Second, held: map[string]heldFile{}, up: true, back: make(chan struct{})}
}

// ScanFile checks a file before it crosses over. module names the caller in metrics.
func (s *scanner) scanFile(ctx context.Context, module string, dir Direction, name string, data []byte) error {
	if s == nil || (dir == Outbound && !s.opts.Outbound) {
		return nil
	}
	log := zerolog.Ctx(ctx)
	if int64(len(data)) > s.opts.MaxBytes {
		s.metrics.count(module, dir, "too_large")
		if s.opts.FailOpen {
			log.Warn().Str("direction", string(dir)).Int("size", len(data)).Msg("File too large to scan; passed unscanned (scanning.fail_open)")
			return nil
		}
		return &unscannedError{cause: ErrScanTooLarge,
			user: fmt.Sprintf("the file %q is larger than the virus scanner's limit of %d bytes", name, s.opts.MaxBytes)}
	}
	sum := sha256.Sum256(data)
	key := hex.EncodeToString(sum[:])
	if v, err := s.store.ScanVerdictOf(ctx, key, s.verdictNotBefore()); err == nil {
		s.metrics.count(module, dir, "known")
		return s.verdict(name, v)
	} else if !errors.Is(err, store.ErrNotFound) {
		return err
	}
	backoff := s.firstBackoff
	for {
		back := s.backAgain() // taken before the try: a return during it wakes the wait
		start := s.now()
		sig, err := s.scanOnce(ctx, data)
		if err == nil {
			s.metrics.latency.WithLabelValues(string(dir)).Observe(time.Since(start).Seconds())
			s.metrics.bytes.WithLabelValues(string(dir)).Add(float64(len(data)))
			s.release(key)
			v := store.ScanVerdict{Infected: sig != "", Signature: sig, ScannedAt: s.now()}
			if err := s.store.PutScanVerdict(context.WithoutCancel(ctx), key, v); err != nil {
				log.Warn().Err(err).Msg("Failed to record a scan verdict")
			}
			if v.Infected {
				s.metrics.count(module, dir, "infected")
				log.Warn().Str("direction", string(dir)).Str("signature", sig).Str("sha256", key).Msg("Malware found; the file is refused")
			} else {
				s.metrics.count(module, dir, "clean")
			}
			return s.verdict(name, v)
		}
		if errors.Is(err, ErrScanTooLarge) {
			s.metrics.count(module, dir, "too_large")
			if s.opts.FailOpen {
				log.Warn().Err(err).Msg("File too large for the scanner; passed unscanned (scanning.fail_open)")
				return nil
			}
			return &unscannedError{cause: err,
				user: fmt.Sprintf("the file %q is larger than the virus scanner accepts", name)}
		}
		if ctx.Err() != nil {
			return fmt.Errorf("%w: %w", ErrScannerUnavailable, ctx.Err())
		}
		s.metrics.count(module, dir, "unavailable")
		if s.opts.FailOpen {
			log.Warn().Err(err).Msg("The virus scanner is unavailable; the file passed unscanned (scanning.fail_open)")
			return nil
		}
		held := s.now().Sub(s.hold(key))
		if held >= s.opts.Hold {
			s.release(key)
			log.Error().Err(err).Dur("held", held).Msg("The virus scanner stayed unavailable; the file is refused")
			return &unscannedError{cause: fmt.Errorf("%w: %w", ErrScannerUnavailable, err),
				user: fmt.Sprintf("the file %q could not be checked for malware: the virus scanner was unreachable for %s", name, s.opts.Hold)}
		}
		wait := min(backoff, s.opts.Hold-held) // the last try comes when the hold ends
		log.Warn().Err(err).Dur("retry_in", wait).Msg("The virus scanner is unavailable; the file is held")
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w: %w", ErrScannerUnavailable, ctx.Err())
		case <-time.After(wait):
		case <-back:
		}
		backoff = min(2*backoff, 30*time.Second)
	}
}

// scanOnce makes one scan within the scan timeout and notes whether the scanner answered.
func (s *scanner) scanOnce(ctx context.Context, data []byte) (string, error) {
	sctx, cancel := context.WithTimeout(ctx, s.opts.Timeout)
	defer cancel()
	sig, err := s.opts.Scanner.Scan(sctx, bytes.NewReader(data))
	s.noteReached(err)
	return sig, err
}

// noteReached records whether the scanner answered (err is nil or not about reaching it).
func (s *scanner) noteReached(err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case err == nil || errors.Is(err, ErrScanTooLarge):
		if !s.up { // back: wake the held files
			close(s.back)
			s.back = make(chan struct{})
		}
		s.up, s.lastErr = true, ""
	case errors.Is(err, context.Canceled):
	default:
		s.up, s.lastErr = false, err.Error()
	}
	s.metrics.setUp(s.up)
}

// backAgain is closed when the scanner next answers after failing.
func (s *scanner) backAgain() <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.back
}

// verdict turns a verdict into ScanFile's answer.
func (s *scanner) verdict(name string, v store.ScanVerdict) error {
	if v.Infected {
		return &InfectedError{Name: name, Signature: v.Signature}
	}
	return nil
}

// verdictNotBefore is the oldest clean verdict still trusted. Infected verdicts are kept
// for good: verdict answers them whatever their age, but the query's bound applies to
// both, so an old infected file is scanned again (and found again).
func (s *scanner) verdictNotBefore() time.Time { return s.now().Add(-s.opts.VerdictTTL) }

// heldFile is a file waiting for the scanner: since when, and when it was last asked
// about.
type heldFile struct{ since, last time.Time }

// stale is how long after it was last asked about a held file no longer counts: its
// caller gave up (a link request that ended, a message failed for another reason). A
// caller that is still waiting asks again within one scan's timeout and the backoff's cap
// (30 s).
func (s *scanner) stale() time.Duration { return s.opts.Timeout + time.Minute }

// hold records that a file waits and returns since when. A file asked about again after
// it went stale starts a new hold.
func (s *scanner) hold(key string) time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	h, ok := s.held[key]
	if !ok || now.Sub(h.last) > s.stale() {
		h.since = now
	}
	h.last = now
	s.held[key] = h
	s.pruneHeld(now)
	return h.since
}

// release forgets a held file.
func (s *scanner) release(key string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.held, key)
	s.pruneHeld(s.now())
}

// pruneHeld drops the stale held files and sets the gauge.
// s.mu is held.
func (s *scanner) pruneHeld(now time.Time) {
	for k, h := range s.held {
		if now.Sub(h.last) > s.stale() {
			delete(s.held, k)
		}
	}
	s.metrics.held.Set(float64(len(s.held)))
}

// state is the scanner's line in readiness and status: "off", "ok (version)" or
// "unreachable", with the files it holds; errText is the last failure to reach it (for
// admins: it may name hosts).
func (s *scanner) state() (state, errText string) {
	if s == nil {
		return "off", ""
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.pruneHeld(s.now())
	held := ""
	if n := len(s.held); n > 0 {
		held = fmt.Sprintf("; %d file(s) held", n)
	}
	switch {
	case !s.up:
		return "unreachable" + held, s.lastErr
	case s.version != "":
		return "ok (" + s.version + ")" + held, ""
	}
	return "ok" + held, ""
}

// watch pings the scanner every interval (every scanDownInterval while it is
// unreachable) until ctx ends, keeping state and the switchboard_scanner_up gauge current
// when no files flow, and waking held files as soon as it answers again.
func (s *scanner) watch(ctx context.Context, interval time.Duration) {
	for {
		pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		err := s.opts.Scanner.Ping(pctx)
		var version string
		if err == nil {
			version, _ = s.opts.Scanner.Version(pctx)
		}
		cancel()
		if ctx.Err() != nil {
			return
		}
		s.noteReached(err)
		if version != "" {
			s.mu.Lock()
			s.version = version
			s.mu.Unlock()
		}
		wait := interval
		if err != nil {
			wait = scanDownInterval
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
	}
}

// scanMetrics are the scanner's Prometheus metrics.
type scanMetrics struct {
	scans   *prometheus.CounterVec   // module, direction, verdict: clean, infected, known, unavailable, too_large
	latency *prometheus.HistogramVec // direction
	bytes   *prometheus.CounterVec   // direction
	up      prometheus.Gauge
	held    prometheus.Gauge
}

func newScanMetrics(reg prometheus.Registerer) *scanMetrics {
	m := &scanMetrics{
		scans: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "switchboard_scans_total",
			Help: "Files checked by the virus scanner by verdict (clean, infected, known: a recorded verdict, unavailable: the scanner could not be reached, too_large).",
		}, []string{"module", "direction", "verdict"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "switchboard_scan_seconds", Help: "Time the virus scanner takes to check one file.",
			Buckets: prometheus.ExponentialBuckets(0.001, 4, 9),
		}, []string{"direction"}),
		bytes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "switchboard_scanned_bytes_total", Help: "Bytes checked by the virus scanner.",
		}, []string{"direction"}),
		up: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "switchboard_scanner_up", Help: "1 when the virus scanner answered the last scan or ping, else 0.",
		}),
		held: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "switchboard_scan_held_files", Help: "Files waiting for an unreachable virus scanner (fail closed).",
		}),
	}
	m.up.Set(1)
	reg.MustRegister(m.scans, m.latency, m.bytes, m.up, m.held)
	return m
}

func (m *scanMetrics) count(module string, dir Direction, verdict string) {
	m.scans.WithLabelValues(module, string(dir), verdict).Inc()
}

func (m *scanMetrics) setUp(up bool) {
	if up {
		m.up.Set(1)
	} else {
		m.up.Set(0)
	}
}
