package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"maunium.net/go/mautrix"
	"maunium.net/go/mautrix/id"

	"github.com/switchboard-matrix/switchboard/internal/store"
	"github.com/switchboard-matrix/switchboard/internal/store/storetest"
	"github.com/switchboard-matrix/switchboard/internal/testmodule"
	"github.com/switchboard-matrix/switchboard/internal/testpeer/homeserver"
	"github.com/switchboard-matrix/switchboard/internal/testpeer/peerproc"
	"github.com/switchboard-matrix/switchboard/internal/testpeer/sbproc"
)

// TestNoBodyInTheLogBelowTrace runs the real binary against Dendrite with messages that
// carry patient data both ways (a Matrix user's message to the module, a remote message
// the module sends to Matrix): at debug and info the log holds none of it, at trace it does.
func TestNoBodyInTheLogBelowTrace(t *testing.T) {
	h := onHS(t, homeserver.Dendrite)
	bin := sbproc.Build(t, workDir, "github.com/switchboard-matrix/switchboard/internal/testmodule/cmd/switchboard-test")
	for _, tt := range []struct {
		level    string
		wantBody bool
	}{{"info", false}, {"debug", false}, {"trace", true}} {
		t.Run(tt.level, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			marker := fmt.Sprintf("Patientin-Erika-Mustermann-%s-%d", tt.level, time.Now().UnixNano())
			dir := t.TempDir()
			alice := newUser(t, h, "privacy")
			sink := id.NewUserID(testmodule.GhostPrefix+"sink", domain)
			feeder := id.NewUserID(testmodule.GhostPrefix+"feeder", domain)
			room, err := alice.CreateRoom(ctx, &mautrix.ReqCreateRoom{Preset: "public_chat", Invite: []id.UserID{sink}})
			if err != nil {
				t.Fatal(err)
			}
			feed := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				msgs := []testmodule.RemoteMessage{}
				if r.URL.Query().Get("after") == "0" {
					msgs = append(msgs, testmodule.RemoteMessage{Seq: 1, Body: "remote: " + marker})
				}
				_ = json.NewEncoder(w).Encode(msgs)
			}))
			defer feed.Close()
			metricsPort, err := peerproc.FreePort()
			if err != nil {
				t.Fatal(err)
			}
			cfgPath := sbproc.WriteConfig(t, dir, sbproc.Config{
				HomeserverURL: h.BaseURL(), Domain: domain, RegistrationID: h.Reg().ID, ASPort: h.AppservicePort(), MetricsPort: metricsPort,
				DatabaseURI: storetest.NewDatabaseURI(t, store.SQLite), LogLevel: tt.level,
				Modules: fmt.Sprintf("  testmod:\n    enabled: true\n    remote_url: %s\n    room: %q\n    ghost: feeder\n", feed.URL, room.RoomID),
			})
			logPath := filepath.Join(dir, "switchboard.log")
			logFile, err := os.Create(logPath)
			if err != nil {
				t.Fatal(err)
			}
			defer logFile.Close()
			proc := sbproc.Start(t, bin, cfgPath, h.RegPath(), metricsPort, logFile)
			defer proc.Stop()
			waitFor(t, 60*time.Second, "the test ghost to join", func() (bool, error) { return isJoined(ctx, alice, room.RoomID, sink) })
			sent, err := alice.SendText(ctx, room.RoomID, "local: "+marker)
			if err != nil {
				t.Fatal(err)
			}
			waitFor(t, 60*time.Second, "the remote message in the room", func() (bool, error) {
				msgs, err := roomMessages(ctx, alice, room.RoomID)
				for _, b := range bodies(msgs, feeder) {
					if strings.Contains(b, marker) {
						return true, nil
					}
				}
				return false, err
			})
			st, err := store.Open(ctx, cfgDatabaseURI(t, cfgPath))
			if err != nil {
				t.Fatal(err)
			}
			defer st.Close()
			waitFor(t, 60*time.Second, "the module to handle the local message", func() (bool, error) {
				eff, err := testmodule.Effects(ctx, st)
				return eff[sent.EventID.String()] > 0, err
			})
			proc.Stop()
			out, err := os.ReadFile(logPath)
			if err != nil {
				t.Fatal(err)
			}
			if got := strings.Contains(string(out), marker); got != tt.wantBody {
				tail := string(out)
				if len(tail) > 6000 {
					tail = tail[len(tail)-6000:]
				}
				t.Errorf("log at %s contains the body: %v, want %v; log tail:\n%s", tt.level, got, tt.wantBody, tail)
			}
		})
	}
}

// cfgDatabaseURI reads database.uri back from a config sbproc wrote.
func cfgDatabaseURI(t *testing.T, cfgPath string) string {
	t.Helper()
	raw, err := os.ReadFile(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(raw), "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "uri: "); ok {
			var uri string
			if err := json.Unmarshal([]byte(v), &uri); err != nil {
				t.Fatalf("database uri %s: %v", v, err)
			}
			return uri
		}
	}
	t.Fatal("no database uri in the config")
	return ""
}
