package store_test

import (
	"errors"
	"fmt"
	"testing"

	"github.com/switchboard-matrix/switchboard/internal/store"
	"github.com/switchboard-matrix/switchboard/internal/store/storetest"
)

func TestMessageMap(t *testing.T) {
	storetest.Dialects(t, func(t *testing.T, s *store.Store) {
		ctx := t.Context()
		puts := []struct{ module, remote, room, event string }{
			{"xmpp", "r1", "!a:x", "$e1"},
			{"xmpp", "r1", "!b:x", "$other"}, // existing mapping is kept
			{"sip", "r1", "!c:x", "$e2"},
			{"xmpp", "r2", "!a:x", "$e1"}, // a second remote id for the same event
		}
		for _, p := range puts {
			if err := s.PutMessage(ctx, p.module, p.remote, p.room, p.event); err != nil {
				t.Fatalf("PutMessage(%v): %v", p, err)
			}
		}
		byRemote := []struct {
			name, module, remote string
			wantRoom, wantEvent  string
			wantErr              error
		}{
			{"first mapping wins", "xmpp", "r1", "!a:x", "$e1", nil},
			{"modules are separate", "sip", "r1", "!c:x", "$e2", nil},
			{"unknown remote id", "xmpp", "r9", "", "", store.ErrNotFound},
			{"unknown module", "irc", "r1", "", "", store.ErrNotFound},
		}
		for _, tc := range byRemote {
			t.Run("MessageByRemote/"+tc.name, func(t *testing.T) {
				room, ev, err := s.MessageByRemote(ctx, tc.module, tc.remote)
				if room != tc.wantRoom || ev != tc.wantEvent || !errors.Is(err, tc.wantErr) {
					t.Errorf("= %q, %q, %v; want %q, %q, %v", room, ev, err, tc.wantRoom, tc.wantEvent, tc.wantErr)
				}
			})
		}
		byEvent := []struct {
			name, module, event string
			wantRemote          string
			wantErr             error
		}{
			{"smallest remote id of a shared event", "xmpp", "$e1", "r1", nil},
			{"other module", "sip", "$e2", "r1", nil},
			{"event of another module", "sip", "$e1", "", store.ErrNotFound},
			{"unknown event", "xmpp", "$nope", "", store.ErrNotFound},
		}
		for _, tc := range byEvent {
			t.Run("MessageByEvent/"+tc.name, func(t *testing.T) {
				remote, err := s.MessageByEvent(ctx, tc.module, tc.event)
				if remote != tc.wantRemote || !errors.Is(err, tc.wantErr) {
					t.Errorf("= %q, %v; want %q, %v", remote, err, tc.wantRemote, tc.wantErr)
				}
			})
		}
	})
}

