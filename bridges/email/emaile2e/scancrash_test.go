package emaile2e

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"maunium.net/go/mautrix/event"

	"github.com/switchboard-matrix/switchboard/config"
	"github.com/switchboard-matrix/switchboard/internal/store"
	"github.com/switchboard-matrix/switchboard/internal/store/storetest"
	"github.com/switchboard-matrix/switchboard/internal/testpeer/clamd"
	"github.com/switchboard-matrix/switchboard/internal/testpeer/matrixtest"
	"github.com/switchboard-matrix/switchboard/internal/testpeer/sbproc"
)

// launchProcess is sbproc.Launch for c, with the base URL of the process's operator
// endpoints, where readiness shows the files held for clamd.
func launchProcess(t *testing.T, c sbproc.Config) (*sbproc.Runner, string) {
	t.Helper()
	r := sbproc.Launch(t, workDir, switchboardPkg, filepath.Join(workDir, "registration.yaml"), c)
	return r, r.OpsURL()
}

// TestScanKill9WhileHeld runs the real binary with scanning (fail closed, a hold of an
// hour) on clamd's Unix socket, with clamd down. A mail with an attachment arrives: its
// text is posted at once (the mail's event is queued before its files are scanned), its
// attachment is held. The process is killed with SIGKILL while it holds the file; clamd
// comes back; the process starts again, reads the mail again and completes it: the
// attachment is in the room once, byte for byte, and the mail's text still once. On SQLite
// and PostgreSQL.
func TestScanKill9WhileHeld(t *testing.T) {
	for _, dialect := range []store.Dialect{store.SQLite, store.Postgres} {
		t.Run(string(dialect), func(t *testing.T) {
			ctx := context.Background()
			dbURI := storetest.NewDatabaseURI(t, dialect)
			srv := clamd.StartTest(t, clamd.Options{})
			alice := newMatrixUser(t, "alice")
			box := newMailbox(t, alice.UserID)
			box.PollInterval = config.Duration(time.Second)
			c := processConfig(hs.URL, dbURI, box, "")
			c.Extra = "scanning:\n  enabled: true\n  clamd: unix://" + srv.SocketPath() + "\n  on_unavailable: fail_closed\n  hold: 1h\n"
			sb, ops := launchProcess(t, c)
			defer sb.Stop()
			room := acceptInvite(t, alice)
			bob := ghostOf(t, "bob@ext.test")

			if err := srv.Halt(); err != nil {
				t.Fatal(err)
			}
			data := randomBytes(t, 50_000)
			raw := fileMail(box.Address, "kill1."+box.Name+"@ext.test", "Akte nach Absturz", "Die Akte liegt bei.",
				mailFile{name: "akte.bin", contentType: "application/octet-stream", data: data})
			if err := dc.Deliver(ctx, box.Address, raw); err != nil {
				t.Fatal(err)
			}
			isMail := func(e *event.Event) bool {
				return e.Sender == bob && strings.HasPrefix(e.Content.AsMessage().Body, "Akte nach Absturz")
			}
			isFile := func(e *event.Event) bool { return e.Content.AsMessage().Body == "akte.bin" }
			root := waitEvent(t, alice, room, "the mail's text while clamd is down", isMail)
			waitHeld(t, ops, 1)
			if n := countEvents(t, alice, room, isFile); n != 0 {
				t.Fatalf("akte.bin is in the room %d times while clamd is down, want not yet", n)
			}

			sb.Kill9()
			if err := srv.Restart(ctx); err != nil {
				t.Fatal(err)
			}
			begin := time.Now()
			sb.Start()
			started := time.Now()
			if got := fileIn(t, alice, room, root.ID, "akte.bin", bob); !bytes.Equal(got, data) {
				t.Errorf("akte.bin: %d bytes in the room are not the %d bytes of the attachment", len(got), len(data))
			}
			t.Logf("the process was ready %s after its start, the attachment in the room %s later",
				started.Sub(begin).Round(100*time.Millisecond), time.Since(started).Round(100*time.Millisecond))
			if n := countEvents(t, alice, room, isMail); n != 1 {
				t.Errorf("the mail is in the room %d times, want 1", n)
			}
			if n := countEvents(t, alice, room, isFile); n != 1 {
				t.Errorf("akte.bin is in the room %d times, want 1", n)
			}
			waitHeld(t, ops, 0)
		})
	}
}

