package statuspagee2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"
	mas "maunium.net/go/mautrix/appservice"
	"maunium.net/go/mautrix/event"

	"github.com/switchboard-matrix/switchboard/appservice"
	"github.com/switchboard-matrix/switchboard/internal/store"
	"github.com/switchboard-matrix/switchboard/internal/store/storetest"
	"github.com/switchboard-matrix/switchboard/internal/testmodule"
	"github.com/switchboard-matrix/switchboard/internal/testpeer/peerproc"
	"github.com/switchboard-matrix/switchboard/internal/testpeer/sbcore"
	"github.com/switchboard-matrix/switchboard/registration"
)

const domain = "status.test"

// TestStatusPageInChromium: the page of a running core, rendered by Chromium, names every
// module with its connection, the disconnected module's state and error, and the core's
// queues; /status.json says the same.
func TestStatusPageInChromium(t *testing.T) {
	chromium, err := exec.LookPath("chromium")
	peerproc.RequireOrSkip(t, "chromium", err)

	ops := startCoreWithOps(t)

	// The JSON first: the data the page shows.
	var snap struct {
		Version    string `json:"version"`
		Homeserver struct {
			Reachable bool `json:"reachable"`
		} `json:"homeserver"`
		Modules []struct {
			ID        string `json:"id"`
			Connected bool   `json:"connected"`
			State     string `json:"state"`
			LastError string `json:"last_error"`
			Portals   *int   `json:"portals"`
			Ghosts    *int   `json:"ghosts"`
		} `json:"modules"`
	}
	if err := json.Unmarshal(get(t, ops+"/status.json"), &snap); err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, m := range snap.Modules {
		got[m.ID] = fmt.Sprintf("%v %s %q %v/%v", m.Connected, m.State, m.LastError, deref(m.Portals), deref(m.Ghosts))
	}
	want := map[string]string{
		"management": `true ready "" 0/0`,
		"testmod":    `true idle "" 1/2`,
		"flaky":      `false reconnecting in 8s "dial tcp 192.0.2.10:5222: connect: connection refused" 0/0`,
	}
	if fmt.Sprint(got) != fmt.Sprint(want) || snap.Version != "1.2.3-e2e" || !snap.Homeserver.Reachable {
		t.Errorf("/status.json modules %v (version %q, homeserver %v), want %v", got, snap.Version, snap.Homeserver.Reachable, want)
	}
	if page := get(t, ops+"/status"); !bytes.Contains(page, []byte(`http-equiv="refresh"`)) {
		t.Errorf("/status has no refresh:\n%s", page)
	}

	// The page as a browser shows it.
	dir := artifactDir(t)
	shot := filepath.Join(dir, "statuspage.png")
	browse(t, chromium, "--screenshot="+shot, ops+"/status")
	if fi, err := os.Stat(shot); err != nil || fi.Size() == 0 {
		t.Fatalf("no screenshot: %v", err)
	}
	t.Logf("status page screenshot: %s", shot)
	text := visibleText(browse(t, chromium, "--dump-dom", ops+"/status"))
	if err := os.WriteFile(filepath.Join(dir, "statuspage.txt"), []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"Switchboard 1.2.3-e2e", "1 of 3 modules not connected",
		"Homeserver reachable", "Inbox 0 waiting", "Outbox 0 waiting",
		"management connected ready 0", "testmod connected idle 0 1 2 none",
		"flaky not connected reconnecting in 8s 0 0 0 dial tcp 192.0.2.10:5222: connect: connection refused",
		"refreshes every 15 s",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("the page as Chromium renders it lacks %q:\n%s", want, text)
		}
	}
}

// startCoreWithOps starts a core with the management bot, the test module (one portal, two
// ghosts) and the flaky module on a fake homeserver, serves its operator endpoints on
// loopback and returns their base URL.
func startCoreWithOps(t *testing.T) string {
	t.Helper()
	hs := fakeHomeserver(t)
	asPort, err := peerproc.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	st := storetest.Open(t, store.SQLite)
	reg := &mas.Registration{
		ID: "switchboard", URL: fmt.Sprintf("http://127.0.0.1:%d", asPort), AppToken: "as-token", ServerToken: "hs-token",
		SenderLocalpart: "switchboard",
	}
	core, ctx := sbcore.Start(t, sbcore.Options{
		Registration: reg, HomeserverURL: hs, Domain: domain, ASPort: asPort, Store: st, Version: "1.2.3-e2e",
		LogLevel: zerolog.InfoLevel,
		Modules:  []appservice.Module{testmodule.New(testmodule.Config{}, st), flaky{}},
	})
	if err := st.PutPortal(ctx, testmodule.ID, "remote-room", "!portal:"+domain); err != nil {
		t.Fatal(err)
	}
	for _, u := range []string{"alice", "bob"} {
		if err := st.MarkGhostRegistered(ctx, "@"+testmodule.GhostPrefix+u+":"+domain); err != nil {
			t.Fatal(err)
		}
	}
	return sbcore.ServeOps(t, core)
}

