package xmppe2e

import (
	"context"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"maunium.net/go/mautrix"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"
	"mellium.im/xmpp/jid"

	"github.com/switchboard-matrix/switchboard/appservice"
	"github.com/switchboard-matrix/switchboard/bridges/xmpp"
	"github.com/switchboard-matrix/switchboard/bridges/xmpp/xmsg"
	"github.com/switchboard-matrix/switchboard/internal/provisiontest"
	"github.com/switchboard-matrix/switchboard/internal/store"
	"github.com/switchboard-matrix/switchboard/internal/store/storetest"
	"github.com/switchboard-matrix/switchboard/internal/testpeer/matrixtest"
	"github.com/switchboard-matrix/switchboard/internal/testpeer/sbcore"
)

const provisionSecret = "xmppe2e-provisioning-secret-0123456789abcdef"

// portal is an answer of the portal routes.
type portal struct {
	JID    string    `json:"jid"`
	RoomID id.RoomID `json:"room_id"`
}

// startProvisioned starts Switchboard with the bridge and the provisioning API (the shared
// secret and OpenID tokens checked at the homeserver; admins are the users given) and
// returns the API's base URL once the component is connected.
func startProvisioned(t *testing.T, admins ...id.UserID) string {
	t.Helper()
	bridge, err := xmpp.New(bridgeConfig())
	if err != nil {
		t.Fatal(err)
	}
	var adm []string
	for _, a := range admins {
		adm = append(adm, a.String())
	}
	core, ctx := sbcore.Start(t, sbcore.Options{
		Registration: onHS.Reg, HomeserverURL: onHS.URL, Domain: domain, ASPort: onHS.ASPort,
		Store: storetest.Open(t, store.SQLite), Modules: []appservice.Module{bridge}, Version: "xmppe2e", LogLevel: logLevel(),
		Provisioning: &appservice.Provisioning{SharedSecret: provisionSecret, OpenID: true, Admins: adm},
	})
	matrixtest.WaitFor(t, 20*time.Second, "the component to connect", func() (bool, error) {
		return bridge.Status(ctx).Connected, nil
	})
	return sbcore.ServeOps(t, core)
}

// roomWithBot creates a room of owner with the bot (and the users given) invited and
// joined.
func roomWithBot(t *testing.T, owner *mautrix.Client, name string, members ...*mautrix.Client) id.RoomID {
	t.Helper()
	ctx := context.Background()
	bot := botID()
	invite := []id.UserID{bot}
	for _, m := range members {
		invite = append(invite, m.UserID)
	}
	resp, err := owner.CreateRoom(ctx, &mautrix.ReqCreateRoom{Preset: "private_chat", Name: name, Invite: invite})
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range members {
		if _, err := m.JoinRoomByID(ctx, resp.RoomID); err != nil {
			t.Fatal(err)
		}
	}
	matrixtest.WaitFor(t, 20*time.Second, "the bot to join "+name, func() (bool, error) {
		return matrixtest.IsJoined(ctx, owner, resp.RoomID, bot)
	})
	return resp.RoomID
}

