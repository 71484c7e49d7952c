package store

// MarkRecentStale makes the next PostgreSQL commit load the window from the database, as
// after a commit whose outcome is unknown.
func MarkRecentStale(s *Store) {
	s.recent.mu.Lock()
	s.recent.stale = true
	s.recent.mu.Unlock()
}
