package store_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/rs/zerolog"

	"github.com/switchboard-matrix/switchboard/internal/store"
)

// TestSQLiteFilesAreOwnerOnly: the database, its -wal and -shm files and the instance lock
// are created 0600 even under a permissive umask (SQLite alone creates 0644), and existing
// files with wider modes are narrowed with a warning. Not parallel: it sets the umask.
func TestSQLiteFilesAreOwnerOnly(t *testing.T) {
	old := syscall.Umask(0)
	defer syscall.Umask(old)
	tests := []struct {
		name     string
		existing os.FileMode // mode of a database and -wal file that exist before Open; 0 for none
		warn     bool
	}{
		{name: "new database"},
		{name: "existing world-readable database", existing: 0o644, warn: true},
		{name: "existing group-writable database", existing: 0o660, warn: true},
		{name: "existing owner-only database", existing: 0o600},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "switchboard.db")
			if tc.existing != 0 {
				seed, err := store.Open(t.Context(), path)
				if err != nil {
					t.Fatal(err)
				}
				seed.Close()
				for _, p := range []string{path, path + "-wal"} {
					if err := os.WriteFile(p, nil, 0o600); err != nil && !os.IsExist(err) {
						t.Fatal(err)
					}
					if err := os.Chmod(p, tc.existing); err != nil {
						t.Fatal(err)
					}
				}
			}
			var logs bytes.Buffer
			ctx := zerolog.New(&logs).WithContext(t.Context())
			s, err := store.Open(ctx, path)
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			release, err := s.LockInstance(ctx, 0)
			if err != nil {
				t.Fatal(err)
			}
			defer release()
			// Write through the WAL so that -wal and -shm exist.
			if err := s.PutKV(context.Background(), "k", "v"); err != nil {
				t.Fatal(err)
			}
			for _, p := range []string{path, path + "-wal", path + "-shm", path + ".lock"} {
				info, err := os.Stat(p)
				if err != nil {
					t.Fatalf("%s: %v", filepath.Base(p), err)
				}
				if got := info.Mode().Perm(); got != 0o600 {
					t.Errorf("%s has mode %v, want 0600", filepath.Base(p), got)
				}
			}
			if warned := strings.Contains(logs.String(), `"level":"warn"`); warned != tc.warn {
				t.Errorf("warned = %v, want %v; log:\n%s", warned, tc.warn, logs.String())
			}
		})
	}
}
