package peerproc

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"
)

func TestProgramPath(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "sbpeer-fake"), []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		prog    Program
		want    string // the path, or the error's text
		missing bool
	}{
		{"in the fallback dir", Program{Peer: "fake", Name: "sbpeer-fake", Dir: dir, Debian: "fake"}, filepath.Join(dir, "sbpeer-fake"), false},
		{"on PATH", Program{Peer: "fake", Name: "sh", Dir: dir, Debian: "dash"}, "", false},
		{"missing, one package", Program{Peer: "fake", Name: "sbpeer-none", Dir: dir, Debian: "fake-bin"},
			"fake: sbpeer-none not found (install the Debian package fake-bin): " + exec.ErrNotFound.Error(), true},
		{"missing, two packages", Program{Peer: "fake", Name: "sbpeer-none", Dir: dir, Debian: "fake-a fake-b"},
			"fake: sbpeer-none not found (install the Debian packages fake-a fake-b): " + exec.ErrNotFound.Error(), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.prog.Path()
			switch {
			case tt.missing:
				if !errors.Is(err, exec.ErrNotFound) || err.Error() != tt.want {
					t.Errorf("Path() error = %v, want %q wrapping exec.ErrNotFound", err, tt.want)
				}
			case err != nil:
				t.Errorf("Path() error = %v", err)
			case tt.want != "" && got != tt.want:
				t.Errorf("Path() = %q, want %q", got, tt.want)
			}
		})
	}
}

// recordingTB records how StartForTest ended a test instead of ending it.
type recordingTB struct {
	testing.TB
	skipped, fatal string
}

func (r *recordingTB) Helper() {}

func (r *recordingTB) Skipf(format string, args ...any) {
	r.skipped = fmt.Sprintf(format, args...)
	runtime.Goexit()
}

func (r *recordingTB) Fatalf(format string, args ...any) {
	r.fatal = fmt.Sprintf(format, args...)
	runtime.Goexit()
}

func TestStartForTest(t *testing.T) {
	tests := []struct {
		name       string
		require    string
		available  error
		startErr   error
		wantSkip   string
		wantFatal  string
		wantResult int
	}{
		{"started", "", nil, nil, "", "", 42},
		{"unavailable skips", "", errors.New("not installed"), nil, "fake unavailable: not installed", "", 0},
		{"unavailable fails when required", "1", errors.New("not installed"), nil, "",
			"fake unavailable and SWITCHBOARD_REQUIRE_PEERS=1: not installed", 0},
		{"start error fails", "", nil, errors.New("port taken"), "", "failed to start fake: port taken", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv("SWITCHBOARD_REQUIRE_PEERS", tt.require)
			r := &recordingTB{TB: t}
			var got int
			var hadDeadline bool
			done := make(chan struct{})
			go func() {
				defer close(done)
				got = StartForTest(r, "fake", tt.available, time.Minute, func(ctx context.Context) (int, error) {
					_, hadDeadline = ctx.Deadline()
					return 42, tt.startErr
				})
			}()
			<-done
			if r.skipped != tt.wantSkip || r.fatal != tt.wantFatal {
				t.Errorf("skipped %q, failed %q; want skipped %q, failed %q", r.skipped, r.fatal, tt.wantSkip, tt.wantFatal)
			}
			if got != tt.wantResult {
				t.Errorf("StartForTest = %d, want %d", got, tt.wantResult)
			}
			if tt.available == nil && !hadDeadline {
				t.Error("start's context had no deadline")
			}
		})
	}
}

func TestStopAtEndLogsTailOnFailure(t *testing.T) {
	p, err := Open("fake", "", "fake.log", nil)
	if err != nil {
		t.Fatal(err)
	}
	p.Note("hello")
	stopped := false
	var logged []string
	r := &loggingTB{TB: t, failed: true, logs: &logged}
	cleanups := []func(){}
	r.cleanup = func(f func()) { cleanups = append(cleanups, f) }
	p.StopAtEndWith(r, func() error { stopped = true; return p.Stop(time.Second) })
	for _, f := range cleanups {
		f()
	}
	if !stopped {
		t.Error("stop was not called")
	}
	if len(logged) != 1 || !strings.HasPrefix(logged[0], "fake log tail (") || !strings.Contains(logged[0], "hello") {
		t.Errorf("logged %q, want the log tail", logged)
	}
}

// loggingTB is a failed test that collects what is logged and the cleanups registered.
type loggingTB struct {
	testing.TB
	failed  bool
	logs    *[]string
	cleanup func(func())
}

func (l *loggingTB) Cleanup(f func()) { l.cleanup(f) }
func (l *loggingTB) Failed() bool     { return l.failed }
func (l *loggingTB) Logf(format string, args ...any) {
	*l.logs = append(*l.logs, fmt.Sprintf(format, args...))
}
func (l *loggingTB) Errorf(format string, args ...any) {
	*l.logs = append(*l.logs, "error: "+fmt.Sprintf(format, args...))
}
