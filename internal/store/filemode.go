package store

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"

	"github.com/rs/zerolog"
)

// sqliteFileMode is the mode of the SQLite database and its companions: the journal, the
// outbox and the write-ahead log hold message bodies, so only the owner may read them.
const sqliteFileMode fs.FileMode = 0o600

// sqliteCompanions are the files SQLite (WAL mode) and LockInstance keep beside the
// database. SQLite creates "-wal" and "-shm" with the database file's mode.
var sqliteCompanions = []string{"-wal", "-shm", "-journal", ".lock"}

// protectSQLiteFiles creates the database file with mode 0600 when it does not exist yet
// (SQLite itself would create it 0644 minus the umask, and its "-wal" and "-shm" files
// copy that mode), and takes group and other permissions away from an existing database
// and its companions, with a warning.
func protectSQLiteFiles(ctx context.Context, path string) error {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, sqliteFileMode)
	switch {
	case err == nil:
		if err := f.Close(); err != nil {
			return fmt.Errorf("store: create sqlite database %s: %w", path, err)
		}
	case !errors.Is(err, fs.ErrExist):
		return fmt.Errorf("store: create sqlite database %s: %w", path, err)
	}
	for _, p := range append([]string{path}, companionPaths(path)...) {
		info, err := os.Stat(p)
		switch {
		case errors.Is(err, fs.ErrNotExist):
			continue
		case err != nil:
			return fmt.Errorf("store: check the mode of %s: %w", p, err)
		case !info.Mode().IsRegular() || info.Mode().Perm()&0o077 == 0:
			continue
		}
		if err := os.Chmod(p, info.Mode().Perm()&^0o077); err != nil {
			return fmt.Errorf("store: %s is readable by other users (mode %v) and could not be restricted: %w", p, info.Mode().Perm(), err)
		}
		zerolog.Ctx(ctx).Warn().Str("file", p).Stringer("was", info.Mode().Perm()).
			Msg("The database file was readable by other users; restricted it to its owner (it holds message bodies)")
	}
	return nil
}

func companionPaths(path string) []string {
	out := make([]string, 0, len(sqliteCompanions))
	for _, suffix := range sqliteCompanions {
		out = append(out, path+suffix)
	}
	return out
}
