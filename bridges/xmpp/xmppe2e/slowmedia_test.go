package xmppe2e

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"maunium.net/go/mautrix"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"

	"github.com/switchboard-matrix/switchboard/bridges/xmpp/xmsg"
	"github.com/switchboard-matrix/switchboard/config"
	"github.com/switchboard-matrix/switchboard/internal/store"
	"github.com/switchboard-matrix/switchboard/internal/store/storetest"
	"github.com/switchboard-matrix/switchboard/internal/testpeer/matrixtest"
	"github.com/switchboard-matrix/switchboard/internal/testpeer/peerproc"
	"github.com/switchboard-matrix/switchboard/internal/testpeer/sbproc"
)

// slowServer serves files whose answers are held until release is called: a remote file
// server as slow as a test needs, without timing.
type slowServer struct {
	*httptest.Server
	mu      sync.Mutex
	started map[string]int // guarded by mu; requests begun per path
	served  map[string]int // guarded by mu; answers sent per path
	held    chan struct{}  // closed by release
	once    sync.Once
}

func newSlowServer(t *testing.T) *slowServer {
	s := &slowServer{started: map[string]int{}, served: map[string]int{}, held: make(chan struct{})}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		s.started[r.URL.Path]++
		s.mu.Unlock()
		select {
		case <-s.held:
		case <-r.Context().Done():
			return
		}
		w.Header().Set("Content-Type", "text/plain")
		w.Header().Set("Content-Disposition", `attachment; filename="`+path.Base(r.URL.Path)+`"`)
		_, _ = w.Write([]byte("the content of " + r.URL.Path))
		s.mu.Lock()
		s.served[r.URL.Path]++
		s.mu.Unlock()
	}))
	t.Cleanup(func() {
		s.release()
		s.Close()
	})
	return s
}

func (s *slowServer) release() { s.once.Do(func() { close(s.held) }) }

// counts returns the requests begun and answered for p.
func (s *slowServer) counts(p string) (started, served int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.started[p], s.served[p]
}

// totalServed is the number of answers sent for all paths.
func (s *slowServer) totalServed() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, v := range s.served {
		n += v
	}
	return n
}

