package e2e

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/switchboard-matrix/switchboard/internal/testpeer/homeserver"
	"github.com/switchboard-matrix/switchboard/internal/testpeer/peerproc"
	"github.com/switchboard-matrix/switchboard/internal/testpeer/sbproc"
)

// haExtra is the high_availability section of the HA tests: quick checks, so that a
// takeover takes about three seconds.
const haExtra = "high_availability:\n  enabled: true\n  check_interval: 500ms\n  check_timeout: 500ms\n  fence_delay: 2s\n"

// haNode is one process of a high-availability group in a test.
type haNode struct {
	name        string
	bin, reg    string
	metrics, as int // its metrics (readiness) and transaction endpoint ports
	cfg         string
	log         *os.File
	proc        *sbproc.Process // the current run; nil when not running
}

// newHANode writes the config of a process of the group (database dbURI, transaction
// endpoint on asPort, modules as in sbproc.Config.Modules, more high_availability keys
// in haKeys, indented by two spaces) without starting it.
func newHANode(t *testing.T, h homeserver.HS, bin, name, dbURI string, asPort int, modules, haKeys string) *haNode {
	t.Helper()
	dir := t.TempDir()
	metrics, err := peerproc.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	n := &haNode{name: name, bin: bin, reg: h.RegPath(), metrics: metrics, as: asPort}
	n.cfg = sbproc.WriteConfig(t, dir, sbproc.Config{
		HomeserverURL: h.BaseURL(), Domain: domain, RegistrationID: h.Reg().ID, ASPort: asPort, MetricsPort: metrics,
		DatabaseURI: dbURI, LogLevel: logLevel(), Modules: modules, Extra: haExtra + haKeys,
	})
	if n.log, err = os.Create(filepath.Join(dir, name+".log")); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if n.proc != nil {
			n.proc.Kill9()
		}
		if t.Failed() {
			t.Logf("%s's warnings and errors:\n%s", name, sbproc.LogProblems(n.log.Name(), 40))
		}
		n.log.Close()
	})
	return n
}

// start starts a run without waiting (it may become a standby).
func (n *haNode) start(t *testing.T) {
	t.Helper()
	n.proc = sbproc.StartNoWait(t, n.bin, n.cfg, n.reg, n.log)
}

// kill9 kills the current run.
func (n *haNode) kill9() {
	n.proc.Kill9()
	n.proc = nil
}

// readiness is the status of /health/ready and its "core" check.
func (n *haNode) readiness() (int, string) {
	resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/health/ready", n.metrics))
	if err != nil {
		return 0, ""
	}
	defer resp.Body.Close()
	var body struct {
		Checks map[string]string `json:"checks"`
	}
	_ = json.NewDecoder(resp.Body).Decode(&body)
	return resp.StatusCode, body.Checks["core"]
}

// get fetches a path of the node's operator endpoints.
func (n *haNode) get(t *testing.T, path string) string {
	t.Helper()
	resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d%s", n.metrics, path))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

// waitStandby waits until the node says it is a standby.
func (n *haNode) waitStandby(t *testing.T) {
	t.Helper()
	waitFor(t, 60*time.Second, n.name+" to wait as a standby", func() (bool, error) {
		status, core := n.readiness()
		return status == http.StatusServiceUnavailable && strings.HasPrefix(core, "standby"), nil
	})
}

// tcpProxy forwards connections to a target until Cut closes every one of them (a
// network partition between the processes that use it and the target).
type tcpProxy struct {
	ln     net.Listener
	target string
	mu     sync.Mutex
	conns  []net.Conn // guarded by mu
	cut    bool       // guarded by mu
}

func newTCPProxy(t *testing.T, target string) *tcpProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &tcpProxy{ln: ln, target: target}
	go p.serve()
	t.Cleanup(p.Cut)
	return p
}

func (p *tcpProxy) addr() string { return p.ln.Addr().String() }

func (p *tcpProxy) serve() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		up, err := net.Dial("tcp", p.target)
		if err != nil {
			c.Close()
			continue
		}
		p.mu.Lock()
		if p.cut {
			p.mu.Unlock()
			c.Close()
			up.Close()
			return
		}
		p.conns = append(p.conns, c, up)
		p.mu.Unlock()
		go func() { _, _ = io.Copy(up, c); up.Close() }()
		go func() { _, _ = io.Copy(c, up); c.Close() }()
	}
}

// Cut closes the listener and every connection, both sides.
func (p *tcpProxy) Cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.cut = true
	p.ln.Close()
	for _, c := range p.conns {
		c.Close()
	}
	p.conns = nil
}
