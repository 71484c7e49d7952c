package clamdscanner_test

import (
	"bytes"
	"errors"
	"testing"

	"github.com/switchboard-matrix/switchboard/appservice"
	clamdc "github.com/switchboard-matrix/switchboard/internal/clamd"
	"github.com/switchboard-matrix/switchboard/internal/clamdscanner"
	"github.com/switchboard-matrix/switchboard/internal/testpeer/clamd"
)

// The adapter against the real clamd: what it found, clean files, the size limit and an
// unreachable clamd each become what the core expects.
func TestScanner(t *testing.T) {
	srv := clamd.StartTest(t, clamd.Options{StreamMaxLength: 1 << 20})
	c := clamdc.New("tcp", srv.TCPAddr())
	s := clamdscanner.New(c)
	ctx := t.Context()
	tests := []struct {
		name    string
		data    []byte
		wantSig string
		wantErr error
	}{
		{"eicar", clamd.EICAR(), clamd.Signature, nil},
		{"clean", []byte("hello"), "", nil},
		{"empty", nil, "", nil},
		{"over clamd's limit", bytes.Repeat([]byte{'x'}, 1<<20+1), "", appservice.ErrScanTooLarge},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			sig, err := s.Scan(ctx, bytes.NewReader(tc.data))
			if sig != tc.wantSig || !errors.Is(err, tc.wantErr) {
				t.Errorf("Scan = %q, %v; want %q, %v", sig, err, tc.wantSig, tc.wantErr)
			}
		})
	}
	if err := s.Ping(ctx); err != nil {
		t.Errorf("Ping: %v", err)
	}
	if v, err := s.Version(ctx); err != nil || v == "" {
		t.Errorf("Version = %q, %v", v, err)
	}
	if err := srv.Halt(); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Scan(ctx, bytes.NewReader([]byte("x"))); !errors.Is(err, appservice.ErrScannerUnavailable) {
		t.Errorf("Scan with clamd down = %v, want ErrScannerUnavailable", err)
	}
	if err := s.Ping(ctx); !errors.Is(err, appservice.ErrScannerUnavailable) {
		t.Errorf("Ping with clamd down = %v, want ErrScannerUnavailable", err)
	}
}
