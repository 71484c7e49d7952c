package ingestbench

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"syscall"
	"time"
)

// proc is one server process under load.
type proc struct {
	name    string
	cmd     *exec.Cmd
	baseURL string // the Application Service API
	hsToken string
	exited  chan struct{} // closed when the process has exited
	waitErr error         // set before exited is closed
	// handled returns how many events the server has handed on (to its module, its event
	// channel, its listeners).
	handled func(ctx context.Context) (int64, error)
	// check returns the exactly-once verdict once the process has stopped.
	check func(ctx context.Context, sent int) (string, bool)
	// cleanup removes what the run made (a database); may be nil.
	cleanup func(ctx context.Context)
}

// start starts cmd with its output going to logPath.
func (p *proc) start(logPath string) error {
	f, err := os.Create(logPath)
	if err != nil {
		return fmt.Errorf("ingestbench: %w", err)
	}
	p.cmd.Stdout, p.cmd.Stderr = f, f
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := p.cmd.Start(); err != nil {
		f.Close()
		return fmt.Errorf("ingestbench: failed to start %s: %w", p.name, err)
	}
	p.exited = make(chan struct{})
	go func() {
		p.waitErr = p.cmd.Wait()
		f.Close()
		close(p.exited)
	}()
	return nil
}

func (p *proc) pid() int { return p.cmd.Process.Pid }

// stop asks the process to stop with SIGTERM and kills it after 20 s.
func (p *proc) stop() {
	if p.exited == nil {
		return
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.exited:
	case <-time.After(20 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.exited
	}
}

// waitUp polls url until ok says the answer means ready, the process exits or a minute
// passes.
func (p *proc) waitUp(ctx context.Context, url string, ok func(*http.Response) bool) error {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			up := ok(resp)
			resp.Body.Close()
			if up {
				return nil
			}
		}
		select {
		case <-p.exited:
			return fmt.Errorf("ingestbench: %s exited before it was up: %v", p.name, p.waitErr)
		case <-ctx.Done():
			return fmt.Errorf("ingestbench: %s was not up within a minute: %w", p.name, ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// waitHandled polls handled every 5 ms until it reaches n and returns when it did.
func (p *proc) waitHandled(ctx context.Context, n int64, timeout time.Duration) (time.Time, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var last int64
	for {
		got, err := p.handled(ctx)
		if err == nil && got >= n {
			return time.Now(), nil
		}
		if err == nil {
			last = got
		}
		select {
		case <-p.exited:
			return time.Time{}, fmt.Errorf("ingestbench: %s exited: %v", p.name, p.waitErr)
		case <-ctx.Done():
			return time.Time{}, fmt.Errorf("ingestbench: %s handled %d of %d events within %s: %w", p.name, last, n, timeout, ctx.Err())
		case <-time.After(5 * time.Millisecond):
		}
	}
}

// counts is the answer of the baselines' GET /count.
type counts struct {
	Events   int64 `json:"events"`
	Distinct int64 `json:"distinct"`
}

func getCounts(ctx context.Context, url string) (counts, error) {
	var c counts
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return c, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return c, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return c, fmt.Errorf("ingestbench: %s answered %s", url, resp.Status)
	}
	if err := json.NewDecoder(resp.Body).Decode(&c); err != nil {
		return c, fmt.Errorf("ingestbench: failed to decode %s: %w", url, err)
	}
	return c, nil
}

// baseline makes handled and check of a server that answers GET /count: every event
// counted once, the distinct IDs equal to those sent. The verdict is taken before the
// process stops (its counts live in memory).
func (p *proc) baseline(countURL string) {
	var final counts
	var finalErr error
	p.handled = func(ctx context.Context) (int64, error) {
		c, err := getCounts(ctx, countURL)
		final, finalErr = c, err
		return c.Distinct, err
	}
	p.check = func(_ context.Context, sent int) (string, bool) {
		if finalErr != nil {
			return "error: " + finalErr.Error(), false
		}
		ok := final.Events == int64(sent) && final.Distinct == int64(sent)
		return fmt.Sprintf("handled %d, distinct %d of %d", final.Events, final.Distinct, sent), ok
	}
}

// freePort returns a loopback port that was free a moment ago.
func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("ingestbench: failed to find a free port: %w", err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// startMautrix starts the mautrix-go baseline.
func startMautrix(ctx context.Context, bin, dir, hsToken string) (*proc, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	p := &proc{name: "mautrix", baseURL: base, hsToken: hsToken,
		cmd: exec.Command(bin, "-listen", fmt.Sprintf("127.0.0.1:%d", port), "-hs-token", hsToken)}
	p.baseline(base + "/count")
	if err := p.start(dir + "/mautrixas.log"); err != nil {
		return nil, err
	}
	if err := p.waitUp(ctx, base+"/count", func(r *http.Response) bool { return r.StatusCode == http.StatusOK }); err != nil {
		p.stop()
		return nil, err
	}
	return p, nil
}

// startNode starts the matrix-appservice baseline.
func startNode(ctx context.Context, n *nodeInstall, dir, hsToken string) (*proc, error) {
	if n == nil {
		return nil, errors.New("ingestbench: matrix-appservice is not installed")
	}
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	cmd := exec.Command(n.node, n.script, fmt.Sprint(port), hsToken)
	cmd.Env = append(os.Environ(), "NODE_PATH="+n.modules, "NODE_ENV=production")
	p := &proc{name: "node", baseURL: base, hsToken: hsToken, cmd: cmd}
	p.baseline(base + "/count")
	if err := p.start(dir + "/node.log"); err != nil {
		return nil, err
	}
	if err := p.waitUp(ctx, base+"/count", func(r *http.Response) bool { return r.StatusCode == http.StatusOK }); err != nil {
		p.stop()
		return nil, err
	}
	return p, nil
}
