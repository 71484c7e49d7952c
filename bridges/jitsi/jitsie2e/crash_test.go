package jitsie2e

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/switchboard-matrix/switchboard/internal/store"
	"github.com/switchboard-matrix/switchboard/internal/store/storetest"
	"github.com/switchboard-matrix/switchboard/internal/testpeer/prosody"
	"github.com/switchboard-matrix/switchboard/internal/testpeer/sbproc"
)

// TestCrashKill9 kills the real switchboard binary with SIGKILL in the middle of a
// meeting, twice: a participant joins while it is down, and everybody leaves while it is
// down the second time. The room ends up with one reply to !meet, one widget, the
// participants as they are, one start notice and one end notice: nothing lost, nothing
// doubled. On SQLite and PostgreSQL.
func TestCrashKill9(t *testing.T) {
	for _, dialect := range []store.Dialect{store.SQLite, store.Postgres} {
		t.Run(string(dialect), func(t *testing.T) {
			testCrash(t, storetest.NewDatabaseURI(t, dialect))
		})
	}
}

func testCrash(t *testing.T, dbURI string) {
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	sb := sbproc.Launch(t, workDir, "github.com/switchboard-matrix/switchboard/cmd/switchboard", hs.RegPath(), sbproc.Config{
		HomeserverURL: onHS.URL, Domain: domain, RegistrationID: onHS.Reg.ID, ASPort: onHS.ASPort,
		DatabaseURI: dbURI, LogLevel: getenv("SWITCHBOARD_JITSIE2E_LOG", "info"),
		Modules: fmt.Sprintf(`  jitsi:
    enabled: true
    url: https://meet.test
    domain: meet.test
    muc_domain: %s
    end_grace: 3s
    xmpp:
      address: %q
      jid: %s@%s
      password: %s
      tls: none
`, xs.MUCDomain, xs.C2SAddr, watcherUser, xs.Domain, watcherPassword),
	})
	defer sb.Stop()
	alice := onHS.NewUser(t, "alice")
	bot := hsBot()
	room := meetingRoom(t, alice, bot, "Night shift")
	widgetID, conf := addMeeting(t, alice, room, bot)

	users := []string{unique("crash1"), unique("crash2")}
	for _, u := range users {
		if err := xs.Register(ctx, u, "pw-"+u); err != nil {
			t.Fatal(err)
		}
	}
	join := func(i int, name string) *prosody.Occupant {
		t.Helper()
		occ, err := xs.JoinMUC(ctx, users[i], "pw-"+users[i], conf, fmt.Sprintf("n%d", i), prosody.JoinOptions{DisplayName: name})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = occ.Close() })
		return occ
	}
	first := join(0, "First")
	waitNotice(t, alice, room, bot, "📞 The meeting has started")
	waitParticipants(t, alice, room, widgetID, []string{"First"})

	// Down while a second participant joins: after the restart the list has both, and the
	// meeting goes on (no second start).
	sb.Kill9()
	second := join(1, "Second")
	sb.Start()
	waitParticipants(t, alice, room, widgetID, []string{"First", "Second"})

	// Down while everybody leaves: after the restart the meeting ends, once.
	sb.Kill9()
	for _, o := range []*prosody.Occupant{first, second} {
		if err := o.Leave(ctx); err != nil {
			t.Fatal(err)
		}
	}
	sb.Start()
	waitNotice(t, alice, room, bot, "The meeting has ended after")
	time.Sleep(4 * time.Second) // longer than end_grace: a doubled end would be out

	count := map[string]int{}
	for _, n := range noticesFrom(t, alice, room, bot) {
		for _, prefix := range []string{"Hello!", "Added a Jitsi", "📞 The meeting has started", "The meeting has ended"} {
			if strings.HasPrefix(n, prefix) {
				count[prefix]++
			}
		}
	}
	for _, prefix := range []string{"Hello!", "Added a Jitsi", "📞 The meeting has started", "The meeting has ended"} {
		if count[prefix] != 1 {
			t.Errorf("%d notices %q…, want 1 (%v)", count[prefix], prefix, count)
		}
	}
	if k, _, _ := widgetOf(t, alice, room); k != widgetID {
		t.Errorf("widget %q after the restarts, want %q", k, widgetID)
	}
}
