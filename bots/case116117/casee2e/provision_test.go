package casee2e

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/rs/zerolog"

	"github.com/switchboard-matrix/switchboard/appservice"
	"github.com/switchboard-matrix/switchboard/bots/case116117"
	"github.com/switchboard-matrix/switchboard/internal/provisiontest"
	"github.com/switchboard-matrix/switchboard/internal/store"
	"github.com/switchboard-matrix/switchboard/internal/store/storetest"
	"github.com/switchboard-matrix/switchboard/internal/testpeer/matrixtest"
	"github.com/switchboard-matrix/switchboard/internal/testpeer/sbcore"
)

const provisionSecret = "casee2e-provisioning-shared-secret-0123456789"

// apiCase and apiLink are the API's Case and CaseLink as the test reads them.
type apiCase struct {
	CaseID     string `json:"case_id"`
	Link       string `json:"link"`
	State      string `json:"state"`
	Role       string `json:"role"`
	Peer       string `json:"peer"`
	Created    string `json:"created"`
	AgeSeconds int64  `json:"age_seconds"`
	RoomID     string `json:"room_id"`
}

type apiLink struct {
	Name      string  `json:"name"`
	OID       string  `json:"oid"`
	State     string  `json:"state"`
	HasError  bool    `json:"has_error"`
	LastError *string `json:"last_error"`
	OpenCases int     `json:"open_cases"`
	ToSend    int     `json:"to_send"`
	Received  int     `json:"received"`
}

