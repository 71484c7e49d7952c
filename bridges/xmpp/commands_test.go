package xmpp

import (
	"context"
	"strings"
	"testing"

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
		{"help", "", false, []string{"help"}, []string{"`xmpp list`", "`xmpp link <room@conference.example.org>`", "(admins"}},
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
