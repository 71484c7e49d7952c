// Package sbproc runs a Switchboard binary as a separate process for kill -9 tests: it
// builds the binary once per test run, writes its config, starts it and waits until it is
// ready, and kills it with SIGKILL or stops it with SIGTERM.
package sbproc

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"
)

var (
	buildMu sync.Mutex
	built   = map[string]string{} // package path → binary
)

// Build builds the main package pkg into dir once per test process and returns the binary.
func Build(t testing.TB, dir, pkg string) string {
	t.Helper()
	buildMu.Lock()
	defer buildMu.Unlock()
	if bin, ok := built[pkg]; ok {
		return bin
	}
	bin := filepath.Join(dir, filepath.Base(pkg))
	out, err := exec.Command("go", "build", "-o", bin, pkg).CombinedOutput()
	if err != nil {
		t.Fatalf("go build %s: %v\n%s", pkg, err, out)
	}
	built[pkg] = bin
	return bin
}

// Config is the part of a Switchboard config that kill -9 tests vary.
type Config struct {
	HomeserverURL, Domain string
	RegistrationID        string
	ASPort, MetricsPort   int
	DatabaseURI           string
	LogLevel              string // trace … error
	// Modules is the YAML of the modules section's body, indented by two spaces.
	Modules string
	// Encryption is the YAML of the encryption section's body, indented by two spaces
	// (e.g. "  enabled: true\n"); empty leaves the section out (encryption off).
	Encryption string
	// Extra is YAML appended at the top level (whole sections, e.g. "provisioning:\n  enabled: true\n").
	Extra string
}

// WriteConfig writes the config into dir (mode 0600) and returns its path. Retries are
// quick and many: the process is killed often, and nothing may be given up on.
func WriteConfig(t testing.TB, dir string, c Config) string {
	t.Helper()
	cfg := fmt.Sprintf(`homeserver:
  address: %s
  domain: %s
appservice:
  id: %s
  listen: 127.0.0.1:%d
  public_url: http://127.0.0.1:%d
  bot:
    localpart: switchboard
  retry:
    attempts: 20
    initial: 200ms
    max: 2s
  shutdown_timeout: 5s
database:
  uri: %q
logging:
  level: %s
  format: json
metrics:
  enabled: true
  listen: 127.0.0.1:%d
management:
  admins: ["*:%s"]
modules:
%s`, c.HomeserverURL, c.Domain, c.RegistrationID, c.ASPort, c.ASPort, c.DatabaseURI, c.LogLevel, c.MetricsPort, c.Domain, c.Modules)
	if c.Encryption != "" {
		cfg += "\nencryption:\n" + c.Encryption
	}
	if c.Extra != "" {
		cfg += "\n" + c.Extra
	}
	path := filepath.Join(dir, "config.yaml")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// Process is one run of the binary.
type Process struct {
	cmd  *exec.Cmd
	done chan struct{} // closed when the process has exited
}

// Start runs bin with the config and registration, logging to log, and waits up to a minute
// for its readiness check on metricsPort.
func Start(t testing.TB, bin, cfgPath, regPath string, metricsPort int, log *os.File) *Process {
	t.Helper()
	p := StartNoWait(t, bin, cfgPath, regPath, log)
	p.WaitReady(t, metricsPort, time.Minute)
	return p
}

// StartNoWait starts the binary and returns at once (a standby of a high-availability
// group is not ready until it leads).
func StartNoWait(t testing.TB, bin, cfgPath, regPath string, log *os.File) *Process {
	t.Helper()
	cmd := exec.Command(bin, "-c", cfgPath, "-r", regPath)
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &Process{cmd: cmd, done: make(chan struct{})}
	go func() {
		_ = cmd.Wait()
		close(p.done)
	}()
	return p
}

// Pid is the process's ID.
func (p *Process) Pid() int { return p.cmd.Process.Pid }

// Exited waits up to timeout for the process to exit on its own and returns its exit
// status; ok is false when it still runs.
func (p *Process) Exited(timeout time.Duration) (status int, ok bool) {
	select {
	case <-p.done:
		return p.cmd.ProcessState.ExitCode(), true
	case <-time.After(timeout):
		return 0, false
	}
}

// WaitReady waits up to timeout until the process's core runs (see Start), and kills it
// and fails t if it does not.
func (p *Process) WaitReady(t testing.TB, metricsPort int, timeout time.Duration) {
	t.Helper()
	cmd := p.cmd
	url := fmt.Sprintf("http://127.0.0.1:%d/health/ready", metricsPort)
	deadline := time.Now().Add(timeout)
	for {
		resp, err := http.Get(url)
		if err == nil {
			// Up means the core runs with its database and homeserver; a module may still be
			// connecting to its peer (readiness waits for that too, a test need not).
			var ready struct {
				Checks map[string]string `json:"checks"`
			}
			_ = json.NewDecoder(resp.Body).Decode(&ready)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK || ready.Checks["core"] == "running" &&
				ready.Checks["database"] == "ok" && ready.Checks["homeserver"] == "ok" {
				return
			}
		}
		if time.Now().After(deadline) {
			_ = cmd.Process.Kill()
			t.Fatalf("switchboard did not become ready within %s (last error: %v)", timeout, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// Kill9 kills the process with SIGKILL and waits for it.
func (p *Process) Kill9() {
	_ = p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.done
}

// Stop asks the process to stop with SIGTERM and waits for it.
func (p *Process) Stop() {
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	<-p.done
}