func TestPortal(t *testing.T) {
	storetest.Dialects(t, func(t *testing.T, s *store.Store) {
		ctx := t.Context()
		steps := []struct {
			name              string
			module, key, room string
			wantErr           bool
		}{
			{"new portal", "xmpp", "muc@conf.example", "!a:x", false},
			{"same mapping again", "xmpp", "muc@conf.example", "!a:x", false},
			{"same key in another module", "sip", "muc@conf.example", "!b:x", false},
			{"key moves to a new room", "xmpp", "muc@conf.example", "!c:x", false},
			{"room of another portal is refused", "xmpp", "other@conf.example", "!b:x", true},
		}
		for _, st := range steps {
			t.Run("PutPortal/"+st.name, func(t *testing.T) {
				err := s.PutPortal(ctx, st.module, st.key, st.room)
				if (err != nil) != st.wantErr {
					t.Errorf("PutPortal(%s, %s, %s) = %v, want error %v", st.module, st.key, st.room, err, st.wantErr)
				}
			})
		}
		lookups := []struct {
			name                string
			room                string
			wantModule, wantKey string
			wantErr             error
		}{
			{"moved portal", "!c:x", "xmpp", "muc@conf.example", nil},
			{"other module", "!b:x", "sip", "muc@conf.example", nil},
			{"old room is free", "!a:x", "", "", store.ErrNotFound},
		}
		for _, tc := range lookups {
			t.Run("PortalByRoom/"+tc.name, func(t *testing.T) {
				module, key, err := s.PortalByRoom(ctx, tc.room)
				if module != tc.wantModule || key != tc.wantKey || !errors.Is(err, tc.wantErr) {
					t.Errorf("= %q, %q, %v; want %q, %q, %v", module, key, err, tc.wantModule, tc.wantKey, tc.wantErr)
				}
			})
		}
		keys := []struct {
			name, module, key string
			wantRoom          string
			wantErr           error
		}{
			{"moved portal", "xmpp", "muc@conf.example", "!c:x", nil},
			{"other module", "sip", "muc@conf.example", "!b:x", nil},
			{"refused portal was not stored", "xmpp", "other@conf.example", "", store.ErrNotFound},
		}
		for _, tc := range keys {
			t.Run("PortalByKey/"+tc.name, func(t *testing.T) {
				room, err := s.PortalByKey(ctx, tc.module, tc.key)
				if room != tc.wantRoom || !errors.Is(err, tc.wantErr) {
					t.Errorf("= %q, %v; want %q, %v", room, err, tc.wantRoom, tc.wantErr)
				}
			})
		}
	})
}

func TestGhost(t *testing.T) {
	storetest.Dialects(t, func(t *testing.T, s *store.Store) {
		ctx := t.Context()
		for range 2 { // idempotent
			if err := s.MarkGhostRegistered(ctx, "@xmpp_alice:example.org"); err != nil {
				t.Fatal(err)
			}
		}
		tests := []struct {
			name, user string
			want       bool
		}{
			{"registered", "@xmpp_alice:example.org", true},
			{"unknown", "@xmpp_bob:example.org", false},
		}
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				if got, err := s.IsGhostRegistered(ctx, tc.user); err != nil || got != tc.want {
					t.Errorf("IsGhostRegistered(%s) = %v, %v; want %v", tc.user, got, err, tc.want)
				}
			})
		}
	})
}

func TestKV(t *testing.T) {
	storetest.Dialects(t, func(t *testing.T, s *store.Store) {
		ctx := t.Context()
		puts := [][2]string{{"core/a", "1"}, {"module/xmpp/b", "2"}, {"core/a", "3"}, {"core/empty", ""}}
		for _, p := range puts {
			if err := s.PutKV(ctx, p[0], p[1]); err != nil {
				t.Fatal(err)
			}
		}
		tests := []struct {
			name, key, want string
			wantErr         error
		}{
			{"overwritten", "core/a", "3", nil},
			{"other key", "module/xmpp/b", "2", nil},
			{"empty value", "core/empty", "", nil},
			{"missing", "core/missing", "", store.ErrNotFound},
		}
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				got, err := s.GetKV(ctx, tc.key)
				if got != tc.want || !errors.Is(err, tc.wantErr) {
					t.Errorf("GetKV(%s) = %q, %v; want %q, %v", tc.key, got, err, tc.want, tc.wantErr)
				}
			})
		}
	})
}