// scans is the count of the process's inbound scans of the email module with verdict
// (clean, infected, known, unavailable) from its metrics at ops; 0 before the first.
func scans(t *testing.T, ops, verdict string) int {
	t.Helper()
	resp, err := http.Get(ops + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(body), "\n") {
		labels, value, ok := strings.Cut(line, "} ")
		if !ok || !strings.HasPrefix(labels, "switchboard_scans_total{") || !strings.Contains(labels, `direction="inbound"`) ||
			!strings.Contains(labels, `module="email"`) || !strings.Contains(labels, `verdict="`+verdict+`"`) {
			continue
		}
		n, err := strconv.ParseFloat(value, 64)
		if err != nil {
			t.Fatalf("metric %s: %v", labels, err)
		}
		return int(n)
	}
	return 0
}

// TestScanVerdictKeptOverKill9 runs the real binary with scanning and kills it with
// SIGKILL after it scanned a mail's attachment (clean) and while it uploads it. clamd is
// then stopped: the restarted process reads the mail again and bridges the attachment
// without a second scan, by the verdict it recorded (metrics: one clean scan before the
// kill, one known verdict after it, no scan). The attachment is in the room once, byte for
// byte.
func TestScanVerdictKeptOverKill9(t *testing.T) {
	ctx := context.Background()
	srv := clamd.StartTest(t, clamd.Options{})
	alice := newMatrixUser(t, "alice")
	box := newMailbox(t, alice.UserID)
	box.PollInterval = config.Duration(time.Second)
	gate := newUploadGate(t, hs.URL)
	c := processConfig(gate.URL, storetest.NewDatabaseURI(t, store.SQLite), box, "")
	c.Extra = "scanning:\n  enabled: true\n  clamd: tcp://" + srv.TCPAddr() + "\n  hold: 1h\n"
	sb, ops := launchProcess(t, c)
	defer sb.Stop()
	room := acceptInvite(t, alice)
	bob := ghostOf(t, "bob@ext.test")

	data := randomBytes(t, 50_000)
	raw := fileMail(box.Address, "verdict1."+box.Name+"@ext.test", "Akte mit Urteil", "Die Akte liegt bei.",
		mailFile{name: "urteil.bin", contentType: "application/octet-stream", data: data})
	gate.hold.Store(true)
	if err := dc.Deliver(ctx, box.Address, raw); err != nil {
		t.Fatal(err)
	}
	root := waitEvent(t, alice, room, "the mail's text", func(e *event.Event) bool {
		return e.Sender == bob && strings.HasPrefix(e.Content.AsMessage().Body, "Akte mit Urteil")
	})
	matrixtest.WaitFor(t, 30*time.Second, "the attachment's upload held", func() (bool, error) { return gate.held.Load() > 0, nil })
	if n := scans(t, ops, "clean"); n != 1 {
		t.Fatalf("%d clean scans before the kill, want 1 (the attachment)", n)
	}

	sb.Kill9()
	if err := srv.Halt(); err != nil {
		t.Fatal(err)
	}
	gate.hold.Store(false)
	sb.Start()
	if got := fileIn(t, alice, room, root.ID, "urteil.bin", bob); !bytes.Equal(got, data) {
		t.Errorf("urteil.bin: %d bytes in the room are not the %d bytes of the attachment", len(got), len(data))
	}
	clean, known, unavailable := scans(t, ops, "clean"), scans(t, ops, "known"), scans(t, ops, "unavailable")
	if clean != 0 || known != 1 || unavailable != 0 {
		t.Errorf("after the restart: %d clean scans, %d known verdicts, %d scans without clamd; want 0, 1, 0", clean, known, unavailable)
	}
	if n := countEvents(t, alice, room, func(e *event.Event) bool { return e.Content.AsMessage().Body == "urteil.bin" }); n != 1 {
		t.Errorf("urteil.bin is in the room %d times, want 1", n)
	}
}
