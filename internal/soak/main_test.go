package soak

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/switchboard-matrix/switchboard/bots/management"
	"github.com/switchboard-matrix/switchboard/bridges/email"
	"github.com/switchboard-matrix/switchboard/bridges/xmpp"
	"github.com/switchboard-matrix/switchboard/config"
	"github.com/switchboard-matrix/switchboard/internal/testpeer/dendrite"
	"github.com/switchboard-matrix/switchboard/internal/testpeer/dovecot"
	"github.com/switchboard-matrix/switchboard/internal/testpeer/prosody"
	"github.com/switchboard-matrix/switchboard/internal/testpeer/smtppeer"
	"github.com/switchboard-matrix/switchboard/registration"
)

// Environment of the soak.
const (
	// killsEnv is the number of kills; the soak runs only when it is set.
	killsEnv = "SWITCHBOARD_SOAK_KILLS"
	// resultsEnv names a file that each store's result is appended to, one tab-separated
	// line (see result.tsv), for scripts/soak's summary table.
	resultsEnv = "SWITCHBOARD_SOAK_RESULTS"
	// logEnv is the binary's log level (default info).
	logEnv = "SWITCHBOARD_SOAK_LOG"
)

// One Dendrite, one Prosody, one Dovecot and one SMTP server serve the soak; each store's
// run has its own users, mailbox and database.
var (
	hs      *dendrite.Homeserver
	xs      *prosody.Server
	dc      *dovecot.Server
	smtpd   *smtppeer.Server
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
	if os.Getenv(killsEnv) == "" {
		return m.Run() // TestSoak skips itself; no peer is started
	}
	for name, avail := range map[string]func() error{
		"Dendrite": dendrite.Available, "Prosody": prosody.Available, "Dovecot": dovecot.Available, "aiosmtpd": smtppeer.Available,
	} {
		if err := avail(); err != nil {
			fmt.Fprintf(os.Stderr, "soak: %s unavailable: %v\n", name, err)
			return 1
		}
	}
	var err error
	if workDir, err = os.MkdirTemp("", "switchboard-soak-"); err != nil {
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
	if xs, err = prosody.Start(ctx, prosody.Options{Dir: filepath.Join(workDir, "prosody")}); err != nil {
		fmt.Fprintln(os.Stderr, "soak: prosody:", err)
		return 1
	}
	defer func() { _ = xs.Stop() }()
	if dc, err = dovecot.Start(ctx, dovecot.Options{Dir: filepath.Join(workDir, "dovecot")}); err != nil {
		fmt.Fprintln(os.Stderr, "soak: dovecot:", err)
		return 1
	}
	defer func() { _ = dc.Stop() }()
	if smtpd, err = smtppeer.Start(ctx, smtppeer.Options{Dir: filepath.Join(workDir, "smtp"), User: smtpUser, Password: smtpPass}); err != nil {
		fmt.Fprintln(os.Stderr, "soak: smtp:", err)
		return 1
	}
	defer func() { _ = smtpd.Stop() }()
	xb, err := xmpp.New(xmppConfig())
	if err != nil {
		fmt.Fprintln(os.Stderr, "soak: xmpp config:", err)
		return 1
	}
	hs, err = dendrite.StartWithAppservice(ctx, workDir, dendrite.Appservice{
		ID: "switchboard-soak", Ephemeral: true,
		Namespaces: map[string]registration.Namespaces{management.ID: {}, xmpp.ID: xb.Namespaces(), email.ID: {Users: []registration.Pattern{{Localpart: email.DefaultPrefix + ".+", Exclusive: true}}}},
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, "soak:", err)
		return 1
	}
	defer func() { _ = hs.Stop() }()
	code := m.Run()
	if code != 0 {
		fmt.Fprintf(os.Stderr, "dendrite log tail:\n%s\nprosody log tail:\n%s\ndovecot log tail:\n%s\nsmtp log tail:\n%s\n",
			hs.LogTail(30), xs.LogTail(30), dc.LogTail(20), smtpd.LogTail(20))
	}
	return code
}

// xmppConfig is the XMPP bridge's config for the soak's Prosody (the binary gets the same
// as YAML, see modulesYAML).
func xmppConfig() xmpp.Config {
	return xmpp.Config{Component: xmpp.ComponentConfig{
		Address: xs.ComponentAddr, Domain: xs.ComponentDomain, Secret: xs.ComponentSecret, ServerDomain: xs.Domain,
		MinBackoff: config.Duration(100 * time.Millisecond), MaxBackoff: config.Duration(time.Second),
	}}
}
