package email

import (
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/switchboard-matrix/switchboard/internal/provisiontest"
	"github.com/switchboard-matrix/switchboard/internal/store"
	"github.com/switchboard-matrix/switchboard/internal/store/storetest"
	"github.com/switchboard-matrix/switchboard/internal/testpeer/sbcore"
)

const (
	provisionSecret = "provisioning-secret-of-at-least-32-chars"
	provisionAdmin  = "@admin:example.org"
	provisionUser   = "@alice:example.org"
	provisionOther  = "@mallory:example.org"
)

// provisionCore serves b's provisioning routes through the core's real ops handler (a core
// that is made but not started: the bridge runs on its test host) and returns its base URL.
// The admin and alice may use the module; mallory may not.
func provisionCore(t *testing.T, b *Bridge) string {
	t.Helper()
	return sbcore.OpsOnly(t, storetest.Open(t, store.SQLite), b, provisionSecret, []string{provisionUser}, []string{provisionAdmin})
}

// TestProvisioning drives the email routes of the provisioning API through the core's
// handler, each answer checked against the OpenAPI document: the views (errors to admins
// only, never credentials), pause and resume with the command's effect in the store and on
// the readers, and the refusals.
func TestProvisioning(t *testing.T) {
	b, h := commandBridge(t, "sales")
	if got := <-h.parked; got != "support" {
		t.Fatalf("reader of %s started, want support only", got)
	}
	checkedAt := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	b.checked("support", checkedAt)
	b.setPending("support", 2)
	b.setStatus("support", stateReconnecting+"email: log in to 127.0.0.1:1 as u: NO [AUTHENTICATIONFAILED]")
	base := provisionCore(t, b)

	type mailbox struct {
		Name        string     `json:"name"`
		Address     string     `json:"address"`
		State       string     `json:"state"`
		HasError    bool       `json:"has_error"`
		LastError   *string    `json:"last_error"`
		LastCheck   *time.Time `json:"last_check"`
		Pending     int        `json:"pending"`
		Folder      *string    `json:"folder"`
		IMAPAddress string     `json:"imap_address"`
		SMTPAddress string     `json:"smtp_address"`
	}
	type change struct {
		Name    string `json:"name"`
		State   string `json:"state"`
		Changed bool   `json:"changed"`
	}
	list := func(t *testing.T, a provisiontest.Answer) map[string]mailbox {
		var v struct{ Mailboxes []mailbox }
		a.JSON(t, &v)
		out := map[string]mailbox{}
		for _, m := range v.Mailboxes {
			out[m.Name] = m
		}
		if len(v.Mailboxes) != 2 || v.Mailboxes[0].Name != "sales" || v.Mailboxes[1].Name != "support" {
			t.Errorf("mailboxes %+v, want sales and support in config order", v.Mailboxes)
		}
		return out
	}
	wantChange := func(name, state string, changed bool) func(*testing.T, provisiontest.Answer) {
		return func(t *testing.T, a provisiontest.Answer) {
			var c change
			a.JSON(t, &c)
			if want := (change{name, state, changed}); c != want {
				t.Errorf("answer %+v, want %+v", c, want)
			}
		}
	}

	steps := []struct {
		name       string
		auth, user string // the bearer token ("" none), the user_id query parameter
		method     string
		path       string
		wantStatus int
		wantInBody string // for errors: part of the message
		check      func(*testing.T, provisiontest.Answer)
		paused     []string // the store's paused keys afterwards
		wantStart  string   // a reader that starts
	}{
		{name: "list as admin", auth: provisionSecret, method: "GET", path: "/mailboxes", wantStatus: 200, paused: []string{"sales"},
			check: func(t *testing.T, a provisiontest.Answer) {
				boxes := list(t, a)
				sales, support := boxes["sales"], boxes["support"]
				if sales.State != "paused" || sales.HasError || sales.LastCheck != nil || sales.LastError != nil || sales.Address != "sales@example.org" {
					t.Errorf("sales %+v, want paused, no error, never checked", sales)
				}
				if support.State != "error" || !support.HasError || support.LastError == nil || !strings.Contains(*support.LastError, "AUTHENTICATIONFAILED") {
					t.Errorf("support %+v, want error with its text for an admin", support)
				}
				if support.LastCheck == nil || !support.LastCheck.Equal(checkedAt) || support.Pending != 2 {
					t.Errorf("support last check %v pending %d, want %v and 2", support.LastCheck, support.Pending, checkedAt)
				}
				if support.Folder != nil || support.IMAPAddress != "" || support.SMTPAddress != "" {
					t.Errorf("the list shows a mailbox's folder or servers: %+v", support)
				}
			}},
		{name: "list as a user", auth: provisionSecret, user: provisionUser, method: "GET", path: "/mailboxes", wantStatus: 200, paused: []string{"sales"},
			check: func(t *testing.T, a provisiontest.Answer) {
				if support := list(t, a)["support"]; !support.HasError || support.LastError != nil {
					t.Errorf("support %+v, want has_error without the text for a user", support)
				}
			}},
		{name: "one mailbox as admin", auth: provisionSecret, method: "GET", path: "/mailboxes/support", wantStatus: 200, paused: []string{"sales"},
			check: func(t *testing.T, a provisiontest.Answer) {
				var m mailbox
				a.JSON(t, &m)
				if m.Folder == nil || *m.Folder != "INBOX" || m.IMAPAddress != "127.0.0.1:1" || m.SMTPAddress != "127.0.0.1:2" || m.LastError == nil {
					t.Errorf("support %+v, want its folder, servers and error", m)
				}
			}},
		{name: "one mailbox as a user", auth: provisionSecret, user: provisionUser, method: "GET", path: "/mailboxes/support", wantStatus: 200, paused: []string{"sales"},
			check: func(t *testing.T, a provisiontest.Answer) {
				var m mailbox
				a.JSON(t, &m)
				if m.LastError != nil || !m.HasError || m.Folder == nil {
					t.Errorf("support %+v, want has_error and the folder without the error text", m)
				}
			}},
		{name: "unknown mailbox", auth: provisionSecret, method: "GET", path: "/mailboxes/nope", wantStatus: 404, wantInBody: `there is no mailbox \"nope\"`, paused: []string{"sales"}},
		{name: "no credentials", method: "GET", path: "/mailboxes", wantStatus: 401, paused: []string{"sales"}},
		{name: "wrong secret", auth: "not-the-" + provisionSecret, method: "GET", path: "/mailboxes", wantStatus: 401, paused: []string{"sales"}},
		{name: "user without permission", auth: provisionSecret, user: provisionOther, method: "GET", path: "/mailboxes/support", wantStatus: 403, wantInBody: "permissions", paused: []string{"sales"}},
		{name: "pause by a user", auth: provisionSecret, user: provisionUser, method: "POST", path: "/mailboxes/support/pause", wantStatus: 403, wantInBody: "admins", paused: []string{"sales"}},
		{name: "resume by a user", auth: provisionSecret, user: provisionUser, method: "POST", path: "/mailboxes/sales/resume", wantStatus: 403, wantInBody: "admins", paused: []string{"sales"}},
		{name: "pause", auth: provisionSecret, user: provisionAdmin, method: "POST", path: "/mailboxes/support/pause", wantStatus: 200,
			check: wantChange("support", "paused", true), paused: []string{"sales", "support"}},
		{name: "pause again", auth: provisionSecret, method: "POST", path: "/mailboxes/support/pause", wantStatus: 200,
			check: wantChange("support", "paused", false), paused: []string{"sales", "support"}},
		{name: "resume", auth: provisionSecret, method: "POST", path: "/mailboxes/sales/resume", wantStatus: 200,
			check: wantChange("sales", "connecting", true), paused: []string{"support"}, wantStart: "sales"},
		{name: "resume again", auth: provisionSecret, method: "POST", path: "/mailboxes/sales/resume", wantStatus: 200,
			check: wantChange("sales", "connecting", false), paused: []string{"support"}},
		{name: "pause an unknown mailbox", auth: provisionSecret, method: "POST", path: "/mailboxes/nope/pause", wantStatus: 404, wantInBody: "GET /modules/email/mailboxes lists them", paused: []string{"support"}},
		{name: "resume an unknown mailbox", auth: provisionSecret, method: "POST", path: "/mailboxes/nope/resume", wantStatus: 404, wantInBody: `\"nope\"`, paused: []string{"support"}},
	}
	for _, s := range steps {
		t.Run(s.name, func(t *testing.T) {
			c := provisiontest.Client{Base: base, Auth: s.auth}
			path := "/modules/email" + s.path
			if s.user != "" {
				path += "?user_id=" + url.QueryEscape(s.user)
			}
			a := c.Do(t, s.method, path, nil)
			if a.Status != s.wantStatus {
				t.Fatalf("status %d, want %d: %s", a.Status, s.wantStatus, a.Body)
			}
			if !strings.Contains(string(a.Body), s.wantInBody) {
				t.Errorf("answer lacks %q: %s", s.wantInBody, a.Body)
			}
			if strings.Contains(string(a.Body), "s3cret") {
				t.Errorf("answer shows a credential: %s", a.Body)
			}
			if s.check != nil {
				s.check(t, a)
			}
			checkMailboxes(t, b, h, s.paused, s.wantStart)
		})
	}
}

