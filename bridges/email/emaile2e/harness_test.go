package emaile2e

import (
	"context"
	"fmt"
	"sync/atomic"
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
	"github.com/switchboard-matrix/switchboard/internal/testpeer/matrixtest"
	"github.com/switchboard-matrix/switchboard/internal/testpeer/sbcore"
)

var counter atomic.Int64

func unique(prefix string) string {
	return fmt.Sprintf("%s%d%d", prefix, time.Now().UnixNano()%1e6, counter.Add(1))
}

func newMatrixUser(t testing.TB, prefix string) *mautrix.Client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	name := unique(prefix)
	cli, err := hs.RegisterUser(ctx, name, "password-"+name)
	if err != nil {
		t.Fatal(err)
	}
	return cli
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

// startBridgeWith starts Switchboard with the email bridge configured by cfg.
func startBridgeWith(t testing.TB, st *store.Store, cfg email.Config) *appservice.Core {
	t.Helper()
	if st == nil {
		st = storetest.Open(t, store.SQLite)
	}
	bridge, err := email.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	level, _ := zerolog.ParseLevel(getenv("SWITCHBOARD_EMAILE2E_LOG", "info"))
	core, _ := sbcore.Start(t, sbcore.Options{
		Registration: reg, HomeserverURL: hs.URL, Domain: domain, ASPort: asPort, Store: st,
		Modules: []appservice.Module{bridge}, Version: "emaile2e", LogLevel: level,
	})
	return core
}

// acceptInvite and waitEvent are shared with the other end-to-end tests.
var (
	acceptInvite = matrixtest.AcceptInvite
	waitEvent    = matrixtest.WaitEvent
)