// TestProvisionPortals links a MUC to an existing Matrix room through the provisioning API
// (then bridged), lists it, refuses a second link of the MUC or the room (409), a user
// without the power to change the room's state (403) and a malformed body (400); a room's
// creator links another room with an OpenID token; an admin unlinks (no longer bridged),
// and unlinking again is a 404.
func TestProvisionPortals(t *testing.T) {
	alice := newMatrixUser(t, "alice") // creates the rooms; not an admin of the API
	carol := newMatrixUser(t, "carol") // a member without power
	admin := newMatrixUser(t, "admin")
	base := startProvisioned(t, admin.UserID)
	ctx := context.Background()
	bob := newXClient(t, "bob")
	room := jid.MustParse(unique("prov") + "@" + xs.MUCDomain)
	other := jid.MustParse(unique("prov2") + "@" + xs.MUCDomain)
	bob.joinMUC(room, "Bob")
	bob.joinMUC(other, "Bob")
	portalRoom := roomWithBot(t, alice, "Prov", carol)
	otherRoom := roomWithBot(t, alice, "Prov 2", carol)

	op := &provisiontest.Client{Base: base, Auth: provisionSecret}
	as := func(u id.UserID) string { return "?user_id=" + url.QueryEscape(u.String()) }

	// An operator's tool links the MUC; bob's message reaches the room.
	var linked portal
	a := op.Do(t, http.MethodPost, "/modules/xmpp/portals", map[string]string{"jid": room.String(), "room": portalRoom.String()})
	if a.Status != http.StatusOK {
		t.Fatalf("link: %d %s", a.Status, a.Body)
	}
	if a.JSON(t, &linked); linked != (portal{room.String(), portalRoom}) {
		t.Fatalf("link answered %+v", linked)
	}
	aliceOcc, _ := room.WithResource("alice M")
	bob.waitPresence("alice's puppet joining", func(p *xmsg.Presence) bool { return p.From.Equal(aliceOcc) && p.Type == "" })
	bob.send(&xmsg.Message{Type: "groupchat", To: room, Body: "hi over the API", ID: "p-1"})
	waitMatrix(t, alice, portalRoom, "bob's message", bodyIs(ghostOf(t, bob.bare().String()), "hi over the API"))

	var list struct{ Portals []portal }
	op.Do(t, http.MethodGet, "/modules/xmpp/portals", nil).JSON(t, &list)
	if !slices.Contains(list.Portals, linked) {
		t.Errorf("the list lacks %+v: %+v", linked, list.Portals)
	}

	refusals := []struct {
		name     string
		client   *provisiontest.Client
		path     string
		body     any
		status   int
		code     string
		contains string
	}{
		{"the MUC again", op, "", map[string]string{"jid": room.String(), "room": otherRoom.String()}, http.StatusConflict, "M_CONFLICT", portalRoom.String()},
		{"the room again", op, "", map[string]string{"jid": other.String(), "room": portalRoom.String()}, http.StatusConflict, "M_CONFLICT", room.String()},
		{"a member without power", op, as(carol.UserID), map[string]string{"jid": other.String(), "room": otherRoom.String()}, http.StatusForbidden, "M_FORBIDDEN", "power level 50"},
		{"an unknown field", op, "", map[string]any{"jid": other.String(), "room": otherRoom.String(), "relay": true}, http.StatusBadRequest, "M_BAD_JSON", "relay"},
		{"a malformed jid", op, "", map[string]any{"jid": "no jid", "room": otherRoom.String()}, http.StatusBadRequest, "M_INVALID_PARAM", "jid"},
		{"a MUC that does not exist", op, "", map[string]any{"jid": unique("none") + "@" + xs.MUCDomain, "room": otherRoom.String()}, http.StatusNotFound, "M_NOT_FOUND", "group chat"},
		{"an unknown alias", op, "", map[string]any{"jid": other.String(), "room": "#" + unique("nothing") + ":" + domain}, http.StatusNotFound, "M_NOT_FOUND", "#"},
	}
	for _, tt := range refusals {
		t.Run(tt.name, func(t *testing.T) {
			a := tt.client.Do(t, http.MethodPost, "/modules/xmpp/portals"+tt.path, tt.body)
			if a.Status != tt.status || a.Errcode() != tt.code || !strings.Contains(string(a.Body), tt.contains) {
				t.Errorf("answer %d %s, want %d %s with %q", a.Status, a.Body, tt.status, tt.code, tt.contains)
			}
		})
	}

	// The rooms' creator links the other room with an OpenID token of the homeserver.
	tok, err := alice.RequestOpenIDToken(ctx)
	if err != nil {
		t.Fatal(err)
	}
	asAlice := &provisiontest.Client{Base: base, Auth: "openid:" + tok.AccessToken}
	if a := asAlice.Do(t, http.MethodPost, "/modules/xmpp/portals", map[string]string{"jid": other.String(), "room": otherRoom.String()}); a.Status != http.StatusOK {
		t.Fatalf("link by the room's creator: %d %s", a.Status, a.Body)
	}
	aliceInOther, _ := other.WithResource("alice M")
	bob.waitPresence("alice's puppet joining the other MUC", func(p *xmsg.Presence) bool { return p.From.Equal(aliceInOther) && p.Type == "" })
	if a := asAlice.Do(t, http.MethodDelete, "/modules/xmpp/portals/"+url.PathEscape(other.String()), nil); a.Status != http.StatusForbidden {
		t.Errorf("unlink by a user who is not an admin: %d %s", a.Status, a.Body)
	}

	// An admin unlinks: the puppets leave, the room gets a notice, nothing more is bridged.
	var removed portal
	a = op.Do(t, http.MethodDelete, "/modules/xmpp/portals/"+url.PathEscape(room.String())+as(admin.UserID), nil)
	if a.Status != http.StatusOK {
		t.Fatalf("unlink: %d %s", a.Status, a.Body)
	}
	if a.JSON(t, &removed); removed != linked {
		t.Errorf("unlink answered %+v, want %+v", removed, linked)
	}
	waitMatrix(t, alice, portalRoom, "the unlink notice", func(e *event.Event) bool {
		return e.Sender == botID() && e.Content.AsMessage().Body == "This room is no longer linked to "+room.String()+"."
	})
	bob.waitPresence("alice's puppet leaving", func(p *xmsg.Presence) bool { return p.From.Equal(aliceOcc) && p.Type == "unavailable" })
	bob.send(&xmsg.Message{Type: "groupchat", To: room, Body: "after the unlink", ID: "p-2"})
	// The same client's next message, in the MUC still linked, arrives after it would have.
	bob.send(&xmsg.Message{Type: "groupchat", To: other, Body: "marker", ID: "p-3"})
	waitMatrix(t, alice, otherRoom, "the marker in the other portal", bodyIs(ghostOf(t, bob.bare().String()), "marker"))
	evts, err := matrixtest.RoomMessages(ctx, alice, portalRoom)
	if err != nil {
		t.Fatal(err)
	}
	if slices.Contains(matrixtest.Bodies(evts, ""), "after the unlink") {
		t.Error("a message of the unlinked MUC reached its former room")
	}
	op.Do(t, http.MethodGet, "/modules/xmpp/portals", nil).JSON(t, &list)
	if slices.Contains(list.Portals, linked) || !slices.Contains(list.Portals, portal{other.String(), otherRoom}) {
		t.Errorf("the list after the unlink: %+v", list.Portals)
	}
	if a := op.Do(t, http.MethodDelete, "/modules/xmpp/portals/"+url.PathEscape(room.String()), nil); a.Status != http.StatusNotFound || a.Errcode() != "M_NOT_FOUND" {
		t.Errorf("unlink again: %d %s", a.Status, a.Body)
	}
	if a := op.Do(t, http.MethodDelete, "/modules/xmpp/portals/"+url.PathEscape(other.String()), nil); a.Status != http.StatusOK {
		t.Errorf("unlink the other: %d %s", a.Status, a.Body)
	}
}

