package dovecot

import (
	"bytes"
	"cmp"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// Inbox returns the messages in the INBOX of address, oldest first, read from its maildir
// on disk: a quick check for tests that deliver by other means (clients speak IMAP). Line
// endings are CRLF, as IMAP gives them; Dovecot stores LF.
func (s *Server) Inbox(address string) ([][]byte, error) {
	if !validAddress(address) {
		return nil, fmt.Errorf("%w: %q", ErrInvalidAddress, address)
	}
	type file struct{ name, path string }
	var files []file
	for _, sub := range []string{"new", "cur"} {
		dir := filepath.Join(s.Dir, homeDir, address, "Maildir", sub)
		entries, err := os.ReadDir(dir)
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("dovecot: failed to read the INBOX of %s: %w", address, err)
		}
		for _, e := range entries {
			files = append(files, file{e.Name(), filepath.Join(dir, e.Name())})
		}
	}
	slices.SortFunc(files, func(a, b file) int {
		as, aus := maildirTime(a.name)
		bs, bus := maildirTime(b.name)
		if c := cmp.Compare(as, bs); c != 0 {
			return c
		}
		if c := cmp.Compare(aus, bus); c != 0 {
			return c
		}
		return strings.Compare(a.name, b.name)
	})
	msgs := make([][]byte, 0, len(files))
	for _, f := range files {
		b, err := os.ReadFile(f.path)
		if errors.Is(err, os.ErrNotExist) {
			continue // moved from new to cur meanwhile; rare in tests
		}
		if err != nil {
			return nil, fmt.Errorf("dovecot: failed to read the INBOX of %s: %w", address, err)
		}
		msgs = append(msgs, bytes.ReplaceAll(bytes.ReplaceAll(b, []byte("\r\n"), []byte("\n")), []byte("\n"), []byte("\r\n")))
	}
	return msgs, nil
}

// maildirTime is the delivery time in a name that Dovecot gave a maildir file,
// "<seconds>.M<microseconds>P<pid>.<host>…", or zeros.
func maildirTime(name string) (sec, usec int64) {
	secs, rest, _ := strings.Cut(name, ".")
	sec, _ = strconv.ParseInt(secs, 10, 64)
	if rest, ok := strings.CutPrefix(rest, "M"); ok {
		end := strings.IndexFunc(rest, func(r rune) bool { return r < '0' || r > '9' })
		if end < 0 {
			end = len(rest)
		}
		usec, _ = strconv.ParseInt(rest[:end], 10, 64)
	}
	return sec, usec
}
