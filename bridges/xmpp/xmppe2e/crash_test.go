package xmppe2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/switchboard-matrix/switchboard/internal/store"
	"github.com/switchboard-matrix/switchboard/internal/store/storetest"
	"github.com/switchboard-matrix/switchboard/internal/testpeer/peerproc"
	"github.com/switchboard-matrix/switchboard/internal/testpeer/sbproc"
)

// writeConfig writes the config of a switchboard process with the XMPP bridge.
func writeConfig(t *testing.T, dir, dbURI string, metricsPort int) string {
	t.Helper()
	return sbproc.WriteConfig(t, dir, sbproc.Config{
		HomeserverURL: hs.URL, Domain: domain, RegistrationID: reg.ID, ASPort: asPort, MetricsPort: metricsPort,
		DatabaseURI: dbURI, LogLevel: logLevel().String(),
		Modules: fmt.Sprintf(`  xmpp:
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
`, xs.ComponentAddr, xs.ComponentDomain, xs.ComponentSecret, xs.Domain, xs.UploadDomain),
	})
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
			metricsPort, err := peerproc.FreePort()
			if err != nil {
				t.Fatal(err)
			}
			cfgPath := writeConfig(t, dir, dbURI, metricsPort)
			logFile, err := os.Create(filepath.Join(dir, "switchboard.log"))
			if err != nil {
				t.Fatal(err)
			}
			defer logFile.Close()
			bin := sbproc.Build(t, workDir, "github.com/switchboard-matrix/switchboard/cmd/switchboard")
			p := sbproc.Start(t, bin, cfgPath, regPath, metricsPort, logFile)
			defer func() { p.Stop() }()

			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
			defer cancel()
			s, done := startStream(ctx, t, newXClient(t, "bob"), streamMessages)

			for k := 0; k < streamKills; k++ {
				time.Sleep(1200 * time.Millisecond)
				p.Kill9()
				t.Logf("kill -9 #%d", k+1)
				p = sbproc.Start(t, bin, cfgPath, regPath, metricsPort, logFile)
			}
			<-done
			s.verify(ctx, 3*time.Minute)
		})
	}
}
