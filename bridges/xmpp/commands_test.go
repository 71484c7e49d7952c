package xmpp

import (
	"context"
	"strings"
	"testing"

	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"

	"github.com/switchboard-matrix/switchboard/appservice"
	"github.com/switchboard-matrix/switchboard/bridges/xmpp/xid"
)

// kvStore is the key-value part of a module store in memory.
type kvStore struct {
	appservice.ModuleStore
	kv map[string]string
}

func (s *kvStore) GetKV(_ context.Context, key string) (string, error) {
	if v, ok := s.kv[key]; ok {
		return v, nil
	}
	return "", appservice.ErrNotFound
}

func (s *kvStore) PutKV(_ context.Context, key, value string) error {
	s.kv[key] = value
	return nil
}

func (s *kvStore) DeleteKV(_ context.Context, key string) error {
	delete(s.kv, key)
	return nil
}

// portalStore is a kvStore with portals.
type portalStore struct {
	kvStore
	portals map[string]id.RoomID
}

func (s *portalStore) PortalByKey(_ context.Context, key string) (id.RoomID, error) {
	if r, ok := s.portals[key]; ok {
		return r, nil
	}
	return "", appservice.ErrNotFound
}

func (s *portalStore) DeletePortal(_ context.Context, key string) error {
	delete(s.portals, key)
	return nil
}

// sendHost records what the module enqueues.
type sendHost struct {
	appservice.Host
	st   *portalStore
	sent []appservice.Message
}

func (h *sendHost) Store() appservice.ModuleStore { return h.st }
func (h *sendHost) BotUserID() id.UserID          { return "@switchboard:example.org" }
func (h *sendHost) Enqueue(_ context.Context, msg appservice.Message) error {
	h.sent = append(h.sent, msg)
	return nil
}

type kvHost struct {
	appservice.Host
	st *kvStore
}

func (h *kvHost) Store() appservice.ModuleStore { return h.st }

// TestCommands: help, list and the refusals of link that need no XMPP server.
func TestCommands(t *testing.T) {
	tests := []struct {
		name  string
		mucs  string // the stored "mucs" map
		admin bool
		args  []string
		want  []string
	}{
		{"help", "", false, []string{"help"}, []string{"`xmpp list`", "`xmpp link <room@conference.example.org>`", "(admins", "`xmpp unlink <room@conference.example.org>`"}},
		{"no args", "", false, nil, []string{"`xmpp list`"}},
		{"empty list", "", false, []string{"list"}, []string{"No group chat is linked", "#_xmpp_"}},
		{"list", `{"muc:b@conf.example.net":"!b:example.org","muc:a@conf.example.net":"!a:example.org"}`, false, []string{"list"},
			[]string{"**2 linked group chats**", "* a@conf.example.net ↔ !a:example.org\n* b@conf.example.net ↔ !b:example.org"}},
		{"link another room as a user", "", false, []string{"link", "team@conf.example.net", "#team:example.org"}, []string{"Only Switchboard's admins"}},
		{"link a bad address", "", true, []string{"link", "not a jid@@"}, []string{"is not a room address"}},
		{"link usage", "", true, []string{"link"}, []string{"Usage: `xmpp link"}},
		{"unknown", "", false, []string{"frobnicate"}, []string{"xmpp help"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := New(Config{Component: ComponentConfig{Address: "127.0.0.1:1", Domain: "matrix.example.org", Secret: "s"}})
			if err != nil {
				t.Fatal(err)
			}
			st := &kvStore{kv: map[string]string{}}
			if tt.mucs != "" {
				st.kv["mucs"] = tt.mucs
			}
			b.host = &kvHost{st: st}
			b.mapper = xid.Mapper{Homeserver: "example.org", Component: "matrix.example.org", Prefix: b.cfg.Prefix}
			out, err := b.HandleCommand(context.Background(), appservice.Command{Sender: "@alice:example.org", RoomID: "!dm:example.org", Args: tt.args, Admin: tt.admin})
			if err != nil {
				t.Fatal(err)
			}
			for _, w := range tt.want {
				if !strings.Contains(out, w) {
					t.Errorf("reply lacks %q:\n%s", w, out)
				}
			}
		})
	}
}

