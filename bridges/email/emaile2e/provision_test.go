package emaile2e

import (
	"context"
	"net/url"
	"strings"
	"testing"

	"github.com/rs/zerolog"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"

	"github.com/switchboard-matrix/switchboard/appservice"
	"github.com/switchboard-matrix/switchboard/bridges/email"
	"github.com/switchboard-matrix/switchboard/internal/provisiontest"
	"github.com/switchboard-matrix/switchboard/internal/store"
	"github.com/switchboard-matrix/switchboard/internal/store/storetest"
	"github.com/switchboard-matrix/switchboard/internal/testpeer/matrixtest"
	"github.com/switchboard-matrix/switchboard/internal/testpeer/sbcore"
)

// provisionSecret is the provisioning API's shared secret in these tests.
const provisionSecret = "emaile2e-provisioning-secret-0123456789"

// TestProvisioningAPI drives the email routes of the provisioning API on a running bridge,
// every request and answer checked against the OpenAPI document: the list and one mailbox,
// pause (a mail delivered meanwhile stays out of Matrix), pause again, resume (the mail
// then arrives once), and the refusals. A second mailbox, never paused, shows that the
// bridge reads mail while the first is paused.
func TestProvisioningAPI(t *testing.T) {
	ctx := context.Background()
	alice := newMatrixUser(t, "alice") // may use the module, not an admin
	bob := newMatrixUser(t, "bob")
	box := newMailbox(t, alice.UserID)
	control := newMailbox(t, bob.UserID)
	admin := id.NewUserID(unique("opadmin"), domain)
	bridge, err := email.New(email.Config{Mailboxes: []email.MailboxConfig{box, control}})
	if err != nil {
		t.Fatal(err)
	}
	level, _ := zerolog.ParseLevel(getenv("SWITCHBOARD_EMAILE2E_LOG", "info"))
	core, _ := sbcore.Start(t, sbcore.Options{
		Registration: onHS.Reg, HomeserverURL: onHS.URL, Domain: domain, ASPort: onHS.ASPort,
		Store: storetest.Open(t, store.SQLite), Modules: []appservice.Module{bridge}, Version: "emaile2e", LogLevel: level,
		Permissions:  map[string][]string{email.ID: {alice.UserID.String(), bob.UserID.String(), admin.String()}},
		Provisioning: &appservice.Provisioning{SharedSecret: provisionSecret, Admins: []string{admin.String()}},
	})
	api := &provisiontest.Client{Base: sbcore.ServeOps(t, core), Auth: provisionSecret}
	boxRoom := acceptInvite(t, alice)
	controlRoom := acceptInvite(t, bob)
	carol := ghostOf(t, "carol@ext.test")

	deliver := func(to email.MailboxConfig, n string) {
		t.Helper()
		raw := "From: carol@ext.test\nTo: " + to.Address + "\nSubject: Provision " + n + "\nMessage-ID: <p" + n + "." + to.Name + "@ext.test>\n\nmail " + n + "\n"
		if err := dc.Deliver(ctx, to.Address, crlf(raw)); err != nil {
			t.Fatal(err)
		}
	}
	isMail := func(n string) func(*event.Event) bool {
		return func(e *event.Event) bool {
			return e.Sender == carol && strings.HasPrefix(e.Content.AsMessage().Body, "Provision "+n+"\n")
		}
	}
	count := func(room id.RoomID, n string) int {
		t.Helper()
		evts, err := matrixtest.RoomMessages(ctx, alice, room)
		if err != nil {
			t.Fatal(err)
		}
		found := 0
		for _, e := range evts {
			if isMail(n)(e) {
				found++
			}
		}
		return found
	}
	as := func(user id.UserID) string { return "?user_id=" + url.QueryEscape(user.String()) }
	mailboxPath := "/modules/email/mailboxes/" + url.PathEscape(box.Name)

	type mailbox struct {
		Name        string  `json:"name"`
		State       string  `json:"state"`
		HasError    bool    `json:"has_error"`
		LastError   *string `json:"last_error"`
		Folder      string  `json:"folder"`
		IMAPAddress string  `json:"imap_address"`
		SMTPAddress string  `json:"smtp_address"`
	}
	type change struct {
		Name    string `json:"name"`
		State   string `json:"state"`
		Changed bool   `json:"changed"`
	}
	want := func(a provisiontest.Answer, status int) {
		t.Helper()
		if a.Status != status {
			t.Fatalf("status %d, want %d: %s", a.Status, status, a.Body)
		}
		if strings.Contains(string(a.Body), "pw-") || strings.Contains(string(a.Body), smtpPass) {
			t.Errorf("the answer shows a password: %s", a.Body)
		}
	}
	pause := func(user id.UserID, wantChanged bool) {
		t.Helper()
		path := mailboxPath + "/pause"
		if user != "" {
			path += as(user)
		}
		a := api.Do(t, "POST", path, nil)
		want(a, 200)
		var c change
		a.JSON(t, &c)
		if c != (change{box.Name, "paused", wantChanged}) {
			t.Errorf("pause: %+v, want paused, changed %v", c, wantChanged)
		}
	}

	// Both mailboxes are read: their first mails are in Matrix.
	deliver(box, "1")
	deliver(control, "c1")
	waitEvent(t, alice, boxRoom, "the first mail", isMail("1"))
	waitEvent(t, bob, controlRoom, "the control mailbox's first mail", isMail("c1"))

	t.Run("list", func(t *testing.T) {
		a := api.Do(t, "GET", "/modules/email/mailboxes", nil)
		want(a, 200)
		var v struct{ Mailboxes []mailbox }
		a.JSON(t, &v)
		if len(v.Mailboxes) != 2 || v.Mailboxes[0].Name != box.Name || v.Mailboxes[1].Name != control.Name {
			t.Fatalf("mailboxes %+v, want %s and %s", v.Mailboxes, box.Name, control.Name)
		}
		for _, m := range v.Mailboxes {
			if m.State != "connected" || m.HasError {
				t.Errorf("%s: state %q has_error %v, want connected", m.Name, m.State, m.HasError)
			}
		}
	})
	t.Run("one mailbox as a user", func(t *testing.T) {
		a := api.Do(t, "GET", mailboxPath+as(alice.UserID), nil)
		want(a, 200)
		var m mailbox
		a.JSON(t, &m)
		if m.Name != box.Name || m.State != "connected" || m.Folder != "INBOX" || m.IMAPAddress != dc.IMAPAddr || m.SMTPAddress != smtpd.Addr || m.LastError != nil {
			t.Errorf("mailbox %+v, want connected, INBOX on %s, %s", m, dc.IMAPAddr, smtpd.Addr)
		}
	})

	// Paused, the mailbox is not read: mail 2 stays out of its room while the control
	// mailbox's mail, delivered after it, is bridged.
	pause(admin, true)
	deliver(box, "2")
	deliver(control, "c2")
	waitEvent(t, bob, controlRoom, "the control mailbox's mail", isMail("c2"))
	if n := count(boxRoom, "2"); n != 0 {
		t.Fatalf("mail 2 reached the paused mailbox's room %d times", n)
	}
	pause("", false)

	refusals := []struct {
		name, auth, method, path string
		status                   int
		errcode                  string
	}{
		{"no credentials", "", "GET", "/modules/email/mailboxes", 401, "M_MISSING_TOKEN"},
		{"wrong secret", "wrong-" + provisionSecret, "GET", "/modules/email/mailboxes", 401, "M_UNKNOWN_TOKEN"},
		{"user without permission", provisionSecret, "GET", "/modules/email/mailboxes" + as(id.NewUserID(unique("mallory"), domain)), 403, "M_FORBIDDEN"},
		{"resume by a user who is no admin", provisionSecret, "POST", mailboxPath + "/resume" + as(alice.UserID), 403, "M_FORBIDDEN"},
		{"pause by a user who is no admin", provisionSecret, "POST", mailboxPath + "/pause" + as(alice.UserID), 403, "M_FORBIDDEN"},
		{"unknown mailbox", provisionSecret, "GET", "/modules/email/mailboxes/nope", 404, "M_NOT_FOUND"},
		{"pause an unknown mailbox", provisionSecret, "POST", "/modules/email/mailboxes/nope/pause", 404, "M_NOT_FOUND"},
	}
	for _, r := range refusals {
		t.Run(r.name, func(t *testing.T) {
			c := &provisiontest.Client{Base: api.Base, Auth: r.auth}
			a := c.Do(t, r.method, r.path, nil)
			want(a, r.status)
			if a.Errcode() != r.errcode {
				t.Errorf("errcode %q, want %q: %s", a.Errcode(), r.errcode, a.Body)
			}
			if r.status == 404 && !strings.Contains(string(a.Body), `\"nope\"`) {
				t.Errorf("the answer does not name the mailbox: %s", a.Body)
			}
		})
	}
	a := api.Do(t, "GET", mailboxPath, nil)
	want(a, 200)
	var m mailbox
	a.JSON(t, &m)
	if m.State != "paused" {
		t.Fatalf("after the refusals the mailbox is %q, want paused", m.State)
	}

	// Resumed, the mailbox is read again: mail 2 arrives, once (mail 3, delivered after
	// it, is bridged after it).
	a = api.Do(t, "POST", mailboxPath+"/resume", nil)
	want(a, 200)
	var c change
	a.JSON(t, &c)
	if c.Name != box.Name || !c.Changed || (c.State != "connecting" && c.State != "connected") {
		t.Errorf("resume: %+v, want changed and connecting or connected", c)
	}
	waitEvent(t, alice, boxRoom, "mail 2 after the resume", isMail("2"))
	deliver(box, "3")
	waitEvent(t, alice, boxRoom, "mail 3", isMail("3"))
	if n := count(boxRoom, "2"); n != 1 {
		t.Errorf("mail 2 is in the room %d times, want once", n)
	}
}
