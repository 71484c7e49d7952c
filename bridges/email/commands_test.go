package email

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/switchboard-matrix/switchboard/appservice"
)

// parkedHost is a memHost whose readers are parked: a reader reports its mailbox and
// waits for its end, so the tests see readers start and stop without a server.
type parkedHost struct {
	*memHost
	parked chan string // a reader started, with its mailbox
}

func (h *parkedHost) Domain() string { return "example.org" }

func (h *parkedHost) read(ctx context.Context, mb *mailbox) {
	h.parked <- mb.cfg.Name
	<-ctx.Done()
}

func commandBridge(t *testing.T, pausedAtStart ...string) (*Bridge, *parkedHost) {
	t.Helper()
	mb := func(name string) MailboxConfig {
		return MailboxConfig{
			Name: name, Address: name + "@example.org",
			IMAP: ServerConfig{Address: "127.0.0.1:1", Username: "u", Password: "imap-s3cret"},
			SMTP: ServerConfig{Address: "127.0.0.1:2", Username: "u", Password: "smtp-s3cret"},
		}
	}
	b, err := New(Config{Mailboxes: []MailboxConfig{mb("sales"), mb("support")}})
	if err != nil {
		t.Fatal(err)
	}
	h := &parkedHost{memHost: newMemHost(), parked: make(chan string, 4)}
	b.reader = h.read
	for _, name := range pausedAtStart {
		h.st.kv[pausedKey(name)] = "2026-01-01T00:00:00Z"
	}
	if err := b.Start(context.Background(), h); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := b.Stop(ctx); err != nil {
			t.Error(err)
		}
	})
	return b, h
}

func run(t *testing.T, b *Bridge, admin bool, words ...string) string {
	t.Helper()
	out, err := b.HandleCommand(context.Background(), appservice.Command{Sender: "@alice:example.org", Args: words, Admin: admin})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func (b *Bridge) running(name string) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.runs[name].cancel != nil
}

// TestPauseResume: a paused mailbox stays paused across a restart (the store key), its
// reader stops and starts again on resume; only admins may pause and resume.
func TestPauseResume(t *testing.T) {
	b, h := commandBridge(t, "sales")
	if got := <-h.parked; got != "support" {
		t.Fatalf("reader of %s started, want support only", got)
	}
	if b.running("sales") || !b.running("support") {
		t.Fatalf("running: sales %v, support %v; want the paused one stopped", b.running("sales"), b.running("support"))
	}
	steps := []struct {
		name      string
		admin     bool
		words     []string
		want      string
		paused    []string // the store's paused keys afterwards
		wantStart string   // a reader that starts
	}{
		{"list", false, []string{"list"}, "**sales** (sales@example.org): paused", []string{"sales"}, ""},
		{"pause by a user", false, []string{"pause", "support"}, "Only Switchboard's admins", []string{"sales"}, ""},
		{"pause", true, []string{"pause", "support"}, "Paused support", []string{"sales", "support"}, ""},
		{"pause again", true, []string{"pause", "support"}, "support is paused already", []string{"sales", "support"}, ""},
		{"resume by a user", false, []string{"resume", "sales"}, "Only Switchboard's admins", []string{"sales", "support"}, ""},
		{"resume", true, []string{"resume", "sales"}, "Resumed sales", []string{"support"}, "sales"},
		{"resume again", true, []string{"resume", "sales"}, "sales is being read already", []string{"support"}, ""},
		{"unknown mailbox", true, []string{"pause", "nope"}, `There is no mailbox "nope"`, []string{"support"}, ""},
		{"usage", true, []string{"pause"}, "Usage: `email pause <mailbox>`", []string{"support"}, ""},
		{"status", false, []string{"status", "support"}, "State: paused", []string{"support"}, ""},
	}
	for _, s := range steps {
		t.Run(s.name, func(t *testing.T) {
			out := run(t, b, s.admin, s.words...)
			if !strings.Contains(out, s.want) {
				t.Errorf("reply lacks %q:\n%s", s.want, out)
			}
			for _, secret := range []string{"s3cret", "imap-", "smtp-"} {
				if strings.Contains(out, secret) {
					t.Errorf("reply shows a credential (%q):\n%s", secret, out)
				}
			}
			checkMailboxes(t, b, h, s.paused, s.wantStart)
		})
	}
}

// checkMailboxes checks, after a step, which of the two mailboxes are paused in the store
// and have no reader running, and that the reader of wantStart (if any) started.
func checkMailboxes(t *testing.T, b *Bridge, h *parkedHost, paused []string, wantStart string) {
	t.Helper()
	for _, name := range []string{"sales", "support"} {
		_, inStore := h.st.kv[pausedKey(name)]
		if want := contains(paused, name); inStore != want {
			t.Errorf("%s paused in the store: %v, want %v", name, inStore, want)
		}
		if b.running(name) == contains(paused, name) {
			t.Errorf("%s running: %v, want %v", name, b.running(name), !contains(paused, name))
		}
	}
	if wantStart != "" {
		if got := <-h.parked; got != wantStart {
			t.Errorf("reader of %s started, want %s", got, wantStart)
		}
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// TestMailboxViews: list and status show the state, last check and pending mails; the
// reader's error goes to admins only.
func TestMailboxViews(t *testing.T) {
	b, h := commandBridge(t)
	<-h.parked
	<-h.parked
	b.setStatus("sales", stateConnected)
	b.checked("sales", time.Now().Add(-90*time.Second))
	b.setPending("sales", 3)
	b.addPending("sales", -1)
	b.setStatus("support", stateReconnecting+"email: log in to 127.0.0.1:1 as u: NO [AUTHENTICATIONFAILED]")
	tests := []struct {
		name     string
		admin    bool
		words    []string
		want     []string
		dontWant []string
	}{
		{"help", false, nil, []string{"`email list`", "`email pause <mailbox>`", "(admins)"}, nil},
		{"list", false, []string{"list"}, []string{"2 mailboxes", "**sales** (sales@example.org): connected · last check 1m", "2 pending", "**support** (support@example.org): error · last check never · 0 pending"}, []string{"AUTHENTICATIONFAILED"}},
		{"status for a user", false, []string{"status", "support"}, []string{"State: error", "admins only", "INBOX on 127.0.0.1:1"}, []string{"AUTHENTICATIONFAILED"}},
		{"status for an admin", true, []string{"status", "support"}, []string{"State: error", "Last error: email: log in", "AUTHENTICATIONFAILED"}, nil},
		{"unknown", false, []string{"frobnicate"}, []string{"email help"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out := run(t, b, tt.admin, tt.words...)
			for _, w := range tt.want {
				if !strings.Contains(out, w) {
					t.Errorf("reply lacks %q:\n%s", w, out)
				}
			}
			for _, w := range append(tt.dontWant, "s3cret") {
				if strings.Contains(out, w) {
					t.Errorf("reply shows %q:\n%s", w, out)
				}
			}
		})
	}
}