// launchBridgeProcess starts the switchboard binary with the XMPP bridge on a fresh
// database, logging at debug into the returned file. extra is YAML added to the bridge's
// section (indented by four spaces).
func launchBridgeProcess(t *testing.T, dialect store.Dialect, extra string) (*sbproc.Runner, string) {
	t.Helper()
	dir := t.TempDir()
	port, err := peerproc.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	cfg := sbproc.WriteConfig(t, dir, sbproc.Config{
		HomeserverURL: hs.URL, Domain: domain, RegistrationID: reg.ID, ASPort: asPort, MetricsPort: port,
		DatabaseURI: storetest.NewDatabaseURI(t, dialect), LogLevel: "debug",
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
%s`, xs.ComponentAddr, xs.ComponentDomain, xs.ComponentSecret, xs.Domain, xs.UploadDomain, extra),
	})
	logPath := filepath.Join(dir, "switchboard.log")
	r := sbproc.NewRunner(t, sbproc.Build(t, workDir, "github.com/switchboard-matrix/switchboard/cmd/switchboard"), cfg, regPath, port, logPath)
	r.Start()
	t.Cleanup(r.Stop)
	return r, logPath
}

// waitStarted waits until the server has begun n requests for p.
func (s *slowServer) waitStarted(t *testing.T, p string, n int) {
	t.Helper()
	matrixtest.WaitFor(t, 60*time.Second, fmt.Sprintf("request %d for %s", n, p), func() (bool, error) {
		started, _ := s.counts(p)
		return started >= n, nil
	})
}

// fileBodies returns the bodies of sender's messages in the room, oldest first.
func fileBodies(t *testing.T, cli *mautrix.Client, room id.RoomID, sender id.UserID) []string {
	t.Helper()
	evts, err := matrixtest.RoomMessages(context.Background(), cli, room)
	if err != nil {
		t.Fatal(err)
	}
	return matrixtest.Bodies(evts, sender)
}

// TestSlowLinksDoNotStallOtherChats (issue 10, item 10) runs the real binary: an XMPP
// user sends a message with three links to a file server that holds its answers; while
// the server holds them, another XMPP user's message to another Matrix user reaches
// Matrix. Then the server answers, and the first chat shows its text, the three files and
// the sender's next message in this order. The debug log holds none of the bodies or
// links, in either direction (item 4).
func TestSlowLinksDoNotStallOtherChats(t *testing.T) {
	slow := newSlowServer(t)
	_, logPath := launchBridgeProcess(t, store.SQLite, "")
	bob, carol := newXClient(t, "bob"), newXClient(t, "carol")
	alice, dave := newMatrixUser(t, "alice"), newMatrixUser(t, "dave")
	aliceRoom, daveRoom := openDM(t, alice, bob.bare()), openDM(t, dave, carol.bare())
	bobGhost, carolGhost := ghostOf(t, bob.bare().String()), ghostOf(t, carol.bare().String())

	secret := unique("secret-text-")
	var oob []xmsg.OOB
	for i := 1; i <= 3; i++ {
		oob = append(oob, xmsg.OOB{URL: fmt.Sprintf("%s/%s/slow%d.txt", slow.URL, secret, i)})
	}
	bob.send(&xmsg.Message{ID: unique("m1-"), Type: "chat", To: puppetOf(t, alice.UserID), Body: secret + " three files", OOB: oob})
	slow.waitStarted(t, "/"+secret+"/slow1.txt", 1)
	bob.send(&xmsg.Message{ID: unique("m2-"), Type: "chat", To: puppetOf(t, alice.UserID), Body: secret + " after the files"})
	carol.send(&xmsg.Message{ID: unique("c-"), Type: "chat", To: puppetOf(t, dave.UserID), Body: secret + " unrelated"})

	waitMatrix(t, dave, daveRoom, "carol's message while bob's files download", bodyIs(carolGhost, secret+" unrelated"))
	if n := slow.totalServed(); n != 0 {
		t.Fatalf("the file server answered %d requests before carol's message arrived; want it still holding them", n)
	}
	if got := fileBodies(t, alice, aliceRoom, bobGhost); len(got) > 1 {
		t.Errorf("alice's room has %q while the first file downloads; want at most the first message's text", got)
	}

	slow.release()
	waitMatrix(t, alice, aliceRoom, "bob's second message", bodyIs(bobGhost, secret+" after the files"))
	want := []string{secret + " three files", "slow1.txt", "slow2.txt", "slow3.txt", secret + " after the files"}
	if got := fileBodies(t, alice, aliceRoom, bobGhost); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("alice's room has\n%q\nwant\n%q", got, want)
	}

	if _, err := dave.SendText(context.Background(), daveRoom, secret+" reply"); err != nil {
		t.Fatal(err)
	}
	carol.waitMessage("dave's reply", func(m *xmsg.Message) bool { return m.Body == secret+" reply" })
	log, err := os.ReadFile(logPath)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(log), `"level":"debug"`) {
		t.Errorf("the log has no debug lines; the check below proves nothing")
	}
	if strings.Contains(string(log), secret) {
		t.Errorf("the debug log holds a message body or link (%s)", secret)
	}
}

// TestSlowLinksSurviveKill9 (issue 10, item 10) kills the real binary with SIGKILL while a
// message's links download and a later message of the same chat waits behind it (its
// receipt already sent): after the restart both arrive, each once, in order. On SQLite and
// PostgreSQL.
func TestSlowLinksSurviveKill9(t *testing.T) {
	for _, dialect := range []store.Dialect{store.SQLite, store.Postgres} {
		t.Run(string(dialect), func(t *testing.T) { testSlowLinksSurviveKill9(t, dialect) })
	}
}

func testSlowLinksSurviveKill9(t *testing.T, dialect store.Dialect) {
	slow := newSlowServer(t)
	r, _ := launchBridgeProcess(t, dialect, "")
	bob := newXClient(t, "bob")
	alice := newMatrixUser(t, "alice")
	room := openDM(t, alice, bob.bare())
	bobGhost := ghostOf(t, bob.bare().String())
	to := puppetOf(t, alice.UserID)

	tag := unique("k")
	link := func(i int) string { return fmt.Sprintf("%s/%s/file%d.txt", slow.URL, tag, i) }
	bob.send(&xmsg.Message{ID: tag + "-1", Type: "chat", To: to, Body: tag + " two files",
		OOB: []xmsg.OOB{{URL: link(1)}, {URL: link(2)}}})
	slow.waitStarted(t, "/"+tag+"/file1.txt", 1)
	second := tag + "-2"
	bob.send(&xmsg.Message{ID: second, Type: "chat", To: to, Body: tag + " waits behind", RequestReceipt: true})
	bob.waitMessage("the receipt of the waiting message", func(m *xmsg.Message) bool { return m.Received == second })

	r.Kill9()
	r.Start()
	slow.waitStarted(t, "/"+tag+"/file1.txt", 2) // the download starts again
	slow.release()
	waitMatrix(t, alice, room, "the waiting message", bodyIs(bobGhost, tag+" waits behind"))
	want := []string{tag + " two files", "file1.txt", "file2.txt", tag + " waits behind"}
	if got := fileBodies(t, alice, room, bobGhost); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("the room has\n%q\nwant each once, in order:\n%q", got, want)
	}
}

// TestLinkLimits (issue 10, item 10): of a message's links only media.max_links are
// downloaded, the rest arrive as links; a link whose download outlasts
// media.message_timeout arrives as a link.
func TestLinkLimits(t *testing.T) {
	slow := newSlowServer(t)
	fast := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		_, _ = w.Write([]byte("fast " + r.URL.Path))
	}))
	defer fast.Close()
	cfg := bridgeConfig()
	cfg.Media.MaxLinks = 2
	cfg.Media.MessageTimeout = config.Duration(time.Second) // the held link never answers in time
	startBridgeWith(t, nil, cfg, true)
	bob := newXClient(t, "bob")
	alice := newMatrixUser(t, "alice")
	room := openDM(t, alice, bob.bare())
	bobGhost := ghostOf(t, bob.bare().String())
	to := puppetOf(t, alice.UserID)

	t.Run("links over max_links stay links", func(t *testing.T) {
		var oob []xmsg.OOB
		for i := 1; i <= 3; i++ {
			oob = append(oob, xmsg.OOB{URL: fmt.Sprintf("%s/cap%d.txt", fast.URL, i)})
		}
		bob.send(&xmsg.Message{ID: unique("cap-"), Type: "chat", To: to, Body: "three links", OOB: oob})
		e := waitMatrix(t, alice, room, "the third link as text", func(e *event.Event) bool {
			return e.Sender == bobGhost && strings.HasPrefix(e.Content.AsMessage().Body, oob[2].URL)
		})
		if body := e.Content.AsMessage().Body; !strings.Contains(body, "more links than the bridge downloads") {
			t.Errorf("third link %q, want the reason", body)
		}
		got := fileBodies(t, alice, room, bobGhost)
		if !contains(got, "cap1.txt") || !contains(got, "cap2.txt") {
			t.Errorf("room has %q, want the first two links as files", got)
		}
	})

	t.Run("a download over message_timeout stays a link", func(t *testing.T) {
		held := slow.URL + "/held.txt"
		bob.send(&xmsg.Message{ID: unique("slow-"), Type: "chat", To: to, Body: held, OOB: []xmsg.OOB{{URL: held}}})
		e := waitMatrix(t, alice, room, "the held link as text", func(e *event.Event) bool {
			return e.Sender == bobGhost && strings.HasPrefix(e.Content.AsMessage().Body, held)
		})
		if body := e.Content.AsMessage().Body; !strings.Contains(body, "the downloads took too long") {
			t.Errorf("held link %q, want the reason", body)
		}
		if _, served := slow.counts("/held.txt"); served != 0 {
			t.Errorf("the held link was served")
		}
	})
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// TestLinkBacklog (issue 10, item 10): when more than 20 messages of one conversation wait
// behind a slow download, the links of further ones are not downloaded but arrive as links
// at once after their turn, so that a flood of links drains quickly; the ones before the
// limit are downloaded.
func TestLinkBacklog(t *testing.T) {
	slow := newSlowServer(t)
	fast := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		_, _ = w.Write([]byte("fast " + r.URL.Path))
	}))
	defer fast.Close()
	startBridge(t, nil)
	bob := newXClient(t, "bob")
	alice := newMatrixUser(t, "alice")
	room := openDM(t, alice, bob.bare())
	bobGhost := ghostOf(t, bob.bare().String())
	to := puppetOf(t, alice.UserID)

	held := slow.URL + "/blocker.txt"
	bob.send(&xmsg.Message{ID: unique("b-"), Type: "chat", To: to, Body: held, OOB: []xmsg.OOB{{URL: held}}})
	slow.waitStarted(t, "/blocker.txt", 1)
	const n = 21
	var last string
	for i := 1; i <= n; i++ {
		link := fmt.Sprintf("%s/backlog%02d.txt", fast.URL, i)
		last = unique("q-")
		bob.send(&xmsg.Message{ID: last, Type: "chat", To: to, Body: link, OOB: []xmsg.OOB{{URL: link}}, RequestReceipt: true})
	}
	bob.waitMessage("the receipt of the last queued message", func(m *xmsg.Message) bool { return m.Received == last })
	slow.release()

	lastLink := fmt.Sprintf("%s/backlog%02d.txt", fast.URL, n)
	e := waitMatrix(t, alice, room, "the last link as text", func(e *event.Event) bool {
		return e.Sender == bobGhost && strings.HasPrefix(e.Content.AsMessage().Body, lastLink)
	})
	if body := e.Content.AsMessage().Body; !strings.Contains(body, "too many files from this conversation are waiting") {
		t.Errorf("the last link %q, want the reason", body)
	}
	got := fileBodies(t, alice, room, bobGhost)
	if !contains(got, "blocker.txt") || !contains(got, "backlog19.txt") || contains(got, "backlog21.txt") {
		t.Errorf("room has %q, want the blocker and backlog01…19 as files, not 21", got)
	}
}
