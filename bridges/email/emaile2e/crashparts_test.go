package emaile2e

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"maunium.net/go/mautrix"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"

	"github.com/switchboard-matrix/switchboard/internal/store"
	"github.com/switchboard-matrix/switchboard/internal/store/storetest"
	"github.com/switchboard-matrix/switchboard/internal/testpeer/matrixtest"
	"github.com/switchboard-matrix/switchboard/internal/testpeer/sbproc"
)

// uploadGate is a proxy in front of the homeserver that can hold media uploads: the
// process under test stops in an upload, and is killed there.
type uploadGate struct {
	URL  string
	hold atomic.Bool
	held atomic.Int32 // uploads that arrived while held
}

func newUploadGate(t *testing.T, target string) *uploadGate {
	t.Helper()
	u, err := url.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	g := &uploadGate{}
	proxy := httputil.NewSingleHostReverseProxy(u)
	proxy.ErrorHandler = func(w http.ResponseWriter, _ *http.Request, _ error) { w.WriteHeader(http.StatusBadGateway) } // a killed client
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost && strings.Contains(r.URL.Path, "/upload") && g.hold.Load() {
			g.held.Add(1)
			for g.hold.Load() {
				select {
				case <-r.Context().Done():
					return // the process was killed
				case <-time.After(20 * time.Millisecond):
				}
			}
		}
		proxy.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	g.URL = srv.URL
	return g
}

// crashInUpload waits until the process is stopped in an upload, with what it queued
// before sent (the event that the caller saw), kills it, lets uploads through again and
// restarts it.
func crashInUpload(t *testing.T, sb *sbproc.Runner, g *uploadGate) {
	t.Helper()
	matrixtest.WaitFor(t, 30*time.Second, "an upload held", func() (bool, error) { return g.held.Load() > 0, nil })
	time.Sleep(time.Second) // the sent event is recorded in the message map
	sb.Kill9()
	g.hold.Store(false)
	g.held.Store(0)
	sb.Start()
}

// countEvents waits a little for copies that may follow and returns how many of the
// room's message events match.
func countEvents(t *testing.T, cli *mautrix.Client, room id.RoomID, match func(*event.Event) bool) int {
	t.Helper()
	time.Sleep(2 * time.Second)
	evts, err := matrixtest.RoomEvents(context.Background(), cli, room, event.EventMessage)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, e := range evts {
		if match(e) {
			n++
		}
	}
	return n
}

// TestAttachmentsAfterCrash reproduces a data-loss window with the real binary: a mail's
// event was queued and sent, and the process was killed before its files were queued
// (here: while uploading the first). The re-read after the restart found the mail's event
// in the message map and passed over the mail, so its files never arrived. Now the mail is
// completed: every file arrives once, and its event is not doubled. The same for the raw
// file of an oversize mail after its notice.
func TestAttachmentsAfterCrash(t *testing.T) {
	ctx := context.Background()
	alice := newMatrixUser(t, "alice")
	box := newMailbox(t, alice.UserID)
	gate := newUploadGate(t, hs.URL)
	sb := startProcessAt(t, gate.URL, storetest.NewDatabaseURI(t, store.SQLite), box, "    max_mail_bytes: 100000\n    max_attachment_bytes: 1000000\n")
	defer sb.Stop()
	room := acceptInvite(t, alice)
	bob := ghostOf(t, "bob@ext.test")
	bot := id.NewUserID("switchboard", domain)

	t.Run("the files of a mail", func(t *testing.T) {
		raw := "From: Bob <bob@ext.test>\nTo: " + box.Address + "\nSubject: Befunde nach Absturz\nMessage-ID: <parts1." + box.Name + "@ext.test>\n" +
			"MIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=\"M\"\n\n--M\nContent-Type: text/plain\n\nzwei Anhänge\n" +
			"--M\nContent-Type: text/plain; name=eins.txt\nContent-Disposition: attachment; filename=eins.txt\n\nInhalt eins\n" +
			"--M\nContent-Type: text/plain; name=zwei.txt\nContent-Disposition: attachment; filename=zwei.txt\n\nInhalt zwei\n--M--\n"
		gate.hold.Store(true)
		if err := dc.Deliver(ctx, box.Address, crlf(raw)); err != nil {
			t.Fatal(err)
		}
		isMail := func(e *event.Event) bool {
			return e.Sender == bob && strings.HasPrefix(e.Content.AsMessage().Body, "Befunde nach Absturz")
		}
		root := waitEvent(t, alice, room, "the mail", isMail)
		crashInUpload(t, sb, gate)

		for name, want := range map[string]string{"eins.txt": "Inhalt eins", "zwei.txt": "Inhalt zwei"} {
			if got := fileIn(t, alice, room, root.ID, name, bob); !strings.Contains(string(got), want) {
				t.Errorf("%s holds %q, want %q", name, got, want)
			}
		}
		if n := countEvents(t, alice, room, isMail); n != 1 {
			t.Errorf("the mail is in the room %d times, want 1", n)
		}
		for _, name := range []string{"eins.txt", "zwei.txt"} {
			if n := countEvents(t, alice, room, func(e *event.Event) bool { return e.Content.AsMessage().Body == name }); n != 1 {
				t.Errorf("%s is in the room %d times, want 1", name, n)
			}
		}
	})
	t.Run("the raw file of an oversize mail", func(t *testing.T) {
		gate.hold.Store(true)
		if err := dc.Deliver(ctx, box.Address, longMail("Bob <bob@ext.test>", box.Address, "bigcrash1."+box.Name+"@ext.test", "Gross nach Absturz", "bigcrash1", 150_000)); err != nil {
			t.Fatal(err)
		}
		isOversizeNotice := func(e *event.Event) bool {
			return e.Sender == bot && strings.Contains(e.Content.AsMessage().Body, `(subject "Gross nach Absturz")`)
		}
		waitEvent(t, alice, room, "the notice of the oversize mail", isOversizeNotice)
		crashInUpload(t, sb, gate)

		if eml := fileIn(t, alice, room, "", "mail.eml", bot); !strings.Contains(string(eml), "END-bigcrash1") {
			t.Errorf("mail.eml (%d bytes) is not the whole mail", len(eml))
		}
		if n := countEvents(t, alice, room, isOversizeNotice); n != 1 {
			t.Errorf("the notice is in the room %d times, want 1", n)
		}
		if n := countEvents(t, alice, room, func(e *event.Event) bool { return e.Content.AsMessage().Body == "mail.eml" }); n != 1 {
			t.Errorf("mail.eml is in the room %d times, want 1", n)
		}
	})
}
