package sipe2e

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"
	"maunium.net/go/mautrix/event"

	"github.com/switchboard-matrix/switchboard/internal/testpeer/matrixtest"
	"github.com/switchboard-matrix/switchboard/internal/testpeer/peerproc"
	"github.com/switchboard-matrix/switchboard/internal/testpeer/sipphone"
)

// TestFileAsLink: a file a Matrix user sends in a DM reaches the SIP user as a line with
// its name and a link served by the bridge; the link gives the file's bytes, and a link
// with another id gives 404.
func TestFileAsLink(t *testing.T) {
	port, err := peerproc.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	cfg := bridgeConfig()
	cfg.Media.Listen = fmt.Sprintf("127.0.0.1:%d", port)
	cfg.Media.PublicURL = fmt.Sprintf("http://127.0.0.1:%d/files", port)
	startBridgeWith(t, nil, cfg)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	alice := newMatrixUser(t, "alice")
	phone := newPhone(t, "ivan")
	if code, _, err := phone.Send(ctx, sipphone.Request{To: sipURIOf(t, alice.UserID), ContentType: "text/plain", Body: []byte("send me the file")}); err != nil || code != 202 {
		t.Fatalf("MESSAGE: %d %v", code, err)
	}
	room := matrixtest.AcceptInvite(t, alice)
	data := bytes.Repeat([]byte("switchboard file "), 1000)
	up, err := alice.UploadBytesWithName(ctx, data, "text/plain", "report.txt")
	if err != nil {
		t.Fatal(err)
	}
	content := &event.MessageEventContent{MsgType: event.MsgFile, Body: "report.txt", URL: up.ContentURI.CUString(),
		Info: &event.FileInfo{MimeType: "text/plain", Size: len(data)}}
	if _, err := alice.SendMessageEvent(ctx, room, event.EventMessage, content); err != nil {
		t.Fatal(err)
	}
	msg, err := phone.Wait(ctx, "the file's line", func(r *sip.Request) bool { return strings.Contains(string(r.Body()), "report.txt") })
	if err != nil {
		t.Fatal(err)
	}
	link := regexp.MustCompile(`https?://\S+`).FindString(string(msg.Body()))
	if link == "" {
		t.Fatalf("no link in %q", msg.Body())
	}
	got := httpGet(t, link)
	if got.status != http.StatusOK || !bytes.Equal(got.body, data) {
		t.Fatalf("GET %s: %d, %d bytes; want 200 and the %d bytes of the file", link, got.status, len(got.body), len(data))
	}
	if !strings.Contains(got.disposition, "report.txt") {
		t.Errorf("Content-Disposition %q does not name the file", got.disposition)
	}
	forged := regexp.MustCompile(`/[0-9a-f]{32}/`).ReplaceAllString(link, "/0123456789abcdef0123456789abcdef/")
	if g := httpGet(t, forged); g.status != http.StatusNotFound {
		t.Errorf("GET of a forged link: %d, want 404", g.status)
	}
}

type httpResult struct {
	status      int
	body        []byte
	disposition string
}

func httpGet(t *testing.T, url string) httpResult {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return httpResult{status: resp.StatusCode, body: body, disposition: resp.Header.Get("Content-Disposition")}
}
