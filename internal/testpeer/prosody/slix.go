package prosody

import (
	"bufio"
	"bytes"
	"context"
	_ "embed" // slix_occupant.py
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// systemPython is Debian's interpreter, the one python3-slixmpp is installed for.
const systemPython = "/usr/bin/python3"

// slixLineTimeout bounds the wait for each of the occupant's protocol lines.
const slixLineTimeout = time.Minute

// slixScript is a MUC occupant written with slixmpp; see its docstring for the
// protocol (JOINED, LEFT on stdout) and the exit statuses.
//
//go:embed slix_occupant.py
var slixScript []byte

// SlixmppAvailable reports why the slixmpp occupant cannot run here (Debian's python3
// cannot import slixmpp), or nil if it can. Tests pass it to peerproc.RequireOrSkip.
func SlixmppAvailable() error {
	if err := exec.Command(systemPython, "-c", "import slixmpp").Run(); err != nil {
		return fmt.Errorf("prosody: %s cannot import slixmpp (install the Debian package python3-slixmpp): %w", systemPython, err)
	}
	return nil
}

// SlixOccupant is a slixmpp client in a MUC room of the Server, made by
// StartSlixOccupant. It leaves the room when Leave closes its stdin.
type SlixOccupant struct {
	cmd      *exec.Cmd
	stdin    io.WriteCloser
	lines    chan string   // the script's stdout lines; closed at its end
	readDone chan struct{} // closed when stdout reached its end
	stderr   *lockedBuffer // the script's stderr, for failure messages

	waitOnce sync.Once
	waitErr  error // the script's exit; set by waitOnce
}

// StartSlixOccupant runs the slixmpp occupant as user@Domain (an account Register made)
// in room@MUCDomain with nick and, when displayName is not empty, a XEP-0172 nick. It
// returns once the room has confirmed the join (the script printed JOINED) and fails t
// when it does not within a minute. The process is killed when ctx ends and stopped at
// the end of t. Call SlixmppAvailable first to skip where slixmpp is missing.
//
//	occ := srv.StartSlixOccupant(ctx, t, "carol", "pw", "conf1", "c1", "Carol C.")
//	occ.Leave(t) // returns once the room confirmed the leave
func (s *Server) StartSlixOccupant(ctx context.Context, t testing.TB, user, password, room, nick, displayName string) *SlixOccupant {
	t.Helper()
	script := filepath.Join(t.TempDir(), "slix_occupant.py")
	if err := os.WriteFile(script, slixScript, 0o600); err != nil {
		t.Fatal(err)
	}
	host, port, err := net.SplitHostPort(s.C2SAddr)
	if err != nil {
		t.Fatal(err)
	}
	args := []string{script, "--jid", user + "@" + s.Domain, "--password", password, "--host", host, "--port", port,
		"--room", room + "@" + s.MUCDomain, "--nick", nick}
	if displayName != "" {
		args = append(args, "--display-name", displayName)
	}
	cmd := exec.CommandContext(ctx, systemPython, args...)
	cmd.Env = append(os.Environ(), "PYTHONUNBUFFERED=1")
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	o := &SlixOccupant{cmd: cmd, stdin: stdin, lines: make(chan string, 16), readDone: make(chan struct{}), stderr: &lockedBuffer{}}
	cmd.Stderr = o.stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			o.lines <- strings.TrimSpace(sc.Text())
		}
		close(o.lines)
		close(o.readDone)
	}()
	t.Cleanup(func() { _ = stdin.Close(); _ = o.wait() })
	o.expect(t, "JOINED")
	return o
}

// Leave closes the occupant's stdin and returns once it printed LEFT (the room confirmed
// the leave); it fails t when that does not happen within a minute.
func (o *SlixOccupant) Leave(t testing.TB) {
	t.Helper()
	_ = o.stdin.Close()
	o.expect(t, "LEFT")
}

// Wait waits for the script to end and fails t unless it exited with status 0.
func (o *SlixOccupant) Wait(t testing.TB) {
	t.Helper()
	if err := o.wait(); err != nil {
		t.Fatalf("slixmpp occupant: %v; stderr:\n%s", err, o.Stderr())
	}
}

// Stderr returns what the script wrote to stderr so far.
func (o *SlixOccupant) Stderr() string { return o.stderr.String() }

func (o *SlixOccupant) wait() error {
	o.waitOnce.Do(func() {
		<-o.readDone // Wait closes stdout: read it to its end first
		o.waitErr = o.cmd.Wait()
	})
	return o.waitErr
}

// expect waits for the script to print word on a line of its own.
func (o *SlixOccupant) expect(t testing.TB, word string) {
	t.Helper()
	timeout := time.NewTimer(slixLineTimeout)
	defer timeout.Stop()
	for {
		select {
		case l, ok := <-o.lines:
			if !ok {
				t.Fatalf("slixmpp occupant ended before %s: %s", word, o.Stderr())
			}
			if l == word {
				return
			}
		case <-timeout.C:
			t.Fatalf("slixmpp occupant did not print %s: %s", word, o.Stderr())
		}
	}
}

// lockedBuffer is a bytes.Buffer that the process's stderr copier writes to while a
// test reads it.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer // guarded by mu
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