func TestListKV(t *testing.T) {
	storetest.Dialects(t, func(t *testing.T, s *store.Store) {
		ctx := t.Context()
		// "case:a-b" sorts before "case:a:1" bytewise but may not under a locale collation.
		for _, k := range []string{"case:a:2", "case:a:1", "case:a-b", "case:ab", "casea", "case:b:1"} {
			if err := s.PutKV(ctx, k, "v"+k); err != nil {
				t.Fatal(err)
			}
		}
		tests := []struct {
			name, prefix string
			limit        int
			want         []string
		}{
			{"prefix", "case:a:", 0, []string{"case:a:1", "case:a:2"}},
			{"bytewise order", "case:a", 0, []string{"case:a-b", "case:a:1", "case:a:2", "case:ab"}},
			{"limit", "case:", 2, []string{"case:a-b", "case:a:1"}},
			{"none", "zzz", 0, nil},
		}
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				rows, err := s.ListKV(ctx, tc.prefix, tc.limit)
				if err != nil {
					t.Fatal(err)
				}
				var got []string
				for _, r := range rows {
					if r.Value != "v"+r.Key {
						t.Errorf("%s = %q", r.Key, r.Value)
					}
					got = append(got, r.Key)
				}
				if fmt.Sprint(got) != fmt.Sprint(tc.want) {
					t.Errorf("ListKV(%q, %d) = %v; want %v", tc.prefix, tc.limit, got, tc.want)
				}
			})
		}
		if err := s.DeleteKV(ctx, "case:a:1"); err != nil {
			t.Fatal(err)
		}
		if err := s.DeleteKV(ctx, "case:a:1"); err != nil {
			t.Fatal("deleting a missing key:", err)
		}
		if _, err := s.GetKV(ctx, "case:a:1"); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("after DeleteKV: %v", err)
		}
	})
}

func TestClaimPortal(t *testing.T) {
	storetest.Dialects(t, func(t *testing.T, s *store.Store) {
		ctx := t.Context()
		if err := s.PutPortal(ctx, "management", "room:!r", "!r"); err != nil {
			t.Fatal(err)
		}
		if err := s.PutPortal(ctx, "xmpp", "muc:a@c", "!r"); err == nil {
			t.Fatal("PutPortal took over a room of another portal")
		}
		if err := s.ClaimPortal(ctx, "xmpp", "muc:a@c", "!r"); err != nil {
			t.Fatal(err)
		}
		mod, key, err := s.PortalByRoom(ctx, "!r")
		if err != nil || mod != "xmpp" || key != "muc:a@c" {
			t.Errorf("PortalByRoom = %s, %s, %v; want xmpp, muc:a@c", mod, key, err)
		}
		if _, err := s.PortalByKey(ctx, "management", "room:!r"); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("the management portal is still there: %v", err)
		}
		if err := s.ClaimPortal(ctx, "xmpp", "muc:a@c", "!r"); err != nil {
			t.Errorf("claiming again: %v", err)
		}
	})
}

func TestDeletePortal(t *testing.T) {
	storetest.Dialects(t, func(t *testing.T, s *store.Store) {
		ctx := t.Context()
		for _, p := range []struct{ module, key, room string }{
			{"xmpp", "muc:a@c", "!a"}, {"sip", "muc:a@c", "!b"},
		} {
			if err := s.PutPortal(ctx, p.module, p.key, p.room); err != nil {
				t.Fatal(err)
			}
		}
		steps := []struct {
			name, module, key, wantRoom string
			wantErr                     error
		}{
			{"deletes the module's portal", "xmpp", "muc:a@c", "!a", nil},
			{"again is not found", "xmpp", "muc:a@c", "", store.ErrNotFound},
			{"unknown key", "xmpp", "muc:nope@c", "", store.ErrNotFound},
		}
		for _, st := range steps {
			t.Run(st.name, func(t *testing.T) {
				room, err := s.DeletePortal(ctx, st.module, st.key)
				if room != st.wantRoom || !errors.Is(err, st.wantErr) {
					t.Errorf("DeletePortal(%s, %s) = %q, %v; want %q, %v", st.module, st.key, room, err, st.wantRoom, st.wantErr)
				}
			})
		}
		if _, _, err := s.PortalByRoom(ctx, "!a"); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("the room still maps to a portal: %v", err)
		}
		if mod, key, err := s.PortalByRoom(ctx, "!b"); err != nil || mod != "sip" || key != "muc:a@c" {
			t.Errorf("another module's portal with the same key: %s, %s, %v", mod, key, err)
		}
		if err := s.PutPortal(ctx, "xmpp", "muc:other@c", "!a"); err != nil {
			t.Errorf("the freed room cannot be linked again: %v", err)
		}
	})
}
