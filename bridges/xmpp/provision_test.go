package xmpp

import (
	"errors"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"

	"github.com/switchboard-matrix/switchboard/bridges/xmpp/xid"
	"github.com/switchboard-matrix/switchboard/internal/provisiontest"
	"github.com/switchboard-matrix/switchboard/internal/store"
	"github.com/switchboard-matrix/switchboard/internal/store/storetest"
	"github.com/switchboard-matrix/switchboard/internal/testpeer/sbcore"
)

const testProvisionSecret = "xmpp-provisioning-test-secret-0123456789"

// provisionFixture is the bridge with two linked group chats in its store, behind a core
// (not started) whose ops handler serves the provisioning API on loopback. @d may use the
// module, @admin is also one of Switchboard's admins. The bridge has no XMPP server and no
// homeserver: the requests tested here are answered before either is needed.
func provisionFixture(t *testing.T) (*sendHost, string) {
	t.Helper()
	b, err := New(Config{Component: ComponentConfig{Address: "127.0.0.1:1", Domain: "matrix.example.org", Secret: "s"}})
	if err != nil {
		t.Fatal(err)
	}
	const chat = "muc:team@conf.example.net"
	st := &portalStore{
		kvStore: kvStore{kv: map[string]string{
			"mucs":                           `{"` + chat + `":"!team:example.org","muc:a@conf.example.net":"!a:example.org"}`,
			"members:" + chat:                `{}`,
			"members:muc:a@conf.example.net": `{}`,
		}},
		portals: map[string]id.RoomID{chat: "!team:example.org", "muc:a@conf.example.net": "!a:example.org"},
	}
	h := &sendHost{st: st}
	b.host = h
	b.mapper = xid.Mapper{Homeserver: "example.org", Component: "matrix.example.org", Prefix: b.cfg.Prefix}
	base := sbcore.OpsOnly(t, storetest.Open(t, store.SQLite), b, testProvisionSecret, []string{"@d:example.org"}, []string{"@admin:example.org"})
	return h, base
}

// TestProvisionPortals: GET /portals lists the links sorted by JID; POST /portals refuses
// malformed bodies with a 400 naming the field; DELETE /portals/{jid} is for admins,
// refuses an unknown or malformed JID, and unlinks as the chat command does (the portal
// and the records gone, a notice in the room).
func TestProvisionPortals(t *testing.T) {
	h, base := provisionFixture(t)
	admin := &provisiontest.Client{Base: base, Auth: testProvisionSecret}
	user := func(u string) string { return "?user_id=" + url.QueryEscape(u) }
	tests := []struct {
		name       string
		method     string
		path       string
		body       any
		wantStatus int
		wantCode   string
		wantText   string // in the body
	}{
		{"list", http.MethodGet, "/modules/xmpp/portals", nil, http.StatusOK, "",
			`{"portals":[{"jid":"a@conf.example.net","room_id":"!a:example.org"},{"jid":"team@conf.example.net","room_id":"!team:example.org"}]}`},
		{"list as a user", http.MethodGet, "/modules/xmpp/portals" + user("@d:example.org"), nil, http.StatusOK, "", `"jid":"a@conf.example.net"`},
		{"list as a stranger", http.MethodGet, "/modules/xmpp/portals" + user("@eve:example.org"), nil, http.StatusForbidden, "M_FORBIDDEN", "permissions"},
		{"link a bad jid", http.MethodPost, "/modules/xmpp/portals", map[string]string{"jid": "team@conf.example.net/nick", "room": "!r:example.org"},
			http.StatusBadRequest, "M_INVALID_PARAM", `jid: \"team@conf.example.net/nick\" is not a room address`},
		{"link a bad room", http.MethodPost, "/modules/xmpp/portals", map[string]string{"jid": "new@conf.example.net", "room": "team"},
			http.StatusBadRequest, "M_INVALID_PARAM", `room: \"team\" is neither a room ID`},
		{"link an alias without server", http.MethodPost, "/modules/xmpp/portals", map[string]string{"jid": "new@conf.example.net", "room": "#team"},
			http.StatusBadRequest, "M_INVALID_PARAM", "room: "},
		{"link without room", http.MethodPost, "/modules/xmpp/portals", map[string]string{"jid": "new@conf.example.net"},
			http.StatusBadRequest, "", "room"},
		{"link with an unknown field", http.MethodPost, "/modules/xmpp/portals", map[string]string{"jid": "new@conf.example.net", "room": "!r:example.org", "nick": "x"},
			http.StatusBadRequest, "M_BAD_JSON", `unknown field \"nick\"`},
		{"link without a body", http.MethodPost, "/modules/xmpp/portals", nil, http.StatusBadRequest, "M_NOT_JSON", "JSON"},
		{"unlink as a user", http.MethodDelete, "/modules/xmpp/portals/team@conf.example.net" + user("@d:example.org"), nil,
			http.StatusForbidden, "M_FORBIDDEN", "admins"},
		{"unlink a bad jid", http.MethodDelete, "/modules/xmpp/portals/conf.example.net", nil, http.StatusBadRequest, "M_INVALID_PARAM", "jid: "},
		{"unlink an unknown jid", http.MethodDelete, "/modules/xmpp/portals/other@conf.example.net", nil, http.StatusNotFound, "M_NOT_FOUND",
			"other@conf.example.net is not linked"},
		{"unlink", http.MethodDelete, "/modules/xmpp/portals/team@conf.example.net" + user("@admin:example.org"), nil, http.StatusOK, "",
			`{"jid":"team@conf.example.net","room_id":"!team:example.org"}`},
		{"unlink again", http.MethodDelete, "/modules/xmpp/portals/team@conf.example.net", nil, http.StatusNotFound, "M_NOT_FOUND", "is not linked"},
		{"list after unlink", http.MethodGet, "/modules/xmpp/portals", nil, http.StatusOK, "",
			`{"portals":[{"jid":"a@conf.example.net","room_id":"!a:example.org"}]}`},
	}
	for _, tt := range tests { // in order: the unlink changes the list
		t.Run(tt.name, func(t *testing.T) {
			a := admin.Do(t, tt.method, tt.path, tt.body)
			if a.Status != tt.wantStatus || tt.wantCode != "" && a.Errcode() != tt.wantCode {
				t.Fatalf("%s %s = %d %s, want %d %s", tt.method, tt.path, a.Status, a.Body, tt.wantStatus, tt.wantCode)
			}
			if !strings.Contains(string(a.Body), tt.wantText) {
				t.Errorf("answer lacks %s:\n%s", tt.wantText, a.Body)
			}
		})
	}
	if _, ok := h.st.portals["muc:team@conf.example.net"]; ok {
		t.Error("the unlinked portal is still in the store")
	}
	if _, ok := h.st.kv["members:muc:team@conf.example.net"]; ok {
		t.Error("the unlinked group chat's members are still recorded")
	}
	if len(h.sent) != 1 || h.sent[0].RoomID != "!team:example.org" ||
		h.sent[0].Content.(*event.MessageEventContent).Body != "This room is no longer linked to team@conf.example.net." {
		t.Errorf("notices %+v, want one in !team:example.org", h.sent)
	}
}

