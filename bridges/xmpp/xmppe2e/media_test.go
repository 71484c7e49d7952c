package xmppe2e

import (
	"bytes"
	"context"
	"crypto/rand"
	"image/color"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"maunium.net/go/mautrix"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"
	"mellium.im/xmpp/jid"

	"github.com/switchboard-matrix/switchboard/bridges/xmpp/upload"
	"github.com/switchboard-matrix/switchboard/bridges/xmpp/xmsg"
	"github.com/switchboard-matrix/switchboard/internal/testpeer/matrixtest"
)

// TestMedia covers files in a 1:1 chat: a Matrix file reaches XMPP as a link to the XMPP
// server's upload service (XEP-0363, never the homeserver's media URL) with XEP-0066 OOB,
// an XMPP user's uploaded file reaches Matrix as a Matrix file with the same bytes, and a
// link to a file over the bridge's limit reaches Matrix as the link with an explanation.
func TestMedia(t *testing.T) {
	startBridge(t, nil)
	ctx := context.Background()
	bob := newXClient(t, "bob")
	alice := newMatrixUser(t, "alice")
	aliceJID := puppetOf(t, alice.UserID)
	bobGhost := ghostOf(t, bob.bare().String())
	room := openDM(t, alice, bob.bare())

	t.Run("matrix to xmpp", func(t *testing.T) {
		for _, tc := range []struct {
			name     string
			msgType  event.MessageType
			fileName string // the file's name in the upload URL
			body     string
			caption  bool // the body is a caption, not the file's name
			mime     string
			data     []byte
		}{
			{name: "file", msgType: event.MsgFile, fileName: "notes.txt", body: "notes.txt", mime: "text/plain", data: []byte("line one\nline two\n")},
			{name: "image with a caption", msgType: event.MsgImage, fileName: "dot.png", body: "a red dot", caption: true, mime: "image/png",
				data: pngOf(t, color.RGBA{R: 255, A: 255})},
		} {
			t.Run(tc.name, func(t *testing.T) {
				up, err := alice.UploadBytesWithName(ctx, tc.data, tc.mime, tc.fileName)
				if err != nil {
					t.Fatal(err)
				}
				content := &event.MessageEventContent{MsgType: tc.msgType, Body: tc.body, URL: up.ContentURI.CUString(),
					Info: &event.FileInfo{MimeType: tc.mime, Size: len(tc.data)}}
				if tc.caption {
					content.FileName = tc.fileName
				}
				if _, err := alice.SendMessageEvent(ctx, room, event.EventMessage, content); err != nil {
					t.Fatal(err)
				}
				m := bob.waitMessage("the link to "+tc.fileName, func(m *xmsg.Message) bool {
					return len(m.OOB) > 0 && strings.HasSuffix(m.OOB[0].URL, "/"+tc.fileName)
				})
				if !m.From.Bare().Equal(aliceJID) || !strings.HasPrefix(m.Body, xs.UploadURL+"/") || m.Body != m.OOB[0].URL {
					t.Errorf("from %s body %q oob %q: want alice's puppet, a link to %s/… in body and OOB", m.From, m.Body, m.OOB[0].URL, xs.UploadURL)
				}
				if strings.Contains(m.Body, onHS.URL) || strings.Contains(m.Body, "mxc://") || strings.Contains(m.Body, up.ContentURI.FileID) {
					t.Errorf("body %q leaks the homeserver's media URL", m.Body)
				}
				wantDesc := ""
				if tc.caption {
					wantDesc = tc.body
				}
				if m.OOB[0].Desc != wantDesc {
					t.Errorf("OOB desc %q, want %q", m.OOB[0].Desc, wantDesc)
				}
				if got := httpGet(t, m.OOB[0].URL); !bytes.Equal(got, tc.data) {
					t.Errorf("the link gives %d bytes that differ from the %d sent", len(got), len(tc.data))
				}
			})
		}
	})

	t.Run("xmpp to matrix", func(t *testing.T) {
		random := make([]byte, 64<<10)
		_, _ = rand.Read(random)
		for _, tc := range []struct {
			name, fileName, mime string
			data                 []byte
			want                 event.MessageType
		}{
			{name: "image", fileName: "blue.png", mime: "image/png", data: pngOf(t, color.RGBA{B: 255, A: 255}), want: event.MsgImage},
			{name: "file", fileName: "random.bin", mime: "application/octet-stream", data: random, want: event.MsgFile},
		} {
			t.Run(tc.name, func(t *testing.T) {
				res := bob.mustAsk("get", jid.MustParse(xs.UploadDomain), upload.Request(tc.fileName, int64(len(tc.data)), tc.mime))
				slot, err := upload.ParseSlot(res.Inner)
				if err != nil {
					t.Fatal(err)
				}
				if err := upload.Put(ctx, http.DefaultClient, slot, tc.data, tc.mime); err != nil {
					t.Fatal(err)
				}
				bob.send(&xmsg.Message{ID: unique("f-"), Type: "chat", To: aliceJID, Body: slot.GetURL, OOB: []xmsg.OOB{{URL: slot.GetURL}}})
				e := waitMatrix(t, alice, room, tc.fileName+" in Matrix", func(e *event.Event) bool {
					return e.Sender == bobGhost && e.Content.AsMessage().Body == tc.fileName
				})
				c := e.Content.AsMessage()
				if c.MsgType != tc.want || c.Info == nil || c.Info.MimeType != tc.mime || c.Info.Size != len(tc.data) {
					t.Errorf("msgtype %s info %+v, want %s %s of %d bytes", c.MsgType, c.Info, tc.want, tc.mime, len(tc.data))
				}
				uri, err := c.URL.Parse()
				if err != nil {
					t.Fatalf("url %q: %v", c.URL, err)
				}
				got, err := alice.DownloadBytes(ctx, uri)
				if err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(got, tc.data) {
					t.Errorf("Matrix has %d bytes that differ from the %d uploaded", len(got), len(tc.data))
				}
				evts, err := matrixtest.RoomMessages(ctx, alice, room)
				if err != nil {
					t.Fatal(err)
				}
				for _, e := range evts {
					if e.Content.AsMessage().Body == slot.GetURL {
						t.Errorf("the link was bridged as a text too")
					}
				}
			})
		}
	})

	big := bytes.Repeat([]byte("0123456789abcdef"), (5<<20)/16) // over media.max_bytes (4 MiB)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/big.bin" {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/octet-stream")
		_, _ = w.Write(big)
	}))
	defer srv.Close()
	for _, tc := range []struct{ name, path, reason string }{
		{"over the limit", "/big.bin", "larger than the bridge's limit"},
		{"missing", "/gone.bin", "its server answered HTTP 404"},
	} {
		t.Run("a link to a file "+tc.name+" arrives as the link", func(t *testing.T) {
			link := srv.URL + tc.path
			bob.send(&xmsg.Message{ID: unique("f-"), Type: "chat", To: aliceJID, Body: link, OOB: []xmsg.OOB{{URL: link}}})
			e := waitMatrix(t, alice, room, "the link with an explanation", func(e *event.Event) bool {
				return e.Sender == bobGhost && strings.Contains(e.Content.AsMessage().Body, link)
			})
			if c := e.Content.AsMessage(); c.MsgType != event.MsgText || !strings.Contains(c.Body, tc.reason) {
				t.Errorf("%s %q, want a text with the link saying %q", c.MsgType, c.Body, tc.reason)
			}
		})
	}

	t.Run("a matrix file over the limit is reported", func(t *testing.T) {
		big := bytes.Repeat([]byte{0xAB}, 5<<20)
		up, err := alice.UploadBytesWithName(ctx, big, "application/octet-stream", "big.bin")
		if err != nil {
			t.Fatal(err)
		}
		sent, err := alice.SendMessageEvent(ctx, room, event.EventMessage, &event.MessageEventContent{
			MsgType: event.MsgFile, Body: "big.bin", URL: up.ContentURI.CUString(), Info: &event.FileInfo{Size: len(big)}})
		if err != nil {
			t.Fatal(err)
		}
		waitFailureNotice(t, alice, room, sent.EventID, "larger than the bridge's limit")
	})
}

