package sipp

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/switchboard-matrix/switchboard/internal/testpeer/peerproc"
)

// AnswerOptions configures StartAnswerer.
type AnswerOptions struct {
	// Listen is the host:port to listen on; default 127.0.0.1 and a free port.
	Listen string
	// Transport is UDP ("u1", default) or TCP ("t1").
	Transport string
	// Code and Reason answer every MESSAGE; default 200 "OK". Typical: 408, 486, 503, 603.
	Code   int
	Reason string
	// NoAnswer: never answer (the sender's transaction times out).
	NoAnswer bool
	// Count of calls (distinct Call-IDs) after which SIPp exits; 0: run until Stop.
	Count int
	// Dir keeps SIPp's files; default a temporary directory that Stop removes.
	Dir string
	// Logger receives SIPp's stdout and stderr; default Dir/sipp.log.
	Logger io.Writer
}

// Answerer is a running SIPp UAS answering MESSAGEs. Its methods are safe for concurrent
// use.
type Answerer struct {
	// Addr is where it listens, host:port. Immutable.
	Addr string
	// Transport is "u1" or "t1". Immutable.
	Transport string

	run      *sippRun // immutable
	noAnswer bool     // immutable
}

// Received is what an Answerer got, from SIPp's message log.
type Received struct {
	// Requests counts MESSAGE requests received, retransmissions and duplicates included.
	Requests int
	// CallIDs are the distinct Call-IDs of the MESSAGEs, in order of arrival.
	CallIDs []string
	// Answered counts responses SIPp sent.
	Answered int
}

// StartAnswererTest starts an Answerer for t and stops it when t ends, logging SIPp's
// output if t failed. It skips t when SIPp is not installed (see Skip).
func StartAnswererTest(t testing.TB, opts AnswerOptions) *Answerer {
	t.Helper()
	Skip(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	a, err := StartAnswerer(ctx, opts)
	if err != nil {
		t.Fatalf("failed to start the sipp answerer: %v", err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("sipp answerer output (%s):\n%s", a.run.peer.Dir(), a.run.peer.LogTail(40))
		}
		if err := a.Stop(); err != nil {
			t.Errorf("failed to stop the sipp answerer: %v", err)
		}
	})
	return a
}

// StartAnswerer starts SIPp as a UAS and returns once it listens (at most 10 s or ctx).
func StartAnswerer(ctx context.Context, opts AnswerOptions) (*Answerer, error) {
	if err := Available(); err != nil {
		return nil, err
	}
	switch opts.Transport {
	case "":
		opts.Transport = UDP
	case UDP, TCP:
	default:
		return nil, fmt.Errorf("sipp: Transport %q is not %q or %q", opts.Transport, UDP, TCP)
	}
	if opts.Code == 0 {
		opts.Code = 200
	}
	if opts.Code < 200 || opts.Code > 699 {
		return nil, fmt.Errorf("sipp: answer code %d is not final", opts.Code)
	}
	if opts.Reason == "" {
		opts.Reason = reasons[opts.Code]
		if opts.Reason == "" {
			opts.Reason = "Answer"
		}
	}
	if strings.ContainsAny(opts.Reason, "\r\n") {
		return nil, errors.New("sipp: Reason must be one line")
	}
	var a *Answerer
	err := peerproc.StartOnFreePorts(opts.Listen != "", func() error {
		listen := opts.Listen
		if listen == "" {
			port, err := peerproc.FreePort()
			if err != nil {
				return err
			}
			listen = net.JoinHostPort(loopback, strconv.Itoa(port))
		}
		host, port, err := net.SplitHostPort(listen)
		if err != nil {
			return fmt.Errorf("sipp: Listen %q is not host:port: %w", listen, err)
		}
		scenario := "uas_answer.xml"
		if opts.NoAnswer {
			scenario = "uas_noanswer.xml"
		}
		args := []string{"-t", opts.Transport, "-i", host, "-p", port}
		if !opts.NoAnswer {
			args = append(args, "-set", "reason", opts.Reason)
		}
		if opts.Count > 0 {
			args = append(args, "-m", strconv.Itoa(opts.Count))
		}
		r, err := run(opts.Dir, opts.Logger, scenario, map[string]string{"CODE": strconv.Itoa(opts.Code)}, args)
		if err != nil {
			return err
		}
		if err := waitListening(ctx, r, opts.Transport, port); err != nil {
			r.close()
			return err
		}
		a = &Answerer{Addr: listen, Transport: opts.Transport, run: r, noAnswer: opts.NoAnswer}
		return nil
	})
	return a, err
}

