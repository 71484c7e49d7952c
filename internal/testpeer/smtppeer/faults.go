package smtppeer

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// Control files in Dir/control, read by smtppeer.py at each RCPT TO and DATA.
const (
	failPrefix = "fail-"       // one file per DATA to fail with 451, removed when used
	rejectFile = "reject-rcpt" // a glob of recipients to refuse with 550
	holdFile   = "hold-quit"   // while it exists, QUIT is not answered
)

// HoldQuit makes the server leave every QUIT unanswered while on is true: the mail of
// the session is accepted (its DATA answered with 250 and listed by Received) and the
// client waits, a point at which a crash test kills the client. HoldQuit(false) answers
// the held QUITs. It takes effect before it returns and survives a restart.
func (s *Server) HoldQuit(on bool) error {
	s.faultMu.Lock()
	defer s.faultMu.Unlock()
	path := filepath.Join(s.Dir, controlDir, holdFile)
	if !on {
		if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("smtppeer: failed to release QUIT: %w", err)
		}
		return nil
	}
	if err := os.WriteFile(path, nil, 0o644); err != nil {
		return fmt.Errorf("smtppeer: failed to hold QUIT: %w", err)
	}
	return nil
}

// FailNext makes the next n messages fail at the end of DATA with "451 4.3.0" (a
// temporary failure: the client should retry), on top of failures still pending; n <= 0
// cancels all pending ones. It takes effect before it returns and survives a restart.
func (s *Server) FailNext(n int) error {
	s.faultMu.Lock()
	defer s.faultMu.Unlock()
	dir := filepath.Join(s.Dir, controlDir)
	if n <= 0 {
		entries, err := os.ReadDir(dir)
		if err != nil {
			return fmt.Errorf("smtppeer: failed to read control dir: %w", err)
		}
		var errs []error
		for _, e := range entries {
			if strings.HasPrefix(e.Name(), failPrefix) {
				if err := os.Remove(filepath.Join(dir, e.Name())); err != nil && !errors.Is(err, os.ErrNotExist) {
					errs = append(errs, err)
				}
			}
		}
		if err := errors.Join(errs...); err != nil {
			return fmt.Errorf("smtppeer: failed to cancel failures: %w", err)
		}
		return nil
	}
	for range n {
		s.faultSeq++
		// Zero-padded, so that the tokens sort in the order they were made, also after
		// those of an earlier server in the same Dir.
		name := fmt.Sprintf("%s%019d-%09d", failPrefix, time.Now().UnixNano(), s.faultSeq)
		if err := os.WriteFile(filepath.Join(dir, name), nil, 0o644); err != nil {
			return fmt.Errorf("smtppeer: failed to inject a failure: %w", err)
		}
	}
	return nil
}

// RejectRecipients makes RCPT TO fail with "550 5.1.1" for every recipient address that
// matches pattern, a case-insensitive shell glob (Python fnmatch: *, ?, [seq], [!seq]),
// such as "*@blocked.test". An empty pattern rejects none. It replaces the previous
// pattern, takes effect before it returns and survives a restart.
func (s *Server) RejectRecipients(pattern string) error {
	s.faultMu.Lock()
	defer s.faultMu.Unlock()
	path := filepath.Join(s.Dir, controlDir, rejectFile)
	if pattern == "" {
		if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("smtppeer: failed to clear the recipient pattern: %w", err)
		}
		return nil
	}
	if strings.ContainsAny(pattern, "\r\n") {
		return fmt.Errorf("smtppeer: recipient pattern %q has a line break", pattern)
	}
	// Written aside and renamed, so that the server never reads half a pattern.
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(pattern), 0o644); err != nil {
		return fmt.Errorf("smtppeer: failed to set the recipient pattern: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("smtppeer: failed to set the recipient pattern: %w", err)
	}
	return nil
}
