package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/switchboard-matrix/switchboard/internal/provisiontest"
	"github.com/switchboard-matrix/switchboard/internal/store"
	"github.com/switchboard-matrix/switchboard/internal/store/storetest"
	"github.com/switchboard-matrix/switchboard/internal/testpeer/homeserver"
	"github.com/switchboard-matrix/switchboard/internal/testpeer/peerproc"
	"github.com/switchboard-matrix/switchboard/internal/testpeer/sbproc"
)

// TestProvisioningBinary: the provisioning API of the real binary, configured as an admin
// would (provisioning.enabled, the shared secret in a file named by
// SWITCHBOARD_PROVISIONING_SHARED_SECRET_FILE), answers the shared secret and a real user's
// Matrix OpenID token from the homeserver, refuses a forged token and a wrong secret, and
// its answers match docs/provisioning.openapi.yaml. TestProvisioningBinarySynapse runs it
// on Synapse.
func TestProvisioningBinary(t *testing.T) {
	testProvisioningBinary(t, onHS(t, homeserver.Dendrite))
}

func testProvisioningBinary(t *testing.T, h homeserver.HS) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	bin := sbproc.Build(t, workDir, "github.com/switchboard-matrix/switchboard/internal/testmodule/cmd/switchboard-test")
	dir := t.TempDir()
	secret := "prov-" + strings.Repeat("0123456789", 4)
	secretFile := filepath.Join(dir, "provisioning-secret")
	if err := os.WriteFile(secretFile, []byte(secret+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("SWITCHBOARD_PROVISIONING_SHARED_SECRET_FILE", secretFile)
	metricsPort, err := peerproc.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	cfgPath := sbproc.WriteConfig(t, dir, sbproc.Config{
		HomeserverURL: h.BaseURL(), Domain: domain, RegistrationID: h.Reg().ID, ASPort: h.AppservicePort(), MetricsPort: metricsPort,
		DatabaseURI: storetest.NewDatabaseURI(t, store.SQLite), LogLevel: logLevel(),
		Modules: "  testmod:\n    enabled: true\n",
		Extra:   "provisioning:\n  enabled: true\n",
	})
	logPath := filepath.Join(dir, "switchboard.log")
	logFile, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	defer logFile.Close()
	proc := sbproc.Start(t, bin, cfgPath, h.RegPath(), metricsPort, logFile)
	defer proc.Stop()
	base := fmt.Sprintf("http://127.0.0.1:%d", metricsPort)

	// The operator's tool, with the secret from the file.
	op := &provisiontest.Client{Base: base, Auth: secret}
	var who struct {
		UserID  string   `json:"user_id"`
		Admin   bool     `json:"admin"`
		Auth    string   `json:"auth"`
		Modules []string `json:"modules"`
	}
	op.Do(t, "GET", "/whoami", nil).JSON(t, &who)
	if who.UserID != "" || !who.Admin || who.Auth != "shared_secret" || !strings.Contains(strings.Join(who.Modules, " "), "testmod") {
		t.Errorf("whoami with the secret: %+v", who)
	}
	if a := op.Do(t, "GET", "/modules/testmod/status", nil); a.Status != 200 {
		t.Errorf("module status: %d %s", a.Status, a.Body)
	}

	// A Matrix user with an OpenID token from the homeserver.
	alice := newUser(t, h, "prov")
	tok, err := alice.RequestOpenIDToken(ctx)
	if err != nil {
		t.Fatal(err)
	}
	user := &provisiontest.Client{Base: base, Auth: "openid:" + tok.AccessToken}
	user.Do(t, "GET", "/whoami", nil).JSON(t, &who)
	if who.UserID != alice.UserID.String() || who.Auth != "openid" {
		t.Errorf("whoami with alice's OpenID token: %+v", who)
	}
	var status struct {
		Core    string `json:"core"`
		Modules []struct {
			ID string `json:"id"`
		} `json:"modules"`
	}
	user.Do(t, "GET", "/status", nil).JSON(t, &status)
	if status.Core != "running" || len(status.Modules) == 0 {
		t.Errorf("status for alice: %+v", status)
	}

	// Refusals.
	for _, tt := range []struct {
		name, auth, path string
		status           int
		errcode          string
	}{
		{"forged OpenID token", "openid:" + strings.Repeat("A", 24), "/whoami", 401, "M_UNKNOWN_TOKEN"},
		{"wrong secret", secret + "x", "/whoami", 401, "M_UNKNOWN_TOKEN"},
		{"another user's user_id", "openid:" + tok.AccessToken, "/whoami?user_id=@someone:" + domain, 403, "M_FORBIDDEN"},
		{"no such module", secret, "/modules/nope/status", 404, "M_NOT_FOUND"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			a := (&provisiontest.Client{Base: base, Auth: tt.auth}).Do(t, "GET", tt.path, nil)
			if a.Status != tt.status || a.Errcode() != tt.errcode {
				t.Errorf("status %d %s, want %d %s: %s", a.Status, a.Errcode(), tt.status, tt.errcode, a.Body)
			}
		})
	}

	// Neither the secret nor the token reached the log.
	proc.Stop()
	log, err := os.ReadFile(logPath)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{secret, tok.AccessToken} {
		if strings.Contains(string(log), s) {
			t.Errorf("the log holds a credential (%.6s…)", s)
		}
	}
	if !strings.Contains(string(log), `"Provisioning request"`) {
		t.Errorf("the log has no audit line of the provisioning requests")
	}
}
