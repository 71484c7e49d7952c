package sipp

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/switchboard-matrix/switchboard/internal/testpeer/peerproc"
)

// sippRun is one SIPp process with its directory and logs.
type sippRun struct {
	peer *peerproc.Peer
	proc *peerproc.Process
}

// run writes scenario into a directory (dir, or a temporary one), with each "@KEY@" of
// fill replaced, and starts SIPp with it and args, plus the options of its logs.
func run(dir string, logger io.Writer, scenario string, fill map[string]string, args []string) (*sippRun, error) {
	bin, err := program.Path()
	if err != nil {
		return nil, err
	}
	peer, err := peerproc.Open("sipp", dir, outputLog, logger)
	if err != nil {
		return nil, err
	}
	for _, f := range []string{messageLog, errorLog} { // from an earlier run in dir
		_ = os.Remove(filepath.Join(peer.Dir(), f))
	}
	xml, err := scenarios.ReadFile("scenarios/" + scenario)
	for k, v := range fill {
		xml = bytes.ReplaceAll(xml, []byte("@"+k+"@"), []byte(v))
	}
	if err == nil {
		err = os.WriteFile(filepath.Join(peer.Dir(), scenario), xml, 0o644)
	}
	if err != nil {
		_ = peer.Stop(0)
		return nil, fmt.Errorf("sipp: failed to write scenario %s: %w", scenario, err)
	}
	all := append([]string{"-sf", scenario, "-nostdin", "-nd",
		"-trace_msg", "-message_file", messageLog, "-trace_err", "-error_file", errorLog}, args...)
	cmd := exec.Command(bin, all...)
	cmd.Dir = peer.Dir()
	peer.Note("sipp " + strings.Join(all, " "))
	proc, err := peer.Launch(cmd)
	if err != nil {
		_ = peer.Stop(0)
		return nil, err
	}
	return &sippRun{peer: peer, proc: proc}, nil
}

// wait waits for SIPp to exit and returns its exit code: 0 or 1 (some calls failed).
// Other codes are errors carrying SIPp's error log.
func (r *sippRun) wait(ctx context.Context) (int, error) {
	select {
	case <-r.proc.Done():
	case <-ctx.Done():
		_ = r.peer.Halt(stopTimeout)
		return -1, fmt.Errorf("sipp: %w; output:\n%s", ctx.Err(), r.peer.LogTail(20))
	}
	code := 0
	var exit *exec.ExitError
	if err := r.proc.Err(); errors.As(err, &exit) {
		code = exit.ExitCode()
	} else if err != nil {
		return -1, fmt.Errorf("sipp: %w", err)
	}
	if code == 0 || code == 1 {
		return code, nil
	}
	return code, r.failure(fmt.Sprintf("exited with code %d", code))
}

// failure describes a SIPp that did not work, with its error log and output.
func (r *sippRun) failure(what string) error {
	errs, _ := os.ReadFile(filepath.Join(r.peer.Dir(), errorLog))
	err := fmt.Errorf("sipp: %s; error log:\n%s\noutput:\n%s", what, peerproc.Tail(errs, 20), r.peer.LogTail(20))
	if strings.Contains(string(errs)+r.peer.LogTail(40), "Address already in use") {
		err = fmt.Errorf("%w: %w", peerproc.ErrAddrInUse, err)
	}
	return err
}

// messages reads the message log so far.
func (r *sippRun) messages() ([]logEntry, error) {
	b, err := os.ReadFile(filepath.Join(r.peer.Dir(), messageLog))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("sipp: failed to read the message log: %w", err)
	}
	return parseMessageLog(b), nil
}

// close stops SIPp if it still runs and removes the directory if it was temporary.
func (r *sippRun) close() {
	_ = r.peer.Stop(stopTimeout)
}
