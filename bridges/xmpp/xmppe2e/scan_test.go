package xmppe2e

import (
	"bytes"
	"context"
	"crypto/rand"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"maunium.net/go/mautrix"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"
	"mellium.im/xmpp/jid"

	"github.com/switchboard-matrix/switchboard/appservice"
	"github.com/switchboard-matrix/switchboard/bridges/xmpp"
	"github.com/switchboard-matrix/switchboard/bridges/xmpp/upload"
	"github.com/switchboard-matrix/switchboard/bridges/xmpp/xmsg"
	"github.com/switchboard-matrix/switchboard/internal/testpeer/clamd"
	"github.com/switchboard-matrix/switchboard/internal/testpeer/clamd/clamdscan"
	"github.com/switchboard-matrix/switchboard/internal/testpeer/matrixtest"
	"github.com/switchboard-matrix/switchboard/internal/testpeer/sbcore"
)

// The scanning tests run the bridge with a real clamd (internal/testpeer/clamd), whose one
// signature is the EICAR test file, over TCP, fail closed, with Matrix files going out
// scanned too. Files travel as XEP-0066 links to Prosody's upload service both ways. The
// tests name files by name and size, never by content.

// startScanningBridge starts clamd and the bridge with cfg, scanning with that clamd and
// holding files for hold while it cannot be reached. It returns the bridge, clamd and the
// base URL of the core's operator endpoints.
func startScanningBridge(t *testing.T, cfg xmpp.Config, hold time.Duration) (*running, *clamd.Server, string) {
	t.Helper()
	srv := clamd.StartTest(t, clamd.Options{})
	r := startBridgeCore(t, nil, cfg, true, sbcore.Options{Scanning: appservice.Scanning{
		Scanner: clamdscan.Scanner(srv), Outbound: true, Hold: hold,
	}})
	return r, srv, sbcore.ServeOps(t, r.core)
}

// randomBytes is n random bytes: a file that matches no signature and no other test sends.
func randomBytes(t testing.TB, n int) []byte {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return b
}

// uploadXMPP puts data on Prosody's upload service (XEP-0363) as the XMPP user and returns
// its link.
func uploadXMPP(t *testing.T, c *xclient, name, mimeType string, data []byte) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	res := c.mustAsk("get", jid.MustParse(xs.UploadDomain), upload.Request(name, int64(len(data)), mimeType))
	slot, err := upload.ParseSlot(res.Inner)
	if err != nil {
		t.Fatal(err)
	}
	if err := upload.Put(ctx, http.DefaultClient, slot, data, mimeType); err != nil {
		t.Fatalf("upload %s (%d bytes): %v", name, len(data), err)
	}
	return slot.GetURL
}

// sendOOB sends link to to as an XMPP chat message with the link as body and XEP-0066 OOB,
// and returns the message's id.
func sendOOB(c *xclient, to jid.JID, link string) string {
	msgID := unique("f-")
	c.send(&xmsg.Message{ID: msgID, Type: "chat", To: to, Body: link, OOB: []xmsg.OOB{{URL: link}}})
	return msgID
}

// sendMatrixFile uploads data as the Matrix user and sends it to the room as an m.file
// named name.
func sendMatrixFile(t *testing.T, cli *mautrix.Client, room id.RoomID, name string, data []byte) id.EventID {
	t.Helper()
	ctx := context.Background()
	up, err := cli.UploadBytesWithName(ctx, data, "application/octet-stream", name)
	if err != nil {
		t.Fatalf("upload %s (%d bytes): %v", name, len(data), err)
	}
	resp, err := cli.SendMessageEvent(ctx, room, event.EventMessage, &event.MessageEventContent{
		MsgType: event.MsgFile, Body: name, FileName: name, URL: up.ContentURI.CUString(),
		Info: &event.FileInfo{MimeType: "application/octet-stream", Size: len(data)},
	})
	if err != nil {
		t.Fatal(err)
	}
	return resp.EventID
}

// linkTo matches a message from the Matrix user's puppet that carries a link to a file
// named name.
func linkTo(from jid.JID, name string) func(*xmsg.Message) bool {
	return func(m *xmsg.Message) bool {
		return m.From.Bare().Equal(from) && len(m.OOB) > 0 && strings.HasSuffix(m.OOB[0].URL, "/"+name)
	}
}

// isFile reports whether e is a Matrix file message (m.file, m.image, m.video, m.audio).
func isFile(e *event.Event) bool {
	if e.Type != event.EventMessage {
		return false
	}
	switch e.Content.AsMessage().MsgType {
	case event.MsgFile, event.MsgImage, event.MsgVideo, event.MsgAudio:
		return true
	}
	return false
}