// httpGet downloads url.
func httpGet(t *testing.T, url string) []byte {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s", url, resp.Status)
	}
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// waitFailureNotice waits for the report that sent was not delivered: a notice in reply
// to it whose text contains reason, and a FAIL_PERMANENT message status relating to it.
// It returns the notice.
func waitFailureNotice(t *testing.T, cli *mautrix.Client, room id.RoomID, sent id.EventID, reason string) *event.Event {
	t.Helper()
	notice := waitMatrix(t, cli, room, "a failure notice for "+sent.String(), func(e *event.Event) bool {
		c := e.Content.AsMessage()
		return e.Type == event.EventMessage && c.MsgType == event.MsgNotice && c.RelatesTo != nil &&
			c.RelatesTo.InReplyTo != nil && c.RelatesTo.InReplyTo.EventID == sent
	})
	if body := notice.Content.AsMessage().Body; !strings.Contains(body, reason) {
		t.Errorf("notice %q, want it to say %q", body, reason)
	}
	waitMatrix(t, cli, room, "a FAIL_PERMANENT status for "+sent.String(), func(e *event.Event) bool {
		if e.Type != event.BeeperMessageStatus || e.Content.Raw["status"] != "FAIL_PERMANENT" {
			return false
		}
		rel, _ := e.Content.Raw["m.relates_to"].(map[string]any)
		return rel != nil && rel["event_id"] == sent.String()
	})
	return notice
}
