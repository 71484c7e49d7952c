package management

import (
	"context"
	"errors"
	"strings"
	"testing"

	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"

	"github.com/switchboard-matrix/switchboard/appservice"
)

// fakeHost records what the bot enqueues.
type fakeHost struct {
	appservice.Host
	sent []appservice.Message
	cmds []appservice.Command // the module commands run
}

func (h *fakeHost) BotUserID() id.UserID { return "@sb:test" }
func (h *fakeHost) Enqueue(_ context.Context, m appservice.Message) error {
	h.sent = append(h.sent, m)
	return nil
}
func (h *fakeHost) Report(context.Context) appservice.Report {
	return appservice.Report{Version: "1.2.3", InboxDepth: 4, OutboxDepth: 1, Encryption: "on",
		Scanner: "unreachable; 1 file(s) held", ScannerError: "dial unix /run/clamav/clamd.ctl: connect: no such file", Modules: []appservice.ModuleReport{
			{ID: "management", Reported: true, Status: appservice.ModuleStatus{Connected: true, State: "ready"}},
			{ID: "xmpp", Reported: true, Status: appservice.ModuleStatus{State: "reconnecting in 8s", LastError: "connection refused"}, Outbox: 1},
			{ID: "plain"}, {ID: "private"},
		}}
}
func (h *fakeHost) RunCommand(_ context.Context, module string, cmd appservice.Command) (string, error) {
	h.cmds = append(h.cmds, cmd)
	switch module {
	case "xmpp":
		return "xmpp says " + strings.Join(cmd.Args, " "), nil
	case "broken":
		return "", errors.New("dial tcp 10.0.0.7:5347: connection refused")
	case "private":
		return "", appservice.ErrNotPermitted
	}
	return "", appservice.ErrUnknownCommand
}

func message(sender, body string) *event.Event {
	return &event.Event{
		ID: "$cmd", RoomID: "!dm:test", Sender: id.UserID(sender), Type: event.EventMessage,
		Content: event.Content{Parsed: &event.MessageEventContent{MsgType: event.MsgText, Body: body}},
	}
}

func TestCommands(t *testing.T) {
	tests := []struct {
		name, sender, body string
		want               []string // substrings of the reply; nil means no reply
	}{
		{"help", "@admin:test", "help", []string{"status", "version", "`<module> help`", "xmpp says help", "**plain**: no commands", "**private**: not available to you"}},
		{"module help", "@admin:test", "xmpp help", []string{"xmpp says help"}},
		{"module without commands", "@admin:test", "plain help", []string{"The module plain has no commands"}},
		{"status", "@admin:test", "status", []string{"1.2.3", "Inbox: 4", "Encryption: on", "Virus scanner: unreachable; 1 file(s) held (dial unix /run/clamav/clamd.ctl", "xmpp", "reconnecting in 8s", "connection refused", "management"}},
		{"prefixed", "@admin:test", "!sb version", []string{"Switchboard 1.2.3"}},
		{"module command", "@admin:test", "xmpp ping now", []string{"xmpp says ping now"}},
		{"unknown", "@admin:test", "frobnicate", []string{"Unknown command"}},
		{"status for a non-admin has no raw errors", "@user:other", "status", []string{"1.2.3", "Inbox: 4", "Virus scanner: unreachable; 1 file(s) held", "reconnecting in 8s", "has errors", "admins only"}},
		{"failed command shows the error to an admin", "@admin:test", "broken go", []string{"broken failed: dial tcp 10.0.0.7:5347"}},
		{"failed command hides the error from others", "@user:other", "broken go", []string{"broken failed.", "admins can see why"}},
		{"module not permitted", "@user:other", "private go", []string{"not permitted to use private"}},
		{"empty", "@admin:test", "   ", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			bot, err := New(Config{Admins: []string{"*:test"}})
			if err != nil {
				t.Fatal(err)
			}
			h := &fakeHost{}
			_ = bot.Start(context.Background(), h)
			if err := bot.HandleEvent(context.Background(), message(tt.sender, tt.body)); err != nil {
				t.Fatal(err)
			}
			if tt.want == nil {
				if len(h.sent) != 0 {
					t.Fatalf("replied %d times, want no reply", len(h.sent))
				}
				return
			}
			if len(h.sent) != 1 {
				t.Fatalf("replied %d times, want 1", len(h.sent))
			}
			reply := h.sent[0]
			if reply.RemoteID != "reply:$cmd" || reply.Sender != "@sb:test" || reply.RoomID != "!dm:test" {
				t.Fatalf("reply keyed %q from %s to %s", reply.RemoteID, reply.Sender, reply.RoomID)
			}
			body := reply.Content.(*event.MessageEventContent).Body
			for _, w := range tt.want {
				if !strings.Contains(body, w) {
					t.Errorf("reply lacks %q:\n%s", w, body)
				}
			}
			if !bot.isAdmin(id.UserID(tt.sender)) {
				for _, raw := range []string{"connection refused", "10.0.0.7", "clamd.ctl"} {
					if strings.Contains(body, raw) {
						t.Errorf("a non-admin sees the raw error %q:\n%s", raw, body)
					}
				}
			}
		})
	}
}

