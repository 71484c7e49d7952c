package case116117

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/switchboard-matrix/switchboard/appservice"
	"github.com/switchboard-matrix/switchboard/internal/provisiontest"
	"github.com/switchboard-matrix/switchboard/internal/store"
	"github.com/switchboard-matrix/switchboard/internal/store/storetest"
	"github.com/switchboard-matrix/switchboard/internal/testpeer/sbcore"
)

const testProvisionSecret = "case116117-provisioning-test-secret-0123456789"

// provisionFixture is the bot with links b and c and a few cases in its store, behind a
// core (not started) whose ops handler serves the provisioning API on loopback. The user
// @d may use the module, @admin is also one of Switchboard's admins, @eve may not.
type provisionFixture struct {
	b       *Bot
	base    string
	created time.Time
}

func newProvisionFixture(t *testing.T) *provisionFixture {
	t.Helper()
	b, st := twoLinkBot(t)
	created := time.Now().Add(-3 * time.Hour).Truncate(time.Second)
	put := func(link string, c caseRecord) { putCase(st, link, c) }
	put("b", caseRecord{ID: "INC-2024-0001", Role: roleIncoming, Peer: "1.2.9", State: stateReceived, Room: "!r1:example.org",
		Title: "A1 Atemnot, Mustermann", Created: created})
	put("b", caseRecord{ID: "INC-2024-0002", Role: roleOutgoing, Peer: "1.2.9", State: stateCompleted, Created: created})
	put("c", caseRecord{ID: "XYZ-77", Role: roleOutgoing, Peer: "1.2.8", State: stateHandedOver, Title: "B2 Sturz, Muster", Created: created.Add(time.Hour)})
	st.kv[pendKey("b", 1, "m1")] = "m1"
	st.kv[pendKey("b", 2, "m2")] = "m2"
	st.kv[rxKey("c", 1)] = "{}"
	failLink(b.links[1])

	base := sbcore.OpsOnly(t, storetest.Open(t, store.SQLite), b, testProvisionSecret, []string{"@d:example.org"}, []string{"@admin:example.org"})
	return &provisionFixture{b: b, base: base, created: created}
}

// TestProvisionCases: GET /cases lists the open cases oldest first with their state, role,
// peer, age and room, never titles; search and limit as documented; bad parameters are
// refused with a 400 naming them; strangers and requests without credentials are refused.
func TestProvisionCases(t *testing.T) {
	f := newProvisionFixture(t)
	tests := []struct {
		name      string
		auth      string
		path      string
		status    int
		errcode   string
		errorHas  string
		wantIDs   []string
		wantTotal int
	}{
		{name: "all for a user", path: "/modules/case116117/cases?user_id=@d:example.org", status: 200, wantIDs: []string{"INC-2024-0001", "XYZ-77"}, wantTotal: 2},
		{name: "all for the shared secret", path: "/modules/case116117/cases", status: 200, wantIDs: []string{"INC-2024-0001", "XYZ-77"}, wantTotal: 2},
		{name: "search ignores case", path: "/modules/case116117/cases?search=xyz&user_id=@d:example.org", status: 200, wantIDs: []string{"XYZ-77"}, wantTotal: 1},
		{name: "search by part of the ID", path: "/modules/case116117/cases?search=2024-00", status: 200, wantIDs: []string{"INC-2024-0001"}, wantTotal: 1},
		{name: "search skips closed cases", path: "/modules/case116117/cases?search=0002", status: 200, wantIDs: []string{}, wantTotal: 0},
		{name: "limit keeps the oldest and counts all", path: "/modules/case116117/cases?limit=1", status: 200, wantIDs: []string{"INC-2024-0001"}, wantTotal: 2},
		{name: "limit at its maximum", path: "/modules/case116117/cases?limit=1000", status: 200, wantIDs: []string{"INC-2024-0001", "XYZ-77"}, wantTotal: 2},
		{name: "limit 0", path: "/modules/case116117/cases?limit=0", status: 400, errcode: "M_INVALID_PARAM", errorHas: "limit"},
		{name: "limit too large", path: "/modules/case116117/cases?limit=1001", status: 400, errcode: "M_INVALID_PARAM", errorHas: "limit"},
		{name: "limit not a number", path: "/modules/case116117/cases?limit=ten", status: 400, errcode: "M_INVALID_PARAM", errorHas: "limit"},
		{name: "limit empty", path: "/modules/case116117/cases?limit=", status: 400, errcode: "M_INVALID_PARAM", errorHas: "limit"},
		{name: "search too long", path: "/modules/case116117/cases?search=" + strings.Repeat("x", 201), status: 400, errcode: "M_INVALID_PARAM", errorHas: "search"},
		{name: "search of 200 characters", path: "/modules/case116117/cases?search=" + url.QueryEscape(strings.Repeat("ä", 200)), status: 200, wantIDs: []string{}, wantTotal: 0},
		{name: "not in the permissions", path: "/modules/case116117/cases?user_id=@eve:example.org", status: 403, errcode: "M_FORBIDDEN"},
		{name: "no credentials", auth: "-", path: "/modules/case116117/cases", status: 401},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := &provisiontest.Client{Base: f.base, Auth: testProvisionSecret}
			if tt.auth == "-" {
				c.Auth = ""
			}
			a := c.Do(t, http.MethodGet, tt.path, nil)
			if a.Status != tt.status {
				t.Fatalf("status %d, want %d: %s", a.Status, tt.status, a.Body)
			}
			if tt.errcode != "" && a.Errcode() != tt.errcode {
				t.Errorf("errcode %q, want %q: %s", a.Errcode(), tt.errcode, a.Body)
			}
			if tt.errorHas != "" && !strings.Contains(string(a.Body), tt.errorHas) {
				t.Errorf("the error does not name %q: %s", tt.errorHas, a.Body)
			}
			if a.Status != http.StatusOK {
				return
			}
			var got caseList
			a.JSON(t, &got)
			ids := []string{}
			for _, c := range got.Cases {
				ids = append(ids, c.CaseID)
			}
			if !slices.Equal(ids, tt.wantIDs) || got.Total != tt.wantTotal {
				t.Errorf("cases %q total %d, want %q total %d", ids, got.Total, tt.wantIDs, tt.wantTotal)
			}
			for _, no := range []string{"Mustermann", "Atemnot", "Sturz", "title"} {
				if strings.Contains(string(a.Body), no) {
					t.Errorf("the answer shows %q: %s", no, a.Body)
				}
			}
		})
	}
}