// TestProvisioning: the provisioning API lists the open cases of a link (found by part of
// their ID, without patient data) after centre A handed one over and after one was handed
// over from Matrix to C, and the links with their state and queues; a link that cannot log
// in to its UCRM shows has_error to its users and the error to admins only; requests
// without credentials, from users not in the module's permissions and with a bad limit
// are refused.
func TestProvisioning(t *testing.T) {
	alice := newMatrixUser(t, "alice")
	ops := newMatrixUser(t, "ops")
	b := newCentre(t, alice.UserID)
	broken := newCentre(t, alice.UserID)
	broken.UCRM.Password = "not-the-password"

	bot, err := case116117.New(case116117.Config{Links: []case116117.LinkConfig{b, broken}})
	if err != nil {
		t.Fatal(err)
	}
	level, _ := zerolog.ParseLevel(getenv("SWITCHBOARD_CASEE2E_LOG", "info"))
	core, _ := sbcore.Start(t, sbcore.Options{
		Registration: onHS.Reg, HomeserverURL: onHS.URL, Domain: domain, ASPort: onHS.ASPort, Store: storetest.Open(t, store.SQLite),
		Modules: []appservice.Module{bot}, Version: "casee2e", LogLevel: level,
		Permissions:  map[string][]string{case116117.ID: {alice.UserID.String(), ops.UserID.String()}},
		Provisioning: &appservice.Provisioning{SharedSecret: provisionSecret, Admins: []string{ops.UserID.String()}},
	})
	api := &provisiontest.Client{Base: sbcore.ServeOps(t, core), Auth: provisionSecret}
	asAlice := "user_id=" + url.QueryEscape(alice.UserID.String())
	asOps := "user_id=" + url.QueryEscape(ops.UserID.String())
	listCases := func(t *testing.T, query string) (cases []apiCase, total int) {
		t.Helper()
		a := api.Do(t, http.MethodGet, "/modules/case116117/cases?"+query, nil)
		if a.Status != http.StatusOK {
			t.Fatalf("cases?%s: %d %s", query, a.Status, a.Body)
		}
		for _, no := range []string{"Mustermann", "Musterhausen", "Atemnot", "Erika", "Beispielstadt"} {
			if strings.Contains(string(a.Body), no) {
				t.Errorf("cases?%s shows patient data (%q): %s", query, no, a.Body)
			}
		}
		var got struct {
			Cases []apiCase `json:"cases"`
			Total int       `json:"total"`
		}
		a.JSON(t, &got)
		return got.Cases, got.Total
	}
	listLinks := func(t *testing.T, query string) map[string]apiLink {
		t.Helper()
		a := api.Do(t, http.MethodGet, "/modules/case116117/links?"+query, nil)
		if a.Status != http.StatusOK {
			t.Fatalf("links?%s: %d %s", query, a.Status, a.Body)
		}
		var got struct {
			Links []apiLink `json:"links"`
		}
		a.JSON(t, &got)
		out := map[string]apiLink{}
		var names []string
		for _, l := range got.Links {
			out[l.Name] = l
			names = append(names, l.Name)
		}
		if strings.Join(names, ",") != b.Name+","+broken.Name {
			t.Errorf("links %v, want %s and %s in config order", names, b.Name, broken.Name)
		}
		return out
	}

	// Centre A hands a case over to B.
	incoming := uuid.NewString()
	if _, err := peerA.Send(context.Background(), b.OID, app, "incident", incident(incoming), "NONE"); err != nil {
		t.Fatal(err)
	}
	inRoom := caseRoom(t, alice, b, incoming)
	// A case is handed over from Matrix to C.
	admin := adminRoom(t, alice, b)
	say(t, alice, admin, "!handover "+oidC+"\nstichwort: B2\nanlass: Sturz\nstrasse: Hauptstraße\nhausnummer: 1\nplz: 54321\nort: Beispielstadt\n"+
		"patient: Muster, Erika\ngeschlecht: w\ngeburtsdatum: 31.12.1950\ntelefon: +49 40 555\nersteinschaetzung: Sturz, ansprechbar")
	got := received{peer: peerC}
	inc := got.wait(t, b.OID, "incident", nil)
	var data map[string]any
	_ = json.Unmarshal(inc.Data, &data)
	outgoing, _ := data["sharedIncidentId"].(string)
	outRoom := caseRoom(t, alice, b, outgoing)

	t.Run("cases", func(t *testing.T) {
		cases, total := listCases(t, asAlice)
		if total != 2 || len(cases) != 2 {
			t.Fatalf("%d cases (total %d), want 2: %+v", len(cases), total, cases)
		}
		in, out := cases[0], cases[1] // oldest first
		if in.CaseID != incoming || in.Link != b.Name || in.State != "received" || in.Role != "incoming" || in.Peer != oidA || in.RoomID != inRoom.String() {
			t.Errorf("the incoming case: %+v", in)
		}
		if out.CaseID != outgoing || out.Link != b.Name || out.State != "handed_over" || out.Role != "outgoing" || out.Peer != oidC || out.RoomID != outRoom.String() {
			t.Errorf("the outgoing case: %+v", out)
		}
		for _, c := range cases {
			if _, err := time.Parse(time.RFC3339, c.Created); err != nil || c.AgeSeconds < 0 {
				t.Errorf("case %s: created %q (%v), age %d", c.CaseID, c.Created, err, c.AgeSeconds)
			}
		}
	})
	t.Run("search", func(t *testing.T) {
		part := strings.ToUpper(incoming[4:17])
		cases, total := listCases(t, asAlice+"&search="+url.QueryEscape(part))
		if total != 1 || len(cases) != 1 || cases[0].CaseID != incoming {
			t.Errorf("search %q: %+v (total %d), want %s", part, cases, total, incoming)
		}
		cases, total = listCases(t, asAlice+"&search=no-such-case")
		if total != 0 || len(cases) != 0 {
			t.Errorf("search no-such-case: %+v (total %d), want none", cases, total)
		}
		cases, total = listCases(t, asAlice+"&limit=1")
		if total != 2 || len(cases) != 1 || cases[0].CaseID != incoming {
			t.Errorf("limit=1: %+v (total %d), want the oldest of 2", cases, total)
		}
	})
	t.Run("links", func(t *testing.T) {
		var links map[string]apiLink
		matrixtest.WaitFor(t, 30*time.Second, "b connected with empty queues and the broken link failing", func() (bool, error) {
			links = listLinks(t, asAlice)
			l, bad := links[b.Name], links[broken.Name]
			return l.State == "connected" && l.ToSend == 0 && l.Received == 0 && bad.HasError, nil
		})
		if l := links[b.Name]; l.OID != b.OID || l.OpenCases != 2 || l.HasError || l.LastError != nil {
			t.Errorf("link %s: %+v", b.Name, l)
		}
		if bad := links[broken.Name]; bad.OID != broken.OID || bad.OpenCases != 0 || bad.LastError != nil {
			t.Errorf("link %s as a user (no last_error): %+v", broken.Name, bad)
		}
		for _, q := range []string{asOps, ""} {
			bad := listLinks(t, q)[broken.Name]
			if !bad.HasError || bad.LastError == nil || *bad.LastError == "" || strings.Contains(*bad.LastError, broken.UCRM.Password) {
				t.Errorf("link %s as an admin (%q): want its error, without the password: %+v", broken.Name, q, bad)
			}
		}
	})
	t.Run("refusals", func(t *testing.T) {
		tests := []struct {
			name, auth, path, errcode string
			status                    int
		}{
			{"no Authorization", "", "/modules/case116117/cases", "", http.StatusUnauthorized},
			{"no Authorization for links", "", "/modules/case116117/links", "", http.StatusUnauthorized},
			{"not in the permissions", provisionSecret, "/modules/case116117/cases?user_id=" + url.QueryEscape("@mallory:"+domain), "M_FORBIDDEN", http.StatusForbidden},
			{"not in the permissions for links", provisionSecret, "/modules/case116117/links?user_id=" + url.QueryEscape("@mallory:"+domain), "M_FORBIDDEN", http.StatusForbidden},
			{"limit=0", provisionSecret, "/modules/case116117/cases?limit=0&" + asAlice, "M_INVALID_PARAM", http.StatusBadRequest},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				c := &provisiontest.Client{Base: api.Base, Auth: tt.auth}
				a := c.Do(t, http.MethodGet, tt.path, nil)
				if a.Status != tt.status || tt.errcode != "" && a.Errcode() != tt.errcode {
					t.Errorf("%d %s, want %d %s", a.Status, a.Body, tt.status, tt.errcode)
				}
			})
		}
	})
}
