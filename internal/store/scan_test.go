package store_test

import (
	"errors"
	"testing"
	"time"

	"github.com/switchboard-matrix/switchboard/internal/store"
	"github.com/switchboard-matrix/switchboard/internal/store/storetest"
)

func TestScanVerdict(t *testing.T) {
	storetest.Dialects(t, func(t *testing.T, s *store.Store) {
		ctx := t.Context()
		now := time.Now().Truncate(time.Millisecond)
		const clean, bad = "aa", "bb"
		if _, err := s.ScanVerdictOf(ctx, clean, time.Time{}); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("unknown file: %v, want ErrNotFound", err)
		}
		if err := s.PutScanVerdict(ctx, clean, store.ScanVerdict{ScannedAt: now.Add(-2 * time.Hour)}); err != nil {
			t.Fatal(err)
		}
		if err := s.PutScanVerdict(ctx, bad, store.ScanVerdict{Infected: true, Signature: "Eicar", ScannedAt: now}); err != nil {
			t.Fatal(err)
		}
		tests := []struct {
			name      string
			sha       string
			notBefore time.Time
			want      store.ScanVerdict
			wantErr   error
		}{
			{"clean", clean, now.Add(-3 * time.Hour), store.ScanVerdict{ScannedAt: now.Add(-2 * time.Hour)}, nil},
			{"clean but too old", clean, now.Add(-time.Hour), store.ScanVerdict{}, store.ErrNotFound},
			{"infected", bad, now.Add(-time.Hour), store.ScanVerdict{Infected: true, Signature: "Eicar", ScannedAt: now}, nil},
		}
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				got, err := s.ScanVerdictOf(ctx, tc.sha, tc.notBefore)
				if !errors.Is(err, tc.wantErr) || got.Infected != tc.want.Infected || got.Signature != tc.want.Signature || !got.ScannedAt.Equal(tc.want.ScannedAt) {
					t.Errorf("= %+v, %v; want %+v, %v", got, err, tc.want, tc.wantErr)
				}
			})
		}
		// A new verdict replaces the old one.
		if err := s.PutScanVerdict(ctx, clean, store.ScanVerdict{ScannedAt: now}); err != nil {
			t.Fatal(err)
		}
		if got, err := s.ScanVerdictOf(ctx, clean, now.Add(-time.Minute)); err != nil || !got.ScannedAt.Equal(now) {
			t.Errorf("after a rescan: %+v, %v", got, err)
		}
		// Pruned with the journal.
		if _, err := s.Prune(ctx, now.Add(time.Millisecond)); err != nil {
			t.Fatal(err)
		}
		if _, err := s.ScanVerdictOf(ctx, bad, time.Time{}); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("after pruning: %v, want ErrNotFound", err)
		}
	})
}