// TestProvisionCaseFields: every field of a listed case, the room only when there is one.
func TestProvisionCaseFields(t *testing.T) {
	f := newProvisionFixture(t)
	now := f.created.Add(3*time.Hour + 90*time.Second)
	got, err := f.b.caseList(context.Background(), "", 100, now)
	if err != nil {
		t.Fatal(err)
	}
	want := caseList{Total: 2, Cases: []provisionedCase{
		{CaseID: "INC-2024-0001", Link: "b", State: "received", Role: "incoming", Peer: "1.2.9", Created: f.created.UTC(), AgeSeconds: 3*3600 + 90, RoomID: "!r1:example.org"},
		{CaseID: "XYZ-77", Link: "c", State: "handed_over", Role: "outgoing", Peer: "1.2.8", Created: f.created.Add(time.Hour).UTC(), AgeSeconds: 2*3600 + 90},
	}}
	if len(got.Cases) != len(want.Cases) || got.Total != want.Total {
		t.Fatalf("got %+v, want %+v", got, want)
	}
	for i := range want.Cases {
		if g, w := got.Cases[i], want.Cases[i]; g != w {
			t.Errorf("case %d:\n got %+v\nwant %+v", i, g, w)
		}
	}
	raw, _ := json.Marshal(got.Cases[1])
	if strings.Contains(string(raw), "room_id") {
		t.Errorf("a case without a room shows room_id: %s", raw)
	}
}

// TestProvisionLinks: GET /links lists the links in config order with their state and
// queues; has_error for everyone, the error text for admins only.
func TestProvisionLinks(t *testing.T) {
	f := newProvisionFixture(t)
	const errText = "dial tcp 10.0.0.9:443: connection refused"
	tests := []struct {
		name     string
		auth     string
		user     string
		status   int
		errcode  string
		showsErr bool
	}{
		{name: "a user sees that there is an error", user: "@d:example.org", status: 200},
		{name: "an admin by user ID sees the error", user: "@admin:example.org", status: 200, showsErr: true},
		{name: "the shared secret sees the error", status: 200, showsErr: true},
		{name: "not in the permissions", user: "@eve:example.org", status: 403, errcode: "M_FORBIDDEN"},
		{name: "wrong credentials", auth: "not-the-secret", status: 401},
		{name: "no credentials", auth: "-", status: 401},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := &provisiontest.Client{Base: f.base, Auth: testProvisionSecret}
			switch tt.auth {
			case "-":
				c.Auth = ""
			case "":
			default:
				c.Auth = tt.auth
			}
			path := "/modules/case116117/links"
			if tt.user != "" {
				path += "?user_id=" + tt.user
			}
			a := c.Do(t, http.MethodGet, path, nil)
			if a.Status != tt.status {
				t.Fatalf("status %d, want %d: %s", a.Status, tt.status, a.Body)
			}
			if tt.errcode != "" && a.Errcode() != tt.errcode {
				t.Errorf("errcode %q, want %q", a.Errcode(), tt.errcode)
			}
			if a.Status != http.StatusOK {
				return
			}
			var got linkList
			a.JSON(t, &got)
			lastErr := ""
			if tt.showsErr {
				lastErr = "Post \"https://ucrm.example\": " + errText
			}
			want := []provisionedLink{
				{Name: "b", OID: "1.2.3", State: "starting", OpenCases: 1, ToSend: 2},
				{Name: "c", OID: "1.2.4", State: "reconnecting", HasError: true, LastError: lastErr, OpenCases: 1, Received: 1},
			}
			if !slices.Equal(got.Links, want) {
				t.Errorf("links\n got %+v\nwant %+v", got.Links, want)
			}
			if !tt.showsErr && (strings.Contains(string(a.Body), "10.0.0.9") || strings.Contains(string(a.Body), "last_error")) {
				t.Errorf("a non-admin sees the error: %s", a.Body)
			}
		})
	}
}

// TestProvisionMatchesCommands: the API and the chat commands read the same data.
func TestProvisionMatchesCommands(t *testing.T) {
	f := newProvisionFixture(t)
	ctx := context.Background()
	links, err := f.b.linkSummaries(ctx)
	if err != nil {
		t.Fatal(err)
	}
	out, err := f.b.HandleCommand(ctx, appservice.Command{Sender: "@d:example.org", Args: []string{"links"}})
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range links {
		if !strings.Contains(out, "**"+l.name+"** ("+l.oid+"): "+l.state) {
			t.Errorf("the links command does not show %s as %s:\n%s", l.name, l.state, out)
		}
	}
	cases, err := f.b.caseList(ctx, "xyz", 100, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	out, err = f.b.HandleCommand(ctx, appservice.Command{Sender: "@d:example.org", Args: []string{"cases", "xyz"}})
	if err != nil {
		t.Fatal(err)
	}
	if len(cases.Cases) != 1 || !strings.Contains(out, "`"+cases.Cases[0].CaseID+"`") {
		t.Errorf("API %+v, command:\n%s", cases, out)
	}
}
