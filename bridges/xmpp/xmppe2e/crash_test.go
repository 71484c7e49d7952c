package xmppe2e

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/switchboard-matrix/switchboard/internal/store"
	"github.com/switchboard-matrix/switchboard/internal/store/storetest"
	"github.com/switchboard-matrix/switchboard/internal/testpeer/matrixtest"
	"maunium.net/go/mautrix/id"
)

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

// switchboardBinary builds the switchboard command (which hosts the XMPP bridge) once.
func switchboardBinary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		binPath = filepath.Join(workDir, "switchboard")
		out, err := exec.Command("go", "build", "-o", binPath, "github.com/switchboard-matrix/switchboard/cmd/switchboard").CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binPath
}

// process is one run of the switchboard binary.
type process struct{ cmd *exec.Cmd }

func startProcess(t *testing.T, cfgPath string, metricsPort int, log *os.File) *process {
	t.Helper()
	cmd := exec.Command(switchboardBinary(t), "-c", cfgPath, "-r", regPath)
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	matrixtest.WaitFor(t, 60*time.Second, "switchboard to become ready", func() (bool, error) {
		resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/health/ready", metricsPort))
		if err != nil {
			return false, err
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK, nil
	})
	return &process{cmd: cmd}
}

func (p *process) kill9() {
	_ = p.cmd.Process.Signal(syscall.SIGKILL)
	_ = p.cmd.Wait()
}

func (p *process) stop() {
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	_ = p.cmd.Wait()
}

func writeConfig(t *testing.T, dir, dbURI string, metricsPort int) string {
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
  xmpp:
    enabled: true
    component:
      address: %s
      domain: %s
      secret: %q
      server_domain: %s
      upload_service: %s
      min_backoff: 100ms
      max_backoff: 1s
    media:
      max_bytes: 4194304
      allow_private: true
`, hs.URL, domain, reg.ID, asPort, asPort, dbURI, logLevel().String(), metricsPort, domain,
		xs.ComponentAddr, xs.ComponentDomain, xs.ComponentSecret, xs.Domain, xs.UploadDomain)
	path := filepath.Join(dir, "config.yaml")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

const (
	streamMessages = 200 // each way
	streamKills    = 3
)

// TestCrashKill9 streams messages both ways through a DM while Switchboard is killed with
// SIGKILL and restarted several times; afterwards every message arrived on the other side
// once: 0 lost and 0 doubled. On SQLite and PostgreSQL.
func TestCrashKill9(t *testing.T) {
	for _, dialect := range []store.Dialect{store.SQLite, store.Postgres} {
		t.Run(string(dialect), func(t *testing.T) {
			dbURI := storetest.NewDatabaseURI(t, dialect)
			dir := t.TempDir()
			metricsPort, err := freePort()
			if err != nil {
				t.Fatal(err)
			}
			cfgPath := writeConfig(t, dir, dbURI, metricsPort)
			logFile, err := os.Create(filepath.Join(dir, "switchboard.log"))
			if err != nil {
				t.Fatal(err)
			}
			defer logFile.Close()
			p := startProcess(t, cfgPath, metricsPort, logFile)
			defer func() { p.stop() }()

			bob := newXClient(t, "bob")
			alice := newMatrixUser(t, "alice")
			room := openDM(t, alice, bob.bare())
			s := &stream{t: t, n: streamMessages, alice: alice, room: room, to: puppetOf(t, alice.UserID),
				bob: []*xclient{bob}, sentAt: map[string]time.Time{}, synced: map[id.EventID]string{}}
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
			defer cancel()
			resendCtx, stopResend := context.WithCancel(ctx)
			defer stopResend()
			go s.resendLoop(resendCtx)
			go s.watch(resendCtx)
			done := make(chan struct{})
			go func() { defer close(done); s.run(ctx, 15*time.Millisecond) }()

			for k := 0; k < streamKills; k++ {
				time.Sleep(1200 * time.Millisecond)
				p.kill9()
				t.Logf("kill -9 #%d", k+1)
				p = startProcess(t, cfgPath, metricsPort, logFile)
			}
			<-done
			s.verify(ctx, 3*time.Minute)
		})
	}
}