// reasons are default reason phrases.
var reasons = map[int]string{200: "OK", 202: "Accepted", 403: "Forbidden", 404: "Not Found",
	408: "Request Timeout", 415: "Unsupported Media Type", 480: "Temporarily Unavailable",
	486: "Busy Here", 488: "Not Acceptable Here", 500: "Server Internal Error",
	503: "Service Unavailable", 603: "Decline"}

// waitListening waits until SIPp has bound port (read from /proc/net, which dials and
// binds nothing), or has exited.
func waitListening(ctx context.Context, r *sippRun, transport, port string) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	p, _ := strconv.Atoi(port)
	file, state := "/proc/net/udp", "07"
	if transport == TCP {
		file, state = "/proc/net/tcp", "0A" // LISTEN
	}
	want := fmt.Sprintf(":%04X ", p)
	for {
		// The socket on the port must be SIPp's own: another process may have taken the
		// port between its choice and SIPp's bind (SIPp then exits, but not at once).
		owned, taken := socketInodes(r.proc.Pid()), false
		if b, err := os.ReadFile(file); err == nil {
			for _, line := range strings.Split(string(b), "\n")[1:] {
				f := strings.Fields(line)
				if len(f) > 9 && strings.HasSuffix(f[1]+" ", want) && f[3] == state {
					if owned[f[9]] {
						return nil
					}
					taken = true
				}
			}
		}
		select {
		case <-r.proc.Done():
			if taken {
				return fmt.Errorf("sipp: %w: port %s", peerproc.ErrAddrInUse, port)
			}
			return r.failure("exited during start")
		case <-ctx.Done():
			return r.failure(fmt.Sprintf("not listening on port %s: %v", port, ctx.Err()))
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// socketInodes are the inodes of the sockets process pid has open.
func socketInodes(pid int) map[string]bool {
	dir := fmt.Sprintf("/proc/%d/fd", pid)
	entries, _ := os.ReadDir(dir)
	out := map[string]bool{}
	for _, e := range entries {
		link, err := os.Readlink(dir + "/" + e.Name())
		if inode, ok := strings.CutPrefix(link, "socket:["); err == nil && ok {
			out[strings.TrimSuffix(inode, "]")] = true
		}
	}
	return out
}

// Received reads what the Answerer got so far from SIPp's message log.
func (a *Answerer) Received() (Received, error) {
	entries, err := a.run.messages()
	if err != nil {
		return Received{}, err
	}
	var rc Received
	seen := map[string]bool{}
	for _, e := range entries {
		switch {
		case e.Request && !e.Sent && e.Method == "MESSAGE":
			rc.Requests++
			if !seen[e.CallID] {
				seen[e.CallID] = true
				rc.CallIDs = append(rc.CallIDs, e.CallID)
			}
		case !e.Request && e.Sent:
			rc.Answered++
		}
	}
	return rc, nil
}

// WaitReceived waits until at least calls distinct Call-IDs arrived and (unless NoAnswer)
// every request received has been answered in the log. SIPp signals nothing, so its
// message log is read every 50 ms.
func (a *Answerer) WaitReceived(ctx context.Context, calls int) (Received, error) {
	for {
		rc, err := a.Received()
		if err != nil || (len(rc.CallIDs) >= calls && (a.noAnswer || rc.Answered >= rc.Requests)) {
			return rc, err
		}
		select {
		case <-ctx.Done():
			return rc, fmt.Errorf("sipp: %d of %d calls received: %w", len(rc.CallIDs), calls, ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// Done is closed when SIPp has exited (after AnswerOptions.Count calls, or on an error).
func (a *Answerer) Done() <-chan struct{} { return a.run.proc.Done() }

// LogTail returns the last n lines of SIPp's output.
func (a *Answerer) LogTail(n int) string { return a.run.peer.LogTail(n) }

// Stop stops SIPp and removes its directory if it was temporary. An exit after Count
// calls is not an error; another exit of its own is.
func (a *Answerer) Stop() error {
	select {
	case <-a.run.proc.Done():
		if _, err := a.run.wait(context.Background()); err != nil {
			a.run.close()
			return err
		}
	default:
	}
	a.run.close()
	return nil
}
