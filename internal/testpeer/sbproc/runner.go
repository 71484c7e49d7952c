package sbproc

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/switchboard-matrix/switchboard/internal/testpeer/peerproc"
)

// Runner runs one binary on one config from run to run: Start, Kill9 and Start again, and
// Stop at the end. It logs to a file in dir whose warnings and errors are shown when the
// test fails.
type Runner struct {
	t             testing.TB
	bin, cfg, reg string
	metricsPort   int
	log           *os.File
	proc          *Process // the current run; nil when stopped
}

// NewRunner prepares a Runner (it does not start the binary); the log goes to logPath.
func NewRunner(t testing.TB, bin, cfgPath, regPath string, metricsPort int, logPath string) *Runner {
	t.Helper()
	log, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		log.Close()
		if t.Failed() {
			t.Logf("switchboard's warnings and errors:\n%s", LogProblems(logPath, 60))
			keepLog(t, logPath)
		}
	})
	return &Runner{t: t, bin: bin, cfg: cfgPath, reg: regPath, metricsPort: metricsPort, log: log}
}

// OpsURL is the base URL of the process's operator endpoints (its metrics port):
// /health/ready, /metrics, /status.
func (r *Runner) OpsURL() string { return fmt.Sprintf("http://127.0.0.1:%d", r.metricsPort) }

// Start starts a run and waits until it is ready.
func (r *Runner) Start() {
	r.t.Helper()
	r.proc = Start(r.t, r.bin, r.cfg, r.reg, r.metricsPort, r.log)
}

// Kill9 kills the current run with SIGKILL.
func (r *Runner) Kill9() {
	r.proc.Kill9()
	r.proc = nil
}

// Stop stops the current run with SIGTERM, if there is one.
func (r *Runner) Stop() {
	if r.proc != nil {
		r.proc.Stop()
		r.proc = nil
	}
}

// keepLog copies the whole log of a failed test into $SWITCHBOARD_KEEP_LOGS, when set
// (the test's directory is removed at its end).
func keepLog(t testing.TB, logPath string) {
	dir := os.Getenv("SWITCHBOARD_KEEP_LOGS")
	if dir == "" {
		return
	}
	b, err := os.ReadFile(logPath)
	if err != nil {
		return
	}
	name := strings.NewReplacer("/", "_", " ", "_").Replace(t.Name()) + ".log"
	if err := os.WriteFile(filepath.Join(dir, name), b, 0o600); err == nil {
		t.Logf("switchboard's log kept in %s", filepath.Join(dir, name))
	}
}

// LogProblems returns the last n warnings and errors of a log (JSON or console format),
// without the one about the registration that every start of a test process gives.
func LogProblems(path string, n int) string {
	b, _ := os.ReadFile(path)
	var out []string
	for _, line := range strings.Split(string(b), "\n") {
		problem := strings.Contains(line, `"level":"warn"`) || strings.Contains(line, `"level":"error"`) ||
			strings.Contains(line, " WRN ") || strings.Contains(line, " ERR ")
		if problem && !strings.Contains(line, "registration file no longer matches") {
			out = append(out, line)
		}
	}
	return strings.Join(out[max(0, len(out)-n):], "\n")
}

// Launch builds the main package pkg (once per test process, into binDir), writes c into a
// new temporary directory with a free metrics port (c.MetricsPort is set by Launch) and
// starts the binary with the registration regPath. The Runner goes on from there.
func Launch(t testing.TB, binDir, pkg, regPath string, c Config) *Runner {
	t.Helper()
	dir := t.TempDir()
	port, err := peerproc.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	c.MetricsPort = port
	cfg := WriteConfig(t, dir, c)
	r := NewRunner(t, Build(t, binDir, pkg), cfg, regPath, port, filepath.Join(dir, "switchboard.log"))
	r.Start()
	return r
}
