package store

import (
	"context"
	"database/sql"
)

// MarkRecentStale makes the next PostgreSQL commit load the window from the database, as
// after a commit whose outcome is unknown.
func MarkRecentStale(s *Store) {
	s.recent.mu.Lock()
	s.recent.stale = true
	s.recent.mu.Unlock()
}

// OpenAtVersion opens the database at uri migrated to version only, without the inbox
// window (which needs the latest schema), for tests of later migrations.
func OpenAtVersion(ctx context.Context, uri string, version int) (*Store, error) {
	dialect, target, err := parseURI(uri)
	if err != nil {
		return nil, err
	}
	driver := "pgx"
	if dialect == SQLite {
		driver, target = "sqlite", target+"?"+sqliteParams
	}
	db, err := sql.Open(driver, target)
	if err != nil {
		return nil, err
	}
	s := &Store{db: db, dialect: dialect, recent: newRecentIDs()}
	saved := migrations
	migrations = migrations[:version]
	defer func() { migrations = saved }()
	if err := s.migrate(ctx); err != nil {
		db.Close()
		return nil, err
	}
	return s, nil
}

// SetRecentWindow sets the size of the window of event IDs (before the first commit).
func SetRecentWindow(s *Store, n int) {
	s.recent.mu.Lock()
	s.recent.size = n
	s.recent.mu.Unlock()
}

// RecentLen is the number of event IDs in the window.
func RecentLen(s *Store) int {
	s.recent.mu.Lock()
	defer s.recent.mu.Unlock()
	return len(s.recent.seqs)
}

// CollideRecent makes the window take event ID b for a, as if their hashes were equal.
func CollideRecent(s *Store, a, b string) {
	r := s.recent
	r.mu.Lock()
	r.seqs[r.hash(b)] = r.seqs[r.hash(a)]
	r.mu.Unlock()
}