// TestUnlinkCommand: unlinking (admins only) removes the portal, the bridge's records of
// the MUC and posts a notice in the Matrix room; a second unlink answers that the room is
// not linked.
func TestUnlinkCommand(t *testing.T) {
	const chat = "muc:team@conf.example.net"
	tests := []struct {
		name       string
		admin      bool
		args       []string
		want       string
		wantNotice bool
		unlinked   bool // the portal and the records are gone
	}{
		{"as a user", false, []string{"unlink", "team@conf.example.net"}, "Only Switchboard's admins", false, false},
		{"usage", true, []string{"unlink"}, "Usage: `xmpp unlink", false, false},
		{"bad address", true, []string{"unlink", "team@conf.example.net/nick"}, "is not a room address", false, false},
		{"not linked", true, []string{"unlink", "other@conf.example.net"}, "other@conf.example.net is not linked.", false, false},
		{"unlinks", true, []string{"unlink", "team@conf.example.net"}, "Unlinked team@conf.example.net from !team:example.org.", true, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := New(Config{Component: ComponentConfig{Address: "127.0.0.1:1", Domain: "matrix.example.org", Secret: "s"}})
			if err != nil {
				t.Fatal(err)
			}
			st := &portalStore{
				kvStore: kvStore{kv: map[string]string{
					"mucs":                           `{"` + chat + `":"!team:example.org","muc:x@conf.example.net":"!x:example.org"}`,
					"members:" + chat:                `{}`,
					"muc-last:" + chat:               "2026-01-02T03:04:05Z",
					"members:muc:x@conf.example.net": `{}`,
				}},
				portals: map[string]id.RoomID{chat: "!team:example.org", "muc:x@conf.example.net": "!x:example.org"},
			}
			h := &sendHost{st: st}
			b.host = h
			b.mapper = xid.Mapper{Homeserver: "example.org", Component: "matrix.example.org", Prefix: b.cfg.Prefix}
			cmd := appservice.Command{Sender: "@alice:example.org", RoomID: "!dm:example.org", Args: tt.args, Admin: tt.admin}
			out, err := b.HandleCommand(context.Background(), cmd)
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(out, tt.want) {
				t.Errorf("reply lacks %q:\n%s", tt.want, out)
			}
			if got := len(h.sent) == 1; got != tt.wantNotice {
				t.Fatalf("notices: %v, want one: %v", h.sent, tt.wantNotice)
			}
			if tt.wantNotice {
				msg := h.sent[0]
				body := msg.Content.(*event.MessageEventContent).Body
				if msg.RoomID != "!team:example.org" || body != "This room is no longer linked to team@conf.example.net." {
					t.Errorf("notice %q in %s", body, msg.RoomID)
				}
			}
			_, portal := st.portals[chat]
			_, members := st.kv["members:"+chat]
			_, last := st.kv["muc-last:"+chat]
			listed := strings.Contains(st.kv["mucs"], chat)
			if portal == tt.unlinked || members == tt.unlinked || last == tt.unlinked || listed == tt.unlinked {
				t.Errorf("portal %v, members %v, muc-last %v, listed %v; want all %v", portal, members, last, listed, !tt.unlinked)
			}
			if _, ok := st.portals["muc:x@conf.example.net"]; !ok || !strings.Contains(st.kv["mucs"], "muc:x@conf.example.net") {
				t.Error("the other portal was touched")
			}
			if !tt.unlinked {
				return
			}
			out, err = b.HandleCommand(context.Background(), cmd)
			if err != nil || out != "team@conf.example.net is not linked." {
				t.Errorf("unlinking again = %q, %v", out, err)
			}
			if len(h.sent) != 1 {
				t.Errorf("unlinking again posted a notice")
			}
		})
	}
}
