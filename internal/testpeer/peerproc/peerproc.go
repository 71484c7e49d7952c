// Package peerproc runs the server binaries of Switchboard's test peers (Dendrite, Prosody,
// …): each in its own process group that dies with the test, stopped with SIGTERM and then
// SIGKILL, with the tail of its output kept for failure messages. It is used by tests only.
package peerproc

import (
	"bytes"
	"fmt"
	"net"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Process is one run of a peer's binary.
type Process struct {
	cmd  *exec.Cmd     // immutable
	done chan struct{} // closed when the process has exited
	err  error         // exit error, written before done closes
}

// Start starts cmd in its own process group, which the kernel kills when the starting
// thread dies (a killed or timed-out test).
func Start(cmd *exec.Cmd) (*Process, error) {
	if err := Supported(); err != nil {
		return nil, err
	}
	cmd.SysProcAttr = sysProcAttr()
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("peerproc: failed to start %s: %w", filepath.Base(cmd.Path), err)
	}
	p := &Process{cmd: cmd, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	return p, nil
}

// Pid is the process ID (also the ID of its process group).
func (p *Process) Pid() int { return p.cmd.Process.Pid }

// Done is closed when the process has exited.
func (p *Process) Done() <-chan struct{} { return p.done }

// Err is the exit error; valid once Done is closed.
func (p *Process) Err() error { return p.err }

// Stop terminates the process group (SIGTERM, SIGKILL after timeout) and waits for it. It
// returns an error if the process had already exited on its own.
func (p *Process) Stop(timeout time.Duration) error {
	pid := p.Pid()
	select {
	case <-p.done:
		_ = signalGroup(pid, syscall.SIGKILL) // leftovers of the group, if any
		return fmt.Errorf("peerproc: %s had exited unexpectedly: %v", filepath.Base(p.cmd.Path), p.err)
	default:
	}
	_ = signalGroup(pid, syscall.SIGTERM)
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	select {
	case <-p.done:
	case <-timer.C:
		_ = signalGroup(pid, syscall.SIGKILL)
		<-p.done
	}
	_ = signalGroup(pid, syscall.SIGKILL) // anything the group left behind
	return nil
}

// FreePort asks the kernel for a free loopback TCP port.
func FreePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("peerproc: failed to find a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// Tail returns the last n lines of b.
func Tail(b []byte, n int) string {
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// TailBuffer keeps the last bytes written to it. It is safe for concurrent use.
type TailBuffer struct {
	mu      sync.Mutex
	buf     []byte // guarded by mu
	written int64  // guarded by mu; bytes written in total
	limit   int    // immutable
}

// NewTailBuffer keeps the last limit bytes.
func NewTailBuffer(limit int) *TailBuffer { return &TailBuffer{limit: limit} }

// Write implements io.Writer.
func (b *TailBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.buf = append(b.buf, p...)
	b.written += int64(len(p))
	if over := len(b.buf) - b.limit; over > 0 {
		b.buf = append(b.buf[:0], b.buf[over:]...)
	}
	return len(p), nil
}

// Bytes returns a copy of what is held.
func (b *TailBuffer) Bytes() []byte {
	b.mu.Lock()
	defer b.mu.Unlock()
	return bytes.Clone(b.buf)
}

// Written returns how many bytes were written in total, a mark for Since.
func (b *TailBuffer) Written() int64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.written
}

// Since returns what was written after mark and is still held.
func (b *TailBuffer) Since(mark int64) []byte {
	b.mu.Lock()
	defer b.mu.Unlock()
	n := min(b.written-mark, int64(len(b.buf)))
	return bytes.Clone(b.buf[int64(len(b.buf))-n:])
}
