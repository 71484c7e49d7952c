package daemon

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// peersDriver starts three stand-in peers through scripts/peers.sh the way scripts/demo
// starts Prosody, Dovecot and the others: each in a session of its own with a child of its
// own (as Dovecot has), the last one ignoring SIGTERM when STUBBORN is set. It prints
// "ready" and then waits like the demo, or with TICK=1 keeps logging like Switchboard does.
const peersDriver = `set -euo pipefail
source "$PEERS_SH"
PEERS_GRACE=1
peers_trap
for name in prosody dovecot switchboard; do
	cmd='sleep 1000 & echo $! >"$0.child"; wait'
	if [[ "$name" == switchboard && -n "${STUBBORN:-}" ]]; then
		cmd='trap "" TERM; sleep 1000 & echo $! >"$0.child"; wait'
	fi
	peer_start "$name" "$DIR" "$DIR/$name.log" bash -c "$cmd" "$DIR/$name"
	echo "$PEER_PID" >>"$DIR/pids"
done
for name in prosody dovecot switchboard; do
	while [[ ! -s "$DIR/$name.child" ]]; do sleep 0.05; done
done
echo ready
if [[ -n "${TICK:-}" ]]; then
	while :; do echo "switchboard log line"; sleep 0.1; done
fi
wait -n
`

// TestDemoPeersStopWithTheScript (issue 10, item 16): scripts/demo's peers stop, children
// included, when the demo is interrupted, also when its output went into a pipe whose reader
// is gone (scripts/demo | tee log, where Ctrl-C ends tee too), on SIGHUP, and when a
// peer ignores SIGTERM; and the script dies of nothing in between (SIGPIPE in the cleanup
// left Prosody, Dovecot and the submission server running before).
func TestDemoPeersStopWithTheScript(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("the demo runs on Linux")
	}
	for _, tool := range []string{"bash", "setsid", "sleep"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s is not installed", tool)
		}
	}
	peersSh, err := filepath.Abs("../../scripts/peers.sh")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name        string
		closeReader bool // the reader of the script's output exits first (tee on Ctrl-C)
		signal      syscall.Signal
		env         []string
		wantExit    int
	}{
		{name: "Ctrl-C with the output piped into a reader that exits", closeReader: true, signal: syscall.SIGINT, wantExit: 130},
		{name: "SIGHUP with the output piped into a reader that exits", closeReader: true, signal: syscall.SIGHUP, wantExit: 129},
		{name: "SIGTERM with the reader alive", signal: syscall.SIGTERM, wantExit: 143},
		{name: "Ctrl-C with a peer that ignores SIGTERM", closeReader: true, signal: syscall.SIGINT, env: []string{"STUBBORN=1"}, wantExit: 130},
		{name: "logging into a pipe whose reader exited", closeReader: true, env: []string{"TICK=1"}, wantExit: 141},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			cmd := exec.Command("bash", "-c", peersDriver)
			cmd.Env = append(os.Environ(), append([]string{"PEERS_SH=" + peersSh, "DIR=" + dir}, tt.env...)...)
			// Its own process group, as a terminal's foreground job: Ctrl-C goes to the group.
			cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
			out, err := cmd.StdoutPipe()
			if err != nil {
				t.Fatal(err)
			}
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			var pids []int
			t.Cleanup(func() {
				// Whatever the outcome, leave nothing behind.
				_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
				for _, pid := range pids {
					_ = syscall.Kill(-pid, syscall.SIGKILL)
					_ = syscall.Kill(pid, syscall.SIGKILL)
				}
			})
			line, err := bufio.NewReader(out).ReadString('\n')
			if err != nil || line != "ready\n" {
				t.Fatalf("the driver printed %q, %v; want ready", line, err)
			}
			pids = readPids(t, dir)
			if len(pids) != 6 {
				t.Fatalf("%d peers and children started, want 6", len(pids))
			}
			if tt.closeReader {
				out.Close()
			}
			if tt.signal != 0 {
				if err := syscall.Kill(-cmd.Process.Pid, tt.signal); err != nil {
					t.Fatal(err)
				}
			}
			done := make(chan error, 1)
			go func() { done <- cmd.Wait() }()
			select {
			case err = <-done:
			case <-time.After(20 * time.Second):
				t.Fatal("the script did not exit within 20s")
			}
			var exit *exec.ExitError
			code := 0
			if errors.As(err, &exit) {
				code = exit.ExitCode()
				if ws, ok := exit.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
					code = 128 + int(ws.Signal())
					t.Errorf("the script was killed by %v instead of running its cleanup", ws.Signal())
				}
			}
			if code != tt.wantExit {
				t.Errorf("exit status %d, want %d", code, tt.wantExit)
			}
			deadline := time.Now().Add(5 * time.Second)
			for _, pid := range pids {
				for running(pid) && time.Now().Before(deadline) {
					time.Sleep(20 * time.Millisecond)
				}
				if running(pid) {
					t.Errorf("process %d (%s) survived the script", pid, cmdline(pid))
				}
			}
		})
	}
}

// readPids returns the stand-in peers' pids and their children's.
func readPids(t *testing.T, dir string) []int {
	t.Helper()
	var pids []int
	data, err := os.ReadFile(filepath.Join(dir, "pids"))
	if err != nil {
		t.Fatal(err)
	}
	fields := strings.Fields(string(data))
	for _, name := range []string{"prosody", "dovecot", "switchboard"} {
		child, err := os.ReadFile(filepath.Join(dir, name+".child"))
		if err != nil {
			t.Fatal(err)
		}
		fields = append(fields, strings.TrimSpace(string(child)))
	}
	for _, f := range fields {
		pid, err := strconv.Atoi(f)
		if err != nil {
			t.Fatalf("bad pid %q", f)
		}
		pids = append(pids, pid)
	}
	return pids
}

// running reports whether pid is a live process (a zombie waiting for its parent is not).
func running(pid int) bool {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	// The state follows the command name in parentheses, which may contain spaces.
	s := string(data)
	i := strings.LastIndexByte(s, ')')
	return i < 0 || i+2 >= len(s) || s[i+2] != 'Z'
}

func cmdline(pid int) string {
	data, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	return strings.ReplaceAll(strings.TrimRight(string(data), "\x00"), "\x00", " ")
}