// downloadMatrix downloads the file of a Matrix file message.
func downloadMatrix(t *testing.T, cli *mautrix.Client, e *event.Event) []byte {
	t.Helper()
	c := e.Content.AsMessage()
	uri, err := c.URL.Parse()
	if err != nil {
		t.Fatalf("event %s: url %q: %v", e.ID, c.URL, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	data, err := cli.DownloadBytes(ctx, uri)
	if err != nil {
		t.Fatalf("download the file %q of event %s: %v", c.Body, e.ID, err)
	}
	return data
}

// TestScanInboundEICAR: an XMPP user sends the EICAR test file as a link in a direct chat,
// then a clean file. In place of the EICAR file the room gets a notice naming the sender's
// JID, the file and the signature, and the sender gets a not-acceptable error for
// that message; the clean file arrives after the notice, byte for byte. No file in the room
// is the EICAR file, and its link is not posted either.
func TestScanInboundEICAR(t *testing.T) {
	startScanningBridge(t, bridgeConfig(), time.Hour)
	bob := newXClient(t, "bob")
	alice := newMatrixUser(t, "alice")
	aliceJID := puppetOf(t, alice.UserID)
	bobGhost := ghostOf(t, bob.bare().String())
	room := openDM(t, alice, bob.bare())

	eicar := clamd.EICAR()
	clean := randomBytes(t, 40_000)
	eicarLink := uploadXMPP(t, bob, "eicar.com", "application/octet-stream", eicar)
	cleanLink := uploadXMPP(t, bob, "report.bin", "application/octet-stream", clean)
	eicarID := sendOOB(bob, aliceJID, eicarLink)
	cleanID := sendOOB(bob, aliceJID, cleanLink)

	cleanEvt := waitMatrix(t, alice, room, "the clean file", func(e *event.Event) bool {
		return e.Sender == bobGhost && isFile(e) && e.Content.AsMessage().Body == "report.bin"
	})
	if got := downloadMatrix(t, alice, cleanEvt); !bytes.Equal(got, clean) {
		t.Errorf("Matrix has %d bytes for report.bin that differ from the %d sent", len(got), len(clean))
	}
	want := fmt.Sprintf("🛡️ The file %q from %s was not bridged: the virus scanner found %s in the file %q.",
		"eicar.com", bob.bare(), clamd.Signature, "eicar.com")
	notice := waitMatrix(t, alice, room, "the notice of the refused file", func(e *event.Event) bool {
		return e.Type == event.EventMessage && e.Content.AsMessage().MsgType == event.MsgNotice &&
			strings.Contains(e.Content.AsMessage().Body, "eicar.com")
	})
	// The bot is not in the DM: the sender's ghost posts the notice, as it reports failures
	// there (appservice.FailureSender).
	if body := notice.Content.AsMessage().Body; notice.Sender != bobGhost || body != want {
		t.Errorf("notice %q from %s, want %q from %s", body, notice.Sender, want, bobGhost)
	}

	evts, err := matrixtest.RoomMessages(context.Background(), alice, room)
	if err != nil {
		t.Fatal(err)
	}
	order := map[id.EventID]int{}
	for i, e := range evts {
		order[e.ID] = i
		if strings.Contains(e.Content.AsMessage().Body, eicarLink) {
			t.Errorf("event %s (%s) posts the refused file's link", e.ID, e.Sender)
		}
		if !isFile(e) || e.ID == cleanEvt.ID {
			continue
		}
		if got := downloadMatrix(t, alice, e); bytes.Equal(got, eicar) {
			t.Errorf("event %s from %s is the EICAR file", e.ID, e.Sender)
		} else {
			t.Errorf("event %s from %s is an unexpected file %q", e.ID, e.Sender, e.Content.AsMessage().Body)
		}
	}
	if order[notice.ID] > order[cleanEvt.ID] {
		t.Errorf("the notice for the file sent first came after the clean file sent second")
	}

	m := bob.waitMessage("an error for the EICAR message", func(m *xmsg.Message) bool { return m.ID == eicarID && m.Type == "error" })
	if m.Error == nil || m.Error.Type != "modify" || m.Error.Condition != "not-acceptable" || !m.From.Bare().Equal(aliceJID) {
		t.Errorf("error %+v from %s, want modify/not-acceptable from %s", m.Error, m.From, aliceJID)
	} else if !strings.Contains(m.Error.Text, clamd.Signature) {
		t.Errorf("error text %q does not name the signature", m.Error.Text)
	}
	if errs := bob.messages(func(m *xmsg.Message) bool { return m.ID == cleanID && m.Type == "error" }); len(errs) != 0 {
		t.Errorf("the clean file's message got an error: %+v", errs[0].Error)
	}
}

// TestScanOutboundEICAR: a Matrix user sends the EICAR test file in a direct chat, then a
// text. The text reaches the XMPP user, the file does not (no link to it, ever); the Matrix
// user sees a failure status on the file's event and a notice naming the signature.
func TestScanOutboundEICAR(t *testing.T) {
	startScanningBridge(t, bridgeConfig(), time.Hour)
	ctx := context.Background()
	bob := newXClient(t, "bob")
	alice := newMatrixUser(t, "alice")
	aliceJID := puppetOf(t, alice.UserID)
	room := openDM(t, alice, bob.bare())

	sent := sendMatrixFile(t, alice, room, "eicar.com", clamd.EICAR())
	if _, err := alice.SendText(ctx, room, "did you get the file?"); err != nil {
		t.Fatal(err)
	}
	bob.waitMessage("the text after the file", func(m *xmsg.Message) bool {
		return m.From.Bare().Equal(aliceJID) && m.Body == "did you get the file?"
	})
	time.Sleep(time.Second) // a file sent late would be a bug too
	for _, m := range bob.messages(func(m *xmsg.Message) bool { return m.From.Bare().Equal(aliceJID) }) {
		if len(m.OOB) > 0 || strings.Contains(m.Body, "eicar") {
			t.Errorf("the XMPP user got %q (links %d) from alice", m.Body, len(m.OOB))
		}
	}

	reason := fmt.Sprintf("the virus scanner found %s in the file %q", clamd.Signature, "eicar.com")
	notice := waitFailureNotice(t, alice, room, sent, reason)
	if want := "⚠️ Your message was not delivered: " + reason + "."; notice.Content.AsMessage().Body != want {
		t.Errorf("notice %q, want %q", notice.Content.AsMessage().Body, want)
	}
}

// TestScanCleanFiles: clean files of 1 byte, 1 MiB and 20 MiB pass the scanner and arrive
// byte for byte both ways: an XMPP user's link as a Matrix file, a Matrix file as a link
// on the XMPP server's upload service. It runs on the package's Synapse: Dendrite takes
// files of at most 10 MiB (media_api.max_file_size_bytes), Synapse 50 MiB.
func TestScanCleanFiles(t *testing.T) { onSynapse(t, testScanCleanFiles) }

func testScanCleanFiles(t *testing.T) {
	raiseUploadLimit(t, 32<<20)
	cfg := bridgeConfig()
	cfg.Media.MaxBytes = 32 << 20 // clamd takes 25 MiB
	_, _, ops := startScanningBridge(t, cfg, time.Hour)
	bob := newXClient(t, "bob")
	alice := newMatrixUser(t, "alice")
	aliceJID := puppetOf(t, alice.UserID)
	bobGhost := ghostOf(t, bob.bare().String())
	room := openDM(t, alice, bob.bare())

	sizes := []int{1, 1 << 20, 20 << 20}
	for _, size := range sizes {
		t.Run(fmt.Sprintf("%d bytes xmpp to matrix", size), func(t *testing.T) {
			data := randomBytes(t, size)
			name := unique("in-") + ".bin"
			sendOOB(bob, aliceJID, uploadXMPP(t, bob, name, "application/octet-stream", data))
			e := waitMatrix(t, alice, room, name+" in Matrix", func(e *event.Event) bool {
				return e.Sender == bobGhost && isFile(e) && e.Content.AsMessage().Body == name
			})
			if got := downloadMatrix(t, alice, e); !bytes.Equal(got, data) {
				t.Errorf("Matrix has %d bytes that differ from the %d sent", len(got), len(data))
			}
		})
		t.Run(fmt.Sprintf("%d bytes matrix to xmpp", size), func(t *testing.T) {
			data := randomBytes(t, size)
			name := unique("out-") + ".bin"
			sendMatrixFile(t, alice, room, name, data)
			m := bob.waitMessage("the link to "+name, linkTo(aliceJID, name))
			if got := httpGet(t, m.OOB[0].URL); !bytes.Equal(got, data) {
				t.Errorf("the link gives %d bytes that differ from the %d sent", len(got), len(data))
			}
		})
	}
	// Every file was scanned, whole: none passed unscanned or by a recorded verdict.
	total := 0
	for _, size := range sizes {
		total += size
	}
	metrics := string(httpGet(t, ops+"/metrics"))
	for _, dir := range []appservice.Direction{appservice.Inbound, appservice.Outbound} {
		for series, want := range map[string]int{
			fmt.Sprintf(`switchboard_scans_total{direction="%s",module="xmpp",verdict="clean"}`, dir): len(sizes),
			fmt.Sprintf(`switchboard_scanned_bytes_total{direction="%s"}`, dir):                       total,
		} {
			if got, ok := metricValue(metrics, series); !ok || got != float64(want) {
				t.Errorf("%s = %v (found %v), want %d", series, got, ok, want)
			}
		}
	}
}

// metricValue is the value of one series in Prometheus's text format.
func metricValue(metrics, series string) (float64, bool) {
	for _, line := range strings.Split(metrics, "\n") {
		if v, ok := strings.CutPrefix(line, series+" "); ok {
			f, err := strconv.ParseFloat(v, 64)
			return f, err == nil
		}
	}
	return 0, false
}

// raiseUploadLimit raises the package's Prosody's upload limit (http_file_share_size_limit,
// 10 MiB by default) to limit until t ends: it puts the option in the global section of
// Prosody's config, where the upload component finds it, and restarts Prosody; at t's end
// it puts the config back and restarts Prosody again. Start the bridge and XMPP clients
// after it.
func raiseUploadLimit(t *testing.T, limit int64) {
	t.Helper()
	path := filepath.Join(xs.Dir, "cfg.lua") // written by internal/testpeer/prosody
	orig, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	restart := func(cfg []byte) error {
		if err := os.WriteFile(path, cfg, 0o600); err != nil {
			return err
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		return xs.Restart(ctx)
	}
	patched := fmt.Appendf(nil, "http_file_share_size_limit = %d -- raised by %s\n%s", limit, t.Name(), orig)
	if err := restart(patched); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := restart(orig); err != nil {
			t.Errorf("restore Prosody's config: %v", err)
		}
	})
}

// TestScanHeldWhileClamdDown: while clamd is down, a Matrix user's file is held, not sent
// (the readiness check shows the scanner unreachable with one file held); once clamd is
// back the file reaches the XMPP user, once and byte for byte, and nothing is held.
func TestScanHeldWhileClamdDown(t *testing.T) {
	_, srv, ops := startScanningBridge(t, bridgeConfig(), time.Hour)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	bob := newXClient(t, "bob")
	alice := newMatrixUser(t, "alice")
	aliceJID := puppetOf(t, alice.UserID)
	room := openDM(t, alice, bob.bare())

	if err := srv.Halt(); err != nil {
		t.Fatal(err)
	}
	data := randomBytes(t, 300_000)
	sendMatrixFile(t, alice, room, "held.bin", data)
	var state string
	matrixtest.WaitFor(t, 20*time.Second, "the scanner to be unreachable with the file held", func() (bool, error) {
		var err error
		state, err = sbcore.ScannerState(ops)
		return strings.HasPrefix(state, "unreachable; 1 file(s) held"), err
	})
	t.Logf("scanner: %s", strings.SplitN(state, ":", 2)[0])
	held := time.Now()
	for time.Since(held) < 3*time.Second {
		if got := bob.messages(linkTo(aliceJID, "held.bin")); len(got) != 0 {
			t.Fatalf("the file was sent while clamd was down")
		}
		time.Sleep(200 * time.Millisecond)
	}

	if err := srv.Restart(ctx); err != nil {
		t.Fatal(err)
	}
	restarted := time.Now()
	m := bob.waitMessage("the held file", linkTo(aliceJID, "held.bin"))
	t.Logf("the file arrived %v after clamd's restart", time.Since(restarted).Round(100*time.Millisecond))
	if got := httpGet(t, m.OOB[0].URL); !bytes.Equal(got, data) {
		t.Errorf("the link gives %d bytes that differ from the %d sent", len(got), len(data))
	}
	if _, err := alice.SendText(ctx, room, "and a text"); err != nil {
		t.Fatal(err)
	}
	bob.waitMessage("the text after the file", func(m *xmsg.Message) bool { return m.From.Bare().Equal(aliceJID) && m.Body == "and a text" })
	time.Sleep(500 * time.Millisecond)
	if got := bob.messages(linkTo(aliceJID, "held.bin")); len(got) != 1 {
		t.Errorf("the file arrived %d times, want once", len(got))
	}
	if state, err := sbcore.ScannerState(ops); err != nil || !strings.HasPrefix(state, "ok") || strings.Contains(state, "held") {
		t.Errorf("scanner state %q (%v) after clamd's restart, want ok with nothing held", state, err)
	}
}
