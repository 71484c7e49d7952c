package store

import (
	"context"
	"fmt"
	"time"
)

// ScanVerdict is what the virus scanner said of a file, recorded by the SHA-256 of its
// bytes so that a file handled again after a crash or a resend is not scanned again.
type ScanVerdict struct {
	Infected  bool
	Signature string // the scanner's name of what it found; empty when clean
	ScannedAt time.Time
}

// ScanVerdictOf returns the verdict recorded for the file with that SHA-256 (lower-case
// hex) at or after notBefore, or ErrNotFound.
func (s *Store) ScanVerdictOf(ctx context.Context, sha256 string, notBefore time.Time) (ScanVerdict, error) {
	var v ScanVerdict
	var infected int
	var at int64
	err := s.db.QueryRowContext(ctx,
		`SELECT infected, signature, scanned_at FROM scan_verdict WHERE sha256 = $1 AND scanned_at >= $2`,
		sha256, notBefore.UnixMilli()).Scan(&infected, &v.Signature, &at)
	if err != nil {
		return ScanVerdict{}, fmt.Errorf("store: scan verdict: %w", notFound(err))
	}
	v.Infected = infected == 1
	v.ScannedAt = time.UnixMilli(at)
	return v, nil
}

// PutScanVerdict records a verdict, replacing an older one of the same file.
func (s *Store) PutScanVerdict(ctx context.Context, sha256 string, v ScanVerdict) error {
	infected := 0
	if v.Infected {
		infected = 1
	}
	_, err := s.db.ExecContext(ctx,
		`INSERT INTO scan_verdict (sha256, infected, signature, scanned_at) VALUES ($1, $2, $3, $4)
		 ON CONFLICT (sha256) DO UPDATE SET infected = excluded.infected, signature = excluded.signature,
		 scanned_at = excluded.scanned_at`,
		sha256, infected, v.Signature, v.ScannedAt.UnixMilli())
	if err != nil {
		return fmt.Errorf("store: record scan verdict: %w", err)
	}
	return nil
}
