package emaile2e

import (
	"context"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"maunium.net/go/mautrix"
	"maunium.net/go/mautrix/id"

	"github.com/switchboard-matrix/switchboard/appservice"
	"github.com/switchboard-matrix/switchboard/bridges/email"
	"github.com/switchboard-matrix/switchboard/config"
	"github.com/switchboard-matrix/switchboard/internal/store"
	"github.com/switchboard-matrix/switchboard/internal/store/storetest"
	"github.com/switchboard-matrix/switchboard/internal/testpeer/dendrite"
	"github.com/switchboard-matrix/switchboard/internal/testpeer/matrixtest"
	"github.com/switchboard-matrix/switchboard/internal/testpeer/sbcore"
)

// unique returns a name unique in the test run.
var unique = dendrite.Unique

// newMatrixUser registers a real Matrix user on the test's homeserver.
func newMatrixUser(t testing.TB, prefix string) *mautrix.Client {
	t.Helper()
	return onHS.NewUser(t, prefix)
}

// newMailbox creates a Dovecot account and the bridge config of a mailbox for it, with
// user invited to its room.
func newMailbox(t testing.TB, user id.UserID) email.MailboxConfig {
	t.Helper()
	name := unique("box")
	address := name + "@" + mailDomain
	if err := dc.AddUser(context.Background(), address, "pw-"+name); err != nil {
		t.Fatal(err)
	}
	return email.MailboxConfig{
		Name: name, Address: address, DisplayName: "Box " + name, Invite: []string{user.String()},
		IMAP:         email.ServerConfig{Address: dc.IMAPAddr, TLS: "none", Username: address, Password: "pw-" + name},
		SMTP:         email.ServerConfig{Address: smtpd.Addr, TLS: "starttls", Username: smtpUser, Password: smtpPass, InsecureSkipVerify: true},
		PollInterval: config.Duration(2 * time.Second),
	}
}

// startBridge starts Switchboard with the email bridge for the mailboxes on st (a fresh
// SQLite store when nil).
func startBridge(t testing.TB, st *store.Store, boxes ...email.MailboxConfig) *appservice.Core {
	t.Helper()
	return startBridgeWith(t, st, email.Config{Mailboxes: boxes})
}

// startBridgeWith starts Switchboard on the test's homeserver with the email bridge
// configured by cfg.
func startBridgeWith(t testing.TB, st *store.Store, cfg email.Config) *appservice.Core {
	t.Helper()
	return startBridgeEnc(t, st, cfg, appservice.Encryption{})
}

// startBridgeEnc is startBridgeWith with the core's end-to-end encryption enc (off when
// zero).
func startBridgeEnc(t testing.TB, st *store.Store, cfg email.Config, enc appservice.Encryption) *appservice.Core {
	t.Helper()
	return startBridgeOpts(t, st, cfg, sbcore.Options{Encryption: enc})
}

// startBridgeOpts is startBridgeWith with more of the core's options in o (encryption,
// scanning); the homeserver, store, modules, version and log level are set here.
func startBridgeOpts(t testing.TB, st *store.Store, cfg email.Config, o sbcore.Options) *appservice.Core {
	t.Helper()
	if st == nil {
		st = storetest.Open(t, store.SQLite)
	}
	bridge, err := email.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	level, _ := zerolog.ParseLevel(getenv("SWITCHBOARD_EMAILE2E_LOG", "info"))
	o.Registration, o.HomeserverURL, o.Domain, o.ASPort, o.Store = onHS.Reg, onHS.URL, domain, onHS.ASPort, st
	o.Modules, o.Version, o.LogLevel = []appservice.Module{bridge}, "emaile2e", level
	core, _ := sbcore.Start(t, o)
	return core
}

// acceptInvite and waitEvent are shared with the other end-to-end tests.
var (
	acceptInvite = matrixtest.AcceptInvite
	waitEvent    = matrixtest.WaitEvent
)
