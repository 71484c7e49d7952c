package registration

import (
	"reflect"
	"strings"
	"testing"

	"maunium.net/go/mautrix/appservice"
)

var testRegistration = appservice.Registration{ID: "switchboard"}

func TestDiff(t *testing.T) {
	implied, err := Build(testConfig, testModules, nil)
	if err != nil {
		t.Fatal(err)
	}
	clone := func(edit func(r *appservice.Registration)) *appservice.Registration {
		c := *implied
		c.Namespaces.UserIDs = append(appservice.NamespaceList(nil), implied.Namespaces.UserIDs...)
		edit(&c)
		return &c
	}
	tests := []struct {
		name   string
		onDisk *appservice.Registration
		want   []string
	}{
		{"same", clone(func(r *appservice.Registration) {}), nil},
		{"other tokens are not a difference", clone(func(r *appservice.Registration) {
			r.AppToken, r.ServerToken = "a", "b"
		}), nil},
		{"namespace order does not matter", clone(func(r *appservice.Registration) {
			u := r.Namespaces.UserIDs
			u[0], u[1] = u[1], u[0]
		}), nil},
		{"url", clone(func(r *appservice.Registration) { r.URL = "http://old:1" }), []string{
			`url differs: "http://old:1" on disk, "http://127.0.0.1:29300" implied`,
		}},
		{"namespaces and flags", clone(func(r *appservice.Registration) {
			r.Namespaces.UserIDs = r.Namespaces.UserIDs[1:]
			r.Namespaces.RoomAliases = nil
			r.EphemeralEvents = false
			r.RateLimited = nil
			r.ID = "other"
			r.SenderLocalpart = "bot"
			r.Protocols = []string{"xmpp"}
		}), []string{
			`id differs: "other" on disk, "switchboard" implied`,
			`sender_localpart differs: "bot" on disk, "switchboard" implied`,
			"rate_limited differs: true on disk, false implied",
			"namespaces.users differ",
			"namespaces.aliases differ",
			"protocols differ",
			"receive_ephemeral differs: false on disk, true implied",
		}},
		{"exclusive flag", clone(func(r *appservice.Registration) {
			r.Namespaces.UserIDs[0].Exclusive = false
		}), []string{"namespaces.users differ"}},
		{"encryption keys missing on disk", clone(func(r *appservice.Registration) {
			r.MSC3202, r.MSC4190 = true, true
		}), []string{
			"org.matrix.msc3202 differs: true on disk, false implied",
			"io.element.msc4190 differs: true on disk, false implied",
		}},
		{"no file", nil, []string{"no registration file"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Diff(tt.onDisk, implied)
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Diff =\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(tt.want, "\n"))
			}
			for _, d := range got {
				if strings.Contains(d, implied.AppToken) || strings.Contains(d, implied.ServerToken) {
					t.Errorf("a token leaked: %s", d)
				}
			}
		})
	}
	if s := DiffSummary([]string{"namespaces.users differ"}); s != "registration file is out of date: namespaces.users differ; rerun switchboard -g and restart the homeserver" {
		t.Errorf("DiffSummary = %q", s)
	}
}

func TestTxnScope(t *testing.T) {
	base := appservice.Registration{ID: "switchboard", ServerToken: "hs1", AppToken: "as1"}
	tests := []struct {
		name string
		edit func(r *appservice.Registration)
		same bool
	}{
		{"same registration", func(r *appservice.Registration) {}, true},
		{"new as_token and url keep the scope", func(r *appservice.Registration) { r.AppToken, r.URL = "as2", "http://x" }, true},
		{"new hs_token", func(r *appservice.Registration) { r.ServerToken = "hs2" }, false},
		{"new id", func(r *appservice.Registration) { r.ID = "other" }, false},
		{"no ambiguity between id and token", func(r *appservice.Registration) { r.ID, r.ServerToken = "switchboardh", "s1" }, false},
	}
	want := TxnScope(&base)
	if len(want) != 32 || strings.Contains(want, "hs1") {
		t.Fatalf("TxnScope = %q, want 32 hex characters", want)
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := base
			tt.edit(&r)
			if got := TxnScope(&r); (got == want) != tt.same {
				t.Errorf("TxnScope = %s, base %s, want same=%v", got, want, tt.same)
			}
		})
	}
}
