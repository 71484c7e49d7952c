package clamd

import (
	"crypto/md5"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/switchboard-matrix/switchboard/internal/testpeer/peerproc"
)

// Files and directories inside Server.Dir.
const (
	configFile = "clamd.conf"
	outFile    = "clamd.out" // stdout and stderr
	logFile    = "clamd.log" // clamd's LogFile
	dbDir      = "db"
	dbFile     = "switchboard-test.hdb"
	tmpDir     = "tmp" // clamd's TemporaryDirectory, where it spools streams
	socketFile = "clamd.sock"
)

// maxSocketPath is the longest Unix socket path (108 bytes with the NUL), with a margin.
const maxSocketPath = 100

// SignatureName is the name of the test database's one signature, and Signature the name
// clamd reports for it: ".UNOFFICIAL" is appended to signatures of databases that are
// not ClamAV's own.
const (
	SignatureName = "Switchboard.Test.EICAR"
	Signature     = SignatureName + ".UNOFFICIAL"
)

// The two halves of the EICAR test file. They are variables, not constants, so that
// neither this source file nor a compiled test holds the whole file.
var eicarHead, eicarTail = `X5O!P%@AP[4\PZX54(P^)7CC)7}$EICAR`, `-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*`

// EICAR returns the 68-byte EICAR anti-virus test file, which the test database detects
// as Signature. It is put together at run time from two halves so that scanners do not
// flag the repository or a test binary.
func EICAR() []byte {
	return append([]byte(eicarHead), eicarTail...)
}

// hdbLine is the test database's entry for EICAR, as "sigtool --md5" writes it: the
// file's MD5, its size and the signature's name.
func hdbLine() string {
	sum := md5.Sum(EICAR())
	return fmt.Sprintf("%s:%d:%s\n", hex.EncodeToString(sum[:]), len(EICAR()), SignatureName)
}

// prepare checks that Dir can hold clamd's files and creates the database, the
// temporary directory and, when Dir is too long for a socket path, a short socket
// directory.
func (s *Server) prepare() error {
	if strings.ContainsAny(s.Dir, " \t\r\n#\"'") {
		return fmt.Errorf("clamd: dir %q has characters that a clamd config cannot hold", s.Dir)
	}
	for _, dir := range []string{dbDir, tmpDir} {
		if err := os.MkdirAll(filepath.Join(s.Dir, dir), 0o755); err != nil {
			return fmt.Errorf("clamd: failed to create %s: %w", dir, err)
		}
	}
	if err := os.WriteFile(filepath.Join(s.Dir, dbDir, dbFile), []byte(hdbLine()), 0o644); err != nil {
		return fmt.Errorf("clamd: failed to write the signature database: %w", err)
	}
	s.socketPath = filepath.Join(s.Dir, socketFile)
	if len(s.socketPath) > maxSocketPath {
		dir, err := os.MkdirTemp("", "clamd-")
		if err != nil {
			return fmt.Errorf("clamd: failed to create socket dir: %w", err)
		}
		s.sockDir, s.socketPath = dir, filepath.Join(dir, socketFile)
	}
	return nil
}

// writeConfig writes clamd.conf for s into s.Dir.
func (s *Server) writeConfig() error {
	conf := fmt.Sprintf(`# Written by the Switchboard test harness (internal/testpeer/clamd).
# No User line: clamd runs as the user who starts it.
Foreground yes
DatabaseDirectory %[1]s
TemporaryDirectory %[2]s
TCPSocket %[3]d
TCPAddr %[4]s
LocalSocket %[5]s
FixStaleSocket yes
StreamMaxLength %[6]d
LogFile %[7]s
LogFileMaxSize 0
LogTime yes
LogVerbose no
LogClean no
`, filepath.Join(s.Dir, dbDir), filepath.Join(s.Dir, tmpDir), s.port, loopback, s.socketPath, s.streamMax, s.logPath())
	if err := os.WriteFile(filepath.Join(s.Dir, configFile), []byte(conf), 0o644); err != nil {
		return fmt.Errorf("clamd: failed to write config: %w", err)
	}
	return nil
}

// logPath is clamd's log file.
func (s *Server) logPath() string { return filepath.Join(s.Dir, logFile) }

// fileSize returns the size of the file at path, 0 if there is none.
func fileSize(path string) int64 {
	fi, err := os.Stat(path)
	if err != nil {
		return 0
	}
	return fi.Size()
}

// readFrom returns up to 64 KiB of the file at path from offset on, "" if it cannot.
func readFrom(path string, offset int64) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	b, _ := io.ReadAll(io.LimitReader(io.NewSectionReader(f, offset, 1<<62), 64<<10))
	return string(b)
}

// tailFile returns the last n lines of the file at path (of its last 64 KiB).
func tailFile(path string, n int) string {
	return peerproc.Tail([]byte(readFrom(path, max(0, fileSize(path)-64<<10))), n)
}
