package dovecot

import (
	"context"
	"fmt"
	"os/exec"
	"path/filepath"
	"strconv"
)

// SetUIDValidity gives a user's mailbox a new UIDVALIDITY (doveadm mailbox update), as a
// server does after its index was rebuilt: clients must then forget the UIDs they knew.
func (s *Server) SetUIDValidity(ctx context.Context, address, mailbox string, validity uint32) error {
	doveadm := filepath.Join(filepath.Dir(s.dovecot), "..", "bin", "doveadm")
	if p, err := exec.LookPath("doveadm"); err == nil {
		doveadm = p
	}
	out, err := exec.CommandContext(ctx, doveadm, "-c", filepath.Join(s.Dir, configFile),
		"mailbox", "update", "-u", address, "--uid-validity", strconv.FormatUint(uint64(validity), 10), mailbox).CombinedOutput()
	if err != nil {
		return fmt.Errorf("dovecot: set the UIDVALIDITY of %s's %s: %v: %s", address, mailbox, err, out)
	}
	return nil
}