// browse runs headless Chromium on url with the extra flag and returns its standard output.
func browse(t *testing.T, chromium, flag, url string) []byte {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	var stdout bytes.Buffer
	stderr := peerproc.NewTailBuffer(8 << 10)
	cmd := exec.Command(chromium, "--headless", "--no-sandbox", "--disable-gpu", "--window-size=1280,900",
		"--user-data-dir="+t.TempDir(), "--no-first-run", "--hide-scrollbars", flag, url)
	cmd.Stdout, cmd.Stderr = &stdout, stderr
	p, err := peerproc.Start(cmd)
	if err != nil {
		t.Fatal(err)
	}
	select {
	case <-p.Done():
	case <-ctx.Done():
		_ = p.Stop(5 * time.Second)
		t.Fatalf("chromium %s did not finish: %s", flag, peerproc.Tail(stderr.Bytes(), 20))
	}
	if err := p.Err(); err != nil {
		t.Fatalf("chromium %s: %v\n%s", flag, err, peerproc.Tail(stderr.Bytes(), 20))
	}
	return stdout.Bytes()
}

var (
	headOrStyle = regexp.MustCompile(`(?s)<head>.*?</head>`)
	tag         = regexp.MustCompile(`<[^>]*>`)
	space       = regexp.MustCompile(`\s+`)
)

// visibleText is the text of the body of a dumped DOM, one space between words.
func visibleText(dom []byte) string {
	s := headOrStyle.ReplaceAllString(string(dom), " ")
	s = tag.ReplaceAllString(s, " ")
	for old, repl := range map[string]string{"&lt;": "<", "&gt;": ">", "&quot;": `"`, "&#39;": "'", "&amp;": "&", "&nbsp;": " "} {
		s = strings.ReplaceAll(s, old, repl)
	}
	return strings.TrimSpace(space.ReplaceAllString(s, " "))
}

// artifactDir is $SWITCHBOARD_ARTIFACTS (created), else a temporary directory of t.
func artifactDir(t *testing.T) string {
	t.Helper()
	dir := os.Getenv("SWITCHBOARD_ARTIFACTS")
	if dir == "" {
		return t.TempDir()
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

func get(t *testing.T, url string) []byte {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %d %v", url, resp.StatusCode, err)
	}
	return body
}

func deref(n *int) any {
	if n == nil {
		return nil
	}
	return *n
}

// flaky is a module whose network is down: it reports itself reconnecting, with the error.
type flaky struct{}

func (flaky) ID() string { return "flaky" }
func (flaky) Namespaces() registration.Namespaces {
	return registration.Namespaces{Users: []registration.Pattern{{Localpart: "_flaky_.+", Exclusive: true}}}
}
func (flaky) Start(context.Context, appservice.Host) error    { return nil }
func (flaky) Stop(context.Context) error                      { return nil }
func (flaky) HandleEvent(context.Context, *event.Event) error { return nil }
func (flaky) Status(context.Context) appservice.ModuleStatus {
	return appservice.ModuleStatus{State: "reconnecting in 8s", LastError: "dial tcp 192.0.2.10:5222: connect: connection refused"}
}

// fakeHomeserver answers what a core's start and the status page ask of a homeserver:
// versions, the bot's registration and display name; the appservice ping is unsupported.
func fakeHomeserver(t *testing.T) string {
	t.Helper()
	mux := http.NewServeMux()
	ok := func(w http.ResponseWriter, body string) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, body)
	}
	mux.HandleFunc("GET /_matrix/client/versions", func(w http.ResponseWriter, _ *http.Request) { ok(w, `{"versions":["v1.11"]}`) })
	mux.HandleFunc("POST /_matrix/client/v3/register", func(w http.ResponseWriter, _ *http.Request) {
		ok(w, `{"user_id":"@switchboard:`+domain+`"}`)
	})
	mux.HandleFunc("PUT /_matrix/client/v3/profile/{user}/displayname", func(w http.ResponseWriter, _ *http.Request) { ok(w, `{}`) })
	mux.HandleFunc("GET /_matrix/client/v3/profile/{user}/displayname", func(w http.ResponseWriter, _ *http.Request) { ok(w, `{}`) })
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusNotFound)
		ok(w, `{"errcode":"M_UNRECOGNIZED","error":"not in the fake"}`)
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv.URL
}