func TestAdmins(t *testing.T) {
	tests := []struct {
		name   string
		admins []string
		user   string
		want   bool
	}{
		{"exact", []string{"@a:x"}, "@a:x", true},
		{"exact other", []string{"@a:x"}, "@b:x", false},
		{"domain", []string{"*:x"}, "@b:x", true},
		{"domain other", []string{"*:x"}, "@b:y", false},
		{"domain suffix is not a match", []string{"*:x"}, "@b:evil-x", false},
		{"everyone", []string{"*"}, "@b:y", true},
		{"invalid user", []string{"*"}, "not-a-user", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := New(Config{Admins: tt.admins})
			if err != nil {
				t.Fatal(err)
			}
			if got := b.isAdmin(id.UserID(tt.user)); got != tt.want {
				t.Fatalf("isAdmin(%s) = %v", tt.user, got)
			}
		})
	}
}

func TestNoAdminsByDefault(t *testing.T) {
	b, err := New(Config{})
	if err != nil {
		t.Fatal(err)
	}
	for _, u := range []id.UserID{"@alice:test", "@admin:test"} {
		if b.isAdmin(u) {
			t.Errorf("%s is an admin without any configured", u)
		}
	}
	h := &fakeHost{}
	_ = b.Start(context.Background(), h)
	if err := b.HandleEvent(context.Background(), message("@alice:test", "status")); err != nil {
		t.Fatal(err)
	}
	if body := h.sent[0].Content.(*event.MessageEventContent).Body; strings.Contains(body, "connection refused") {
		t.Errorf("status shows a raw error without admins configured:\n%s", body)
	}
}

func TestNewRejectsBadAdmins(t *testing.T) {
	for _, admins := range [][]string{{"alice"}, {"*x"}, {"*:"}} {
		if _, err := New(Config{Admins: admins}); err == nil {
			t.Errorf("New(%q) accepted", admins)
		}
	}
}

// TestAdminFlag: module commands learn whether the sender is a management admin.
func TestAdminFlag(t *testing.T) {
	tests := []struct {
		name, sender string
		want         bool
	}{
		{"admin", "@admin:test", true},
		{"user", "@user:other", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			bot, err := New(Config{Admins: []string{"*:test"}})
			if err != nil {
				t.Fatal(err)
			}
			h := &fakeHost{}
			_ = bot.Start(context.Background(), h)
			for _, body := range []string{"xmpp list", "help"} {
				h.cmds = nil
				if err := bot.HandleEvent(context.Background(), message(tt.sender, body)); err != nil {
					t.Fatal(err)
				}
				if len(h.cmds) == 0 {
					t.Fatalf("%q ran no module command", body)
				}
				for _, c := range h.cmds {
					if c.Admin != tt.want || c.Sender != id.UserID(tt.sender) {
						t.Errorf("%q: module saw sender %s admin %v, want %s %v", body, c.Sender, c.Admin, tt.sender, tt.want)
					}
				}
			}
		})
	}
}
