package peerproc

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"time"
)

// Peer is the part of a test peer's life cycle that does not depend on which server it
// is: its directory (a temporary one it owns and removes, or one it is given), its log (a
// file, or a writer it is given, plus a tail kept in memory), and its one running process.
// Its methods are safe for concurrent use.
type Peer struct {
	name   string      // immutable; the server's name, for errors
	dir    string      // immutable
	ownDir bool        // immutable; Stop removes dir
	tail   *TailBuffer // immutable
	file   *os.File    // immutable; the default log file, may be nil
	out    io.Writer   // immutable; the log plus the tail

	mu      sync.Mutex
	proc    *Process // guarded by mu; nil when not running
	stopped bool     // guarded by mu; Stop was called
}

// Open prepares a peer called name: dir (a new temporary directory when empty) and the
// log, which goes to logger or, when it is nil, to the file logName in dir.
func Open(name, dir, logName string, logger io.Writer) (*Peer, error) {
	p := &Peer{name: name, tail: NewTailBuffer(64 << 10)}
	var err error
	if dir == "" {
		if dir, err = os.MkdirTemp("", name+"-"); err != nil {
			return nil, fmt.Errorf("%s: failed to create dir: %w", name, err)
		}
		p.ownDir = true
	}
	p.dir = dir
	if p.dir, err = filepath.Abs(dir); err != nil {
		p.dir = dir
		return nil, errors.Join(fmt.Errorf("%s: failed to resolve dir: %w", name, err), p.Stop(0))
	}
	if err := os.MkdirAll(p.dir, 0o755); err != nil {
		return nil, errors.Join(fmt.Errorf("%s: failed to create dir: %w", name, err), p.Stop(0))
	}
	if logger == nil {
		if p.file, err = os.OpenFile(filepath.Join(p.dir, logName), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600); err != nil {
			return nil, errors.Join(fmt.Errorf("%s: failed to open log: %w", name, err), p.Stop(0))
		}
		logger = p.file
	}
	p.out = io.MultiWriter(logger, p.tail)
	return p, nil
}

// Dir is the peer's absolute directory.
func (p *Peer) Dir() string { return p.dir }

// Tail holds the last bytes the peer wrote, for readiness checks and failure messages.
func (p *Peer) Tail() *TailBuffer { return p.tail }

// LogTail returns the last n lines the peer wrote (at most 64 KiB).
func (p *Peer) LogTail(n int) string { return Tail(p.tail.Bytes(), n) }

// Note writes a harness line into the log tail (not the log file), such as which ports a
// start uses.
func (p *Peer) Note(text string) {
	fmt.Fprintf(p.tail, "--- switchboard test harness: %s ---\n", text)
}

// Launch starts cmd as the peer's process, its output going to the log. It refuses while a
// process runs or after Stop.
func (p *Peer) Launch(cmd *exec.Cmd) (*Process, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	switch {
	case p.stopped:
		return nil, fmt.Errorf("%s: server was stopped", p.name)
	case p.proc != nil:
		return nil, fmt.Errorf("%s: already running", p.name)
	}
	cmd.Stdout, cmd.Stderr = p.out, p.out
	proc, err := Start(cmd)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", p.name, err)
	}
	p.proc = proc
	return proc, nil
}

// LaunchReady notes in the log what starts, launches cmd and waits with ready, which gets
// the process and the log's tail position before the launch (so that it reads only this
// run's output). A process that does not become ready is stopped within stopTimeout and
// forgotten.
func (p *Peer) LaunchReady(cmd *exec.Cmd, note string, stopTimeout time.Duration, ready func(proc *Process, mark int64) error) error {
	p.Note(note)
	mark := p.tail.Written()
	proc, err := p.Launch(cmd)
	if err != nil {
		return err
	}
	if err := ready(proc, mark); err != nil {
		p.Abandon(proc, stopTimeout)
		return err
	}
	return nil
}

// Pid is the running process's ID, or 0 when none runs.
func (p *Peer) Pid() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.proc == nil {
		return 0
	}
	return p.proc.Pid()
}

// Abandon stops proc, which did not become ready, and forgets it.
func (p *Peer) Abandon(proc *Process, timeout time.Duration) {
	p.mu.Lock()
	if p.proc == proc {
		p.proc = nil
	}
	p.mu.Unlock()
	_ = proc.Stop(timeout)
}

// Halt stops the running process, if any, keeping directory and log for a new Launch
// (a restart). It reports an error if the process had died on its own.
func (p *Peer) Halt(timeout time.Duration) error {
	p.mu.Lock()
	proc := p.proc
	p.proc = nil
	p.mu.Unlock()
	if proc == nil {
		return nil
	}
	return proc.Stop(timeout)
}

// Stop stops the process, closes the log and removes the directory if the peer owns it.
// It reports an error if the process had died on its own. Stop is final and idempotent.
func (p *Peer) Stop(timeout time.Duration) error {
	p.mu.Lock()
	already := p.stopped
	p.stopped = true
	p.mu.Unlock()
	if already {
		return nil
	}
	err := p.Halt(timeout)
	if p.file != nil {
		p.file.Close()
	}
	if p.ownDir && p.dir != "" {
		_ = os.RemoveAll(p.dir)
	}
	return err
}
