package emaile2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	mas "maunium.net/go/mautrix/appservice"

	"github.com/switchboard-matrix/switchboard/bots/management"
	"github.com/switchboard-matrix/switchboard/bridges/email"
	"github.com/switchboard-matrix/switchboard/internal/testpeer/dendrite"
	"github.com/switchboard-matrix/switchboard/internal/testpeer/dovecot"
	"github.com/switchboard-matrix/switchboard/internal/testpeer/homeserver"
	"github.com/switchboard-matrix/switchboard/internal/testpeer/smtppeer"
	"github.com/switchboard-matrix/switchboard/registration"
)

// One Dendrite, one Dovecot and one SMTP server serve the whole package (tests run one
// after the other); each test has mailboxes of its own.
var (
	hs      *dendrite.Server
	dc      *dovecot.Server
	smtpd   *smtppeer.Server
	reg     *mas.Registration
	asPort  int
	workDir string
)

const (
	domain     = "localhost"
	mailDomain = "example.test"
	smtpUser   = "submit"
	smtpPass   = "submit-secret"
)

func TestMain(m *testing.M) {
	os.Exit(runMain(m))
}

func runMain(m *testing.M) int {
	for name, avail := range map[string]func() error{"Dendrite": dendrite.Available, "Dovecot": dovecot.Available, "aiosmtpd": smtppeer.Available} {
		if err := avail(); err != nil {
			if os.Getenv("SWITCHBOARD_REQUIRE_PEERS") == "1" {
				fmt.Fprintf(os.Stderr, "emaile2e: %s unavailable and SWITCHBOARD_REQUIRE_PEERS=1: %v\n", name, err)
				return 1
			}
			fmt.Printf("emaile2e: skipping: %s unavailable: %v\n", name, err)
			return 0
		}
	}
	var err error
	if workDir, err = os.MkdirTemp("", "switchboard-emaile2e-"); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(workDir)
	// Dovecot delivers as nobody, who must reach its mail directories.
	if err := os.Chmod(workDir, 0o755); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	if dc, err = dovecot.Start(ctx, dovecot.Options{Dir: filepath.Join(workDir, "dovecot")}); err != nil {
		fmt.Fprintln(os.Stderr, "emaile2e: dovecot:", err)
		return 1
	}
	defer func() { _ = dc.Stop() }()
	if smtpd, err = smtppeer.Start(ctx, smtppeer.Options{Dir: filepath.Join(workDir, "smtp"), User: smtpUser, Password: smtpPass, LMTPAddr: dc.LMTPAddr}); err != nil {
		fmt.Fprintln(os.Stderr, "emaile2e: smtp:", err)
		return 1
	}
	defer func() { _ = smtpd.Stop() }()
	h, err := dendrite.StartWithAppservice(ctx, workDir, appserviceFor())
	if err != nil {
		fmt.Fprintln(os.Stderr, "emaile2e:", err)
		return 1
	}
	hs, reg, asPort = h.Server, h.Registration, h.ASPort
	onHS = homeserver.DendriteEnv(h)
	defer func() { _ = hs.Stop() }()
	defer syn.Stop()
	code := m.Run()
	if code != 0 {
		fmt.Fprintf(os.Stderr, "dovecot log tail:\n%s\nsmtp log tail:\n%s\n", dc.LogTail(30), smtpd.LogTail(30))
	}
	return code
}

// appserviceFor is the package's registration, the same on both homeservers.
func appserviceFor() dendrite.Appservice {
	return dendrite.Appservice{
		ID: "switchboard-emaile2e",
		Namespaces: map[string]registration.Namespaces{
			management.ID: {}, email.ID: {Users: []registration.Pattern{{Localpart: email.DefaultPrefix + ".+", Exclusive: true}}},
		},
	}
}