// TestLinkPermission: a user who is not an admin may link a room only when joined to it
// with a power level of at least its state_default; the creator of a room of version 12
// has unlimited power.
func TestLinkPermission(t *testing.T) {
	const room = id.RoomID("!r:example.org")
	fifty, zero := 50, 0
	levels := func(def *int, users map[id.UserID]int) *event.PowerLevelsEventContent {
		return &event.PowerLevelsEventContent{StateDefaultPtr: def, Users: users}
	}
	v12 := levels(&fifty, nil)
	v12.CreateEvent = &event.Event{Sender: "@creator:example.org", Type: event.StateCreate,
		Content: event.Content{Parsed: &event.CreateEventContent{RoomVersion: "12"}}}
	tests := []struct {
		name       string
		pl         *event.PowerLevelsEventContent
		membership event.Membership
		user       id.UserID
		want       string // "" allowed; else in the refusal
	}{
		{"moderator", levels(&fifty, map[id.UserID]int{"@u:example.org": 50}), event.MembershipJoin, "@u:example.org", ""},
		{"below state_default", levels(&fifty, map[id.UserID]int{"@u:example.org": 49}), event.MembershipJoin, "@u:example.org", "power level 50 or more"},
		{"state_default missing means 50", levels(nil, nil), event.MembershipJoin, "@u:example.org", "power level 50 or more"},
		{"state_default 0", levels(&zero, nil), event.MembershipJoin, "@u:example.org", ""},
		{"no power levels", nil, event.MembershipJoin, "@u:example.org", ""},
		{"invited only", levels(&zero, nil), event.MembershipInvite, "@u:example.org", "is not joined"},
		{"not a member", levels(&zero, nil), "", "@u:example.org", "is not joined"},
		{"left", levels(&zero, map[id.UserID]int{"@u:example.org": 100}), event.MembershipLeave, "@u:example.org", "is not joined"},
		{"creator of a v12 room", v12, event.MembershipJoin, "@creator:example.org", ""},
		{"other user of a v12 room", v12, event.MembershipJoin, "@u:example.org", "power level 50 or more"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := linkPermission(tt.pl, tt.membership, tt.user, room)
			if tt.want == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			var r *linkRefusal
			if !errors.As(err, &r) || r.status != http.StatusForbidden || !strings.Contains(r.msg, tt.want) {
				t.Fatalf("linkPermission = %v, want a 403 with %q", err, tt.want)
			}
		})
	}
}
