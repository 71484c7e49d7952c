package jitsie2e

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/switchboard-matrix/switchboard/internal/testpeer/peerproc"
)

// TestJoinPage: with Jitsi's token authentication the room's widget is the module's join
// page (Element's own Jitsi wrapper cannot carry a minted token). The page is served with
// a strict Content-Security-Policy; its script, run by Node against a client side of the
// widget API (testdata/widget_host.js: capabilities, get_openid answered "request" and then
// with a real OpenID token from Synapse), exchanges the token at the module and navigates
// to the conference on Jitsi with a token for the member. Not tested with a real Element.
func TestJoinPage(t *testing.T) {
	node, err := exec.LookPath("node")
	if err != nil {
		peerproc.RequireOrSkip(t, "node", err)
	}
	r := startModule(t, jwtConfig(t), false)
	alice := onHS.NewUser(t, "alice")
	bot := r.module.BotUserID()
	room := meetingRoom(t, alice, bot, "Consultation")
	sendText(t, alice, room, "!meet")
	waitNotice(t, alice, room, bot, "Added a Jitsi video meeting")
	widgetID, widget, _ := widgetOf(t, alice, room)
	data := widget["data"].(map[string]any)
	conf, _ := data["conferenceId"].(string)
	pageTemplate, _ := widget["url"].(string)
	if widget["type"] != "m.custom" || !strings.HasPrefix(pageTemplate, "http://"+r.module.HTTPAddr()+"/widget.html?") || data["domain"] != "meet.test" {
		t.Fatalf("widget %v: want a custom widget of the join page with the meeting's data", widget)
	}

	// The page and its script, as a browser gets them.
	get := func(path string) (*http.Response, []byte) {
		resp, err := http.Get("http://" + r.module.HTTPAddr() + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp, body
	}
	resp, html := get("/widget.html")
	if resp.StatusCode != 200 || !strings.Contains(string(html), `src="widget.js"`) ||
		!strings.Contains(resp.Header.Get("Content-Security-Policy"), "script-src 'self'") {
		t.Fatalf("join page: %d %q %s", resp.StatusCode, resp.Header.Get("Content-Security-Policy"), html)
	}
	resp, script := get("/widget.js")
	if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/javascript") {
		t.Fatalf("join script: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	scriptPath := filepath.Join(t.TempDir(), "widget.js")
	if err := os.WriteFile(scriptPath, script, 0o600); err != nil {
		t.Fatal(err)
	}

	// Element fills in the templates and adds widgetId and parentUrl.
	page := strings.NewReplacer("$matrix_room_id", url.QueryEscape(room.String()), "$matrix_widget_id", widgetID).Replace(pageTemplate) +
		"&parentUrl=" + url.QueryEscape("https://element.test/#/room/"+room.String())
	cred, _ := json.Marshal(openIDToken(t, alice))
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, node, "testdata/widget_host.js", scriptPath, page, string(cred)).CombinedOutput()
	if err != nil {
		t.Fatalf("widget host: %v\n%s", err, out)
	}
	var target string
	for _, line := range strings.Split(string(out), "\n") {
		if u, ok := strings.CutPrefix(line, "NAVIGATE "); ok {
			target = u
		}
	}
	u, err := url.Parse(target)
	if err != nil || u.Host != "meet.test" || !strings.EqualFold(strings.TrimPrefix(u.Path, "/"), conf) {
		t.Fatalf("the page went to %q, want the conference %s on meet.test\n%s", target, conf, out)
	}
	checkJitsiToken(t, u.Query().Get("jwt"), alice.UserID, conf)
}
