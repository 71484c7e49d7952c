package dovecot

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// ErrInvalidAddress is returned by AddUser for an address that cannot be a Dovecot user.
var ErrInvalidAddress = errors.New("dovecot: invalid user address")

// AddUser adds the user address (such as alice@example.test) with password, or sets the
// password of an existing user. The mailbox is created on first use. It works while
// Dovecot runs and returns once Dovecot will see the change, up to a second later:
// Dovecot re-reads its passwd-file at most once a second.
func (s *Server) AddUser(ctx context.Context, address, password string) error {
	if !validAddress(address) {
		return fmt.Errorf("%w: %q", ErrInvalidAddress, address)
	}
	s.usersMu.Lock()
	defer s.usersMu.Unlock()
	err := s.writePasswd(func(users map[string]string) {
		// {PLAIN.b64} keeps any password, ':' and newlines included, in one field.
		users[address] = "{PLAIN.b64}" + base64.StdEncoding.EncodeToString([]byte(password))
	})
	if err != nil {
		return err
	}
	// Dovecot may have read the file earlier in this second and keeps that until the
	// next one; from then on, the changed mtime makes it read the file again.
	ready := time.Now().Truncate(time.Second).Add(time.Second + 20*time.Millisecond)
	t := time.NewTimer(time.Until(ready))
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("dovecot: user %s added, but not waited for: %w", address, ctx.Err())
	}
}

// validAddress reports whether address can be a passwd-file user and a home directory
// name.
func validAddress(address string) bool {
	local, domain, ok := strings.Cut(address, "@")
	if !ok || local == "" || domain == "" || address == "." || address == ".." {
		return false
	}
	for _, r := range address {
		if r <= ' ' || r == 0x7f || strings.ContainsRune(":/\\%\"", r) {
			return false
		}
	}
	return true
}

// writePasswd rewrites the passwd-file, applying update (may be nil) to its users
// (address → password field). The file is replaced atomically, readable by Dovecot's
// auth process only.
func (s *Server) writePasswd(update func(users map[string]string)) error {
	path := filepath.Join(s.Dir, passwdFile)
	old, err := os.ReadFile(path)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("dovecot: failed to read passwd-file: %w", err)
	}
	users := map[string]string{}
	var order []string
	sc := bufio.NewScanner(bytes.NewReader(old))
	for sc.Scan() {
		name, pass, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		if _, dup := users[name]; !dup {
			order = append(order, name)
		}
		users[name] = pass
	}
	if update != nil {
		update(users)
	}
	var b strings.Builder
	for _, name := range order {
		fmt.Fprintf(&b, "%s:%s\n", name, users[name])
		delete(users, name)
	}
	for name, pass := range users { // new ones; AddUser adds one at a time
		fmt.Fprintf(&b, "%s:%s\n", name, pass)
	}
	tmp, err := os.CreateTemp(s.Dir, passwdFile+".tmp-")
	if err != nil {
		return fmt.Errorf("dovecot: failed to write passwd-file: %w", err)
	}
	defer os.Remove(tmp.Name()) // fails harmlessly after the rename
	_, err = tmp.WriteString(b.String())
	err = errors.Join(err, tmp.Close(), s.protectPasswd(tmp.Name()))
	if err == nil {
		err = os.Rename(tmp.Name(), path)
	}
	if err != nil {
		return fmt.Errorf("dovecot: failed to write passwd-file: %w", err)
	}
	return nil
}

// protectPasswd makes path readable by root and the dovecot group only, or by everyone
// when there is no such group.
func (s *Server) protectPasswd(path string) error {
	g, err := user.LookupGroup("dovecot")
	if err != nil {
		return os.Chmod(path, 0o644)
	}
	gid, err := strconv.Atoi(g.Gid)
	if err != nil {
		return os.Chmod(path, 0o644)
	}
	return errors.Join(os.Chown(path, 0, gid), os.Chmod(path, 0o640))
}