// TestProvisionOpenID: a user of the homeserver authenticates with an OpenID token from
// its /openid/request_token, checked at the homeserver: whoami and the portal list answer;
// a forged token is a 401 and another user's user_id with a valid token a 403.
func TestProvisionOpenID(t *testing.T) {
	alice := newMatrixUser(t, "alice")
	carol := newMatrixUser(t, "carol")
	base := startProvisioned(t)
	tok, err := alice.RequestOpenIDToken(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	c := &provisiontest.Client{Base: base, Auth: "openid:" + tok.AccessToken}

	var who struct {
		UserID  id.UserID `json:"user_id"`
		Admin   bool      `json:"admin"`
		Auth    string    `json:"auth"`
		Modules []string  `json:"modules"`
	}
	a := c.Do(t, http.MethodGet, "/whoami", nil)
	if a.Status != http.StatusOK {
		t.Fatalf("whoami: %d %s", a.Status, a.Body)
	}
	if a.JSON(t, &who); who.UserID != alice.UserID || who.Admin || who.Auth != "openid" || !slices.Contains(who.Modules, xmpp.ID) {
		t.Errorf("whoami: %+v", who)
	}
	if a := c.Do(t, http.MethodGet, "/modules/xmpp/portals", nil); a.Status != http.StatusOK {
		t.Errorf("portals: %d %s", a.Status, a.Body)
	}
	forged := &provisiontest.Client{Base: base, Auth: "openid:" + strings.Repeat("x", len(tok.AccessToken))}
	if a := forged.Do(t, http.MethodGet, "/modules/xmpp/portals", nil); a.Status != http.StatusUnauthorized || a.Errcode() != "M_UNKNOWN_TOKEN" {
		t.Errorf("a forged token: %d %s", a.Status, a.Body)
	}
	if a := c.Do(t, http.MethodGet, "/modules/xmpp/portals?user_id="+url.QueryEscape(carol.UserID.String()), nil); a.Status != http.StatusForbidden {
		t.Errorf("another user's user_id: %d %s", a.Status, a.Body)
	}
}
