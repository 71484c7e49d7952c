package dovecot

import (
	"fmt"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
)

// maxBaseDir is the longest socket directory Dovecot can use: its longest socket path,
// token-login/imap-urlauth, must fit a Unix socket address (107 bytes and a NUL).
const maxBaseDir = 107 - len("/token-login/imap-urlauth") - 4

// mailOwner is the system user and group that owns the mail homes.
const mailOwner, mailGroup = "nobody", "nogroup"

// prepareDirs checks that Dir can hold Dovecot's files and creates the passwd-file, the
// mail homes and the socket and state directories.
func (s *Server) prepareDirs() error {
	if strings.ContainsAny(s.Dir, " \t\n\"'%$#{}\\") {
		return fmt.Errorf("dovecot: dir %q has characters that a Dovecot config cannot hold", s.Dir)
	}
	uid, gid, err := lookupIDs(mailOwner, mailGroup)
	if err != nil {
		return err
	}
	// Mail processes run as nobody and must reach Dir/home.
	fi, err := os.Stat(s.Dir)
	if err != nil {
		return fmt.Errorf("dovecot: %w", err)
	}
	if err := os.Chmod(s.Dir, fi.Mode().Perm()|0o011); err != nil {
		return fmt.Errorf("dovecot: failed to make dir searchable: %w", err)
	}
	for dir := filepath.Dir(s.Dir); ; dir = filepath.Dir(dir) {
		fi, err := os.Stat(dir)
		if err != nil {
			return fmt.Errorf("dovecot: %w", err)
		}
		if fi.Mode().Perm()&0o001 == 0 {
			return fmt.Errorf("dovecot: %s (a parent of dir %s) is not searchable by %s, who owns the mail; use another dir", dir, s.Dir, mailOwner)
		}
		if dir == filepath.Dir(dir) {
			break
		}
	}
	home := filepath.Join(s.Dir, homeDir)
	if err := os.MkdirAll(home, 0o755); err != nil {
		return fmt.Errorf("dovecot: failed to create mail homes: %w", err)
	}
	if err := os.Chown(home, uid, gid); err != nil {
		return fmt.Errorf("dovecot: failed to give mail homes to %s: %w", mailOwner, err)
	}
	if err := os.MkdirAll(filepath.Join(s.Dir, stateDir), 0o755); err != nil {
		return fmt.Errorf("dovecot: failed to create state dir: %w", err)
	}
	s.baseDir = filepath.Join(s.Dir, runDir)
	if len(s.baseDir) > maxBaseDir {
		if s.baseDir, err = os.MkdirTemp("", "dovecot-run-"); err != nil {
			return fmt.Errorf("dovecot: failed to create socket dir: %w", err)
		}
		s.ownBase = true
	} else if err := os.MkdirAll(s.baseDir, 0o755); err != nil {
		return fmt.Errorf("dovecot: failed to create socket dir: %w", err)
	}
	if err := os.Chmod(s.baseDir, 0o755); err != nil {
		return fmt.Errorf("dovecot: failed to set up socket dir: %w", err)
	}
	return s.writePasswd(nil)
}

// lookupIDs returns the numeric IDs of a system user and group.
func lookupIDs(userName, groupName string) (uid, gid int, err error) {
	u, err := user.Lookup(userName)
	if err != nil {
		return 0, 0, fmt.Errorf("dovecot: no system user %s: %w", userName, err)
	}
	g, err := user.LookupGroup(groupName)
	if err != nil {
		return 0, 0, fmt.Errorf("dovecot: no system group %s: %w", groupName, err)
	}
	if uid, err = strconv.Atoi(u.Uid); err != nil {
		return 0, 0, fmt.Errorf("dovecot: user %s: %w", userName, err)
	}
	if gid, err = strconv.Atoi(g.Gid); err != nil {
		return 0, 0, fmt.Errorf("dovecot: group %s: %w", groupName, err)
	}
	return uid, gid, nil
}

// writeConfig writes dovecot.conf for s into s.Dir.
func (s *Server) writeConfig() error {
	home := filepath.Join(s.Dir, homeDir)
	conf := fmt.Sprintf(`# Written by the Switchboard test harness (internal/testpeer/dovecot).
instance_name = switchboard-test
base_dir = %[1]s
state_dir = %[2]s
log_path = /dev/stderr
protocols = imap lmtp
listen = %[3]s
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login
auth_failure_delay = 0
auth_verbose = yes
mail_location = maildir:~/Maildir
passdb {
  driver = passwd-file
  args = scheme=PLAIN username_format=%%u %[4]s
}
userdb {
  driver = static
  args = uid=%[5]s gid=%[6]s home=%[7]s/%%u
}
protocol imap {
  mail_max_userip_connections = 100
}
service imap-login {
  inet_listener imap {
    address = %[3]s
    port = %[8]d
  }
  inet_listener imaps {
    port = 0
  }
}
service lmtp {
  inet_listener lmtp {
    address = %[3]s
    port = %[9]d
  }
}
`, s.baseDir, filepath.Join(s.Dir, stateDir), loopback, filepath.Join(s.Dir, passwdFile),
		mailOwner, mailGroup, home, s.imapPort, s.lmtpPort)
	if err := os.WriteFile(filepath.Join(s.Dir, configFile), []byte(conf), 0o644); err != nil {
		return fmt.Errorf("dovecot: failed to write config: %w", err)
	}
	return nil
}