// TestProvisioningMatchesCommand: the chat command and the API act on the same state, so
// each sees what the other did.
func TestProvisioningMatchesCommand(t *testing.T) {
	b, h := commandBridge(t)
	<-h.parked
	<-h.parked
	c := provisiontest.Client{Base: provisionCore(t, b), Auth: provisionSecret}
	steps := []struct {
		name    string
		command []string // a chat command by an admin, or
		api     string   // a POST below /modules/email
		want    string   // part of the reply or the answer
	}{
		{name: "pause in chat", command: []string{"pause", "sales"}, want: "Paused sales"},
		{name: "pause by the API", api: "/mailboxes/sales/pause", want: `"changed":false`},
		{name: "resume by the API", api: "/mailboxes/sales/resume", want: `"changed":true`},
		{name: "resume in chat", command: []string{"resume", "sales"}, want: "sales is being read already."},
		{name: "pause by the API again", api: "/mailboxes/sales/pause", want: `"changed":true`},
		{name: "resume in chat again", command: []string{"resume", "sales"}, want: "Resumed sales: it is being read again."},
	}
	for _, s := range steps {
		t.Run(s.name, func(t *testing.T) {
			var got string
			if s.command != nil {
				got = run(t, b, true, s.command...)
			} else {
				a := c.Do(t, "POST", "/modules/email"+s.api, nil)
				got = string(a.Body)
			}
			if !strings.Contains(got, s.want) || strings.Contains(got, "%!") {
				t.Errorf("got %q, want %q", got, s.want)
			}
		})
	}
	if got := <-h.parked; got != "sales" {
		t.Errorf("reader of %s started, want sales", got)
	}
}
