package sipe2e

import (
	"bytes"
	"context"
	"crypto/rand"
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"
	"maunium.net/go/mautrix"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"

	"github.com/switchboard-matrix/switchboard/appservice"
	"github.com/switchboard-matrix/switchboard/internal/store"
	"github.com/switchboard-matrix/switchboard/internal/store/storetest"
	"github.com/switchboard-matrix/switchboard/internal/testpeer/clamd"
	"github.com/switchboard-matrix/switchboard/internal/testpeer/clamd/clamdscan"
	"github.com/switchboard-matrix/switchboard/internal/testpeer/matrixtest"
	"github.com/switchboard-matrix/switchboard/internal/testpeer/peerproc"
	"github.com/switchboard-matrix/switchboard/internal/testpeer/sipphone"
)

// TestScanFileLinks: with the virus scanner on (a real clamd, whose one signature is the
// EICAR test file), a file a Matrix user sends in a DM reaches the SIP phone as a link only
// after the scanner passed it. For the EICAR file no MESSAGE goes out: the sender sees a
// failure status on the event and the notice of the SIP user's ghost naming the file and
// the signature, and the text sent after it reaches the phone. A clean file sent next gets
// its link, which serves it byte for byte. A link sent while scanning was off, to an
// EICAR file, answers 403 once the bridge runs with scanning. Failures name files by name
// and size, never by content.
func TestScanFileLinks(t *testing.T) {
	srv := clamd.StartTest(t, clamd.Options{})
	port, err := peerproc.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	cfg := bridgeConfig()
	cfg.Media.Listen = fmt.Sprintf("127.0.0.1:%d", port)
	cfg.Media.PublicURL = fmt.Sprintf("http://127.0.0.1:%d/files", port)
	st := storetest.Open(t, store.SQLite)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	alice := newMatrixUser(t, "alice")
	phone := newPhone(t, "scan")
	ghost := ghostOf(t, "scan")
	eicar := clamd.EICAR()

	// Before scanning is switched on, the EICAR file goes out as a link like any file.
	r := startBridgeTuned(t, cfg, tuning{st: st})
	if code, _, err := phone.Send(ctx, sipphone.Request{To: sipURIOf(t, alice.UserID), ContentType: "text/plain", Body: []byte("send me the invoice")}); err != nil || code != 202 {
		t.Fatalf("MESSAGE: %d %v", code, err)
	}
	room := matrixtest.AcceptInvite(t, alice)
	sendScanFile(ctx, t, alice, room, "old-invoice.com", eicar)
	oldLink := linkIn(t, waitFileLine(ctx, t, phone, "old-invoice.com"))
	stopCtx, stopCancel := context.WithTimeout(ctx, 15*time.Second)
	defer stopCancel()
	if err := r.core.Stop(stopCtx); err != nil {
		t.Fatal(err)
	}

	startBridgeTuned(t, cfg, tuning{st: st, scan: appservice.Scanning{
		Scanner: clamdscan.Scanner(srv), Outbound: true,
	}})
	begin := time.Now()

	t.Run("infected file refused", func(t *testing.T) {
		infected := sendScanFile(ctx, t, alice, room, "invoice.com", eicar)
		text := unique("the invoice follows by post ")
		if _, err := alice.SendText(ctx, room, text); err != nil {
			t.Fatal(err)
		}
		if _, err := phone.Wait(ctx, "the text after the refused file", func(r *sip.Request) bool {
			return r.Method == sip.MESSAGE && strings.Contains(string(r.Body()), text)
		}); err != nil {
			t.Fatal(err)
		}
		// The core hands a room's events to the bridge in order: had the refused file's line
		// gone out, the phone would hold it by now.
		for _, req := range phone.Received("MESSAGE") {
			if strings.Contains(string(req.Body()), "[file: invoice.com") {
				t.Fatalf("the phone got the refused file's line (%d bytes)", len(req.Body()))
			}
			if bytes.Contains(req.Body(), eicar) {
				t.Errorf("a MESSAGE of %d bytes carries the EICAR file", len(req.Body()))
			}
		}
		if links := linksIn(phone); len(links) != 1 || links[0] != oldLink {
			t.Errorf("the phone got %d link(s), want only the one sent before scanning", len(links))
		}
		want := fmt.Sprintf("⚠️ Your message was not delivered: the virus scanner found %s in the file %q.", clamd.Signature, "invoice.com")
		notice := matrixtest.WaitEvent(t, alice, room, "the failure notice", func(e *event.Event) bool {
			c := e.Content.AsMessage()
			return e.Type == event.EventMessage && c.MsgType == event.MsgNotice && c.RelatesTo != nil &&
				c.RelatesTo.InReplyTo != nil && c.RelatesTo.InReplyTo.EventID == infected
		})
		if body := notice.Content.AsMessage().Body; body != want || notice.Sender != ghost {
			t.Errorf("notice %q from %s, want %q from the ghost %s", body, notice.Sender, want, ghost)
		}
		status := matrixtest.WaitEvent(t, alice, room, "the failure status", func(e *event.Event) bool {
			rel, _ := e.Content.Raw["m.relates_to"].(map[string]any)
			return e.Type == event.BeeperMessageStatus && rel != nil && rel["event_id"] == infected.String()
		})
		if s, reason := status.Content.Raw["status"], fmt.Sprint(status.Content.Raw["error"]); s != "FAIL_PERMANENT" || !strings.Contains(reason, clamd.Signature) {
			t.Errorf("status %v with error %q, want FAIL_PERMANENT naming %s", s, reason, clamd.Signature)
		}
	})

	t.Run("clean file linked", func(t *testing.T) {
		clean := make([]byte, 100<<10)
		if _, err := rand.Read(clean); err != nil {
			t.Fatal(err)
		}
		sent := sendScanFile(ctx, t, alice, room, "readings.bin", clean)
		link := linkIn(t, waitFileLine(ctx, t, phone, "readings.bin"))
		got := httpGet(t, link)
		if got.status != http.StatusOK || !bytes.Equal(got.body, clean) {
			t.Errorf("GET of the clean file's link: %d, %d bytes; want 200 and the %d bytes sent", got.status, len(got.body), len(clean))
		}
		evts, err := matrixtest.RoomEvents(ctx, alice, room, event.BeeperMessageStatus)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range evts {
			if rel, _ := e.Content.Raw["m.relates_to"].(map[string]any); rel != nil && rel["event_id"] == sent.String() {
				t.Errorf("the clean file has a status %v, want none", e.Content.Raw["status"])
			}
		}
	})

	t.Run("link sent before scanning refused", func(t *testing.T) {
		got := httpGet(t, oldLink)
		if got.status != http.StatusForbidden || bytes.Contains(got.body, eicar) {
			t.Errorf("GET of the EICAR file's link from before scanning: %d, %d bytes; want 403 without the file", got.status, len(got.body))
		}
	})
	t.Logf("with scanning: %v", time.Since(begin).Round(10*time.Millisecond))
}

var linkRE = regexp.MustCompile(`https?://\S+`)

// sendScanFile uploads data as the Matrix user and sends it to the room as a file named
// name.
func sendScanFile(ctx context.Context, t *testing.T, cli *mautrix.Client, room id.RoomID, name string, data []byte) id.EventID {
	t.Helper()
	up, err := cli.UploadBytesWithName(ctx, data, "application/octet-stream", name)
	if err != nil {
		t.Fatal(err)
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

// waitFileLine waits for the MESSAGE that names the file and returns its body.
func waitFileLine(ctx context.Context, t *testing.T, phone *sipphone.Phone, name string) string {
	t.Helper()
	msg, err := phone.Wait(ctx, "the line of "+name, func(r *sip.Request) bool {
		return r.Method == sip.MESSAGE && strings.Contains(string(r.Body()), "[file: "+name)
	})
	if err != nil {
		t.Fatal(err)
	}
	return string(msg.Body())
}

// linkIn is the link in a file's line.
func linkIn(t *testing.T, line string) string {
	t.Helper()
	link := linkRE.FindString(line)
	if link == "" {
		t.Fatalf("no link in %q", line)
	}
	return link
}

// linksIn are the links of every MESSAGE the phone received.
func linksIn(phone *sipphone.Phone) []string {
	var out []string
	for _, req := range phone.Received("MESSAGE") {
		if l := linkRE.FindString(string(req.Body())); l != "" {
			out = append(out, l)
		}
	}
	return out
}
