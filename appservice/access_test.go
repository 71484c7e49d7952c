package appservice

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	mas "maunium.net/go/mautrix/appservice"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"
)

func TestUserPatterns(t *testing.T) {
	tests := []struct {
		name     string
		patterns []string
		user     id.UserID
		want     bool
	}{
		{"exact", []string{"@a:x"}, "@a:x", true},
		{"exact other", []string{"@a:x"}, "@b:x", false},
		{"domain", []string{"*:x"}, "@b:x", true},
		{"domain other", []string{"*:x"}, "@b:y", false},
		{"domain suffix is not a match", []string{"*:x"}, "@b:evil-x", false},
		{"lookalike domain", []string{"*:x.org"}, "@b:x.org.evil", false},
		{"everyone", []string{"*"}, "@b:y", true},
		{"nobody", nil, "@b:y", false},
		{"invalid user", []string{"*"}, "not-a-user", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := ParseUserPatterns(tt.patterns)
			if err != nil {
				t.Fatal(err)
			}
			if got := p.Match(tt.user); got != tt.want {
				t.Errorf("Match(%s) = %v, want %v", tt.user, got, tt.want)
			}
		})
	}
	for _, bad := range []string{"alice", "*:", "*x", "@:x"} {
		if _, err := ParseUserPatterns([]string{bad}); err == nil {
			t.Errorf("ParseUserPatterns(%q) accepted", bad)
		}
	}
}

func TestInvalidPermissionsFailNew(t *testing.T) {
	reg := &mas.Registration{ID: "sbtest", URL: "http://127.0.0.1:1", AppToken: "as-token", ServerToken: testHSToken, SenderLocalpart: "bot"}
	_, err := New(Options{Registration: reg, HomeserverURL: "http://127.0.0.1:1", Domain: "test",
		Store: sqliteStore(t), Modules: []Module{&recModule{id: "rec"}}, Permissions: map[string][]string{"rec": {"alice"}}})
	if err == nil || !strings.Contains(err.Error(), "permissions of rec") {
		t.Fatalf("New = %v, want an error naming the module's permissions", err)
	}
}

func TestRefusalNoticesAreRateLimited(t *testing.T) {
	r := newRefusals()
	now := time.Unix(1000, 0)
	r.now = func() time.Time { return now }
	if !r.allow("!a:x", "@eve:evil") {
		t.Fatal("first notice refused")
	}
	if r.allow("!a:x", "@eve:evil") {
		t.Error("second notice in the same room within the window allowed")
	}
	if !r.allow("!a:x", "@mallory:evil") {
		t.Error("another user's first notice refused")
	}
	for i := 0; i < refusalsPerUser+3; i++ {
		r.allow(id.RoomID(fmt.Sprintf("!r%d:x", i)), "@eve:evil")
	}
	if r.allow("!new:x", "@eve:evil") {
		t.Error("more than refusalsPerUser notices to one user across rooms")
	}
	now = now.Add(refusalWindow)
	if !r.allow("!a:x", "@eve:evil") {
		t.Error("notice refused after the window passed")
	}
}

func stringEvent(eventID, room, sender, body string) string {
	return fmt.Sprintf(`{"event_id":%q,"room_id":%q,"type":"m.room.message","sender":%q,"origin_server_ts":1,"content":{"msgtype":"m.text","body":%q}}`, eventID, room, sender, body)
}

func inviteEvent(eventID, room, sender, invitee string) string {
	return fmt.Sprintf(`{"event_id":%q,"room_id":%q,"type":"m.room.member","state_key":%q,"sender":%q,"origin_server_ts":1,"content":{"membership":"invite"}}`, eventID, room, invitee, sender)
}

func bodies(evts []*event.Event) []string {
	var out []string
	for _, e := range evts {
		if e.Type == event.EventMessage {
			out = append(out, e.Content.AsMessage().Body)
		}
	}
	return out
}

// TestEventsFromUsersWithoutPermissionAreNotBridged: a user of another server (the default
// list) and a local user left out of an explicit list write into a module's portal; only
// the permitted user's messages reach the module, and each stranger gets one notice.
func TestEventsFromUsersWithoutPermissionAreNotBridged(t *testing.T) {
	tests := []struct {
		name        string
		permissions map[string][]string
		permitted   string
		refused     string
	}{
		{"default: the homeserver's domain", nil, "@alice:test", "@eve:evil.example"},
		{"explicit list without a local user", map[string][]string{"rec": {"@alice:test", "*:partner.example"}}, "@alice:test", "@bob:test"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := startCoreWith(t, sqliteStore(t), func(o *Options) { o.Permissions = tt.permissions })
			putPortal(t, env, "!p:test")
			env.putTxn(t, "t1",
				stringEvent("$s1", "!p:test", tt.refused, "stranger 1"),
				stringEvent("$a1", "!p:test", tt.permitted, "permitted 1"),
				stringEvent("$s2", "!p:test", tt.refused, "stranger 2"),
				stringEvent("$a2", "!p:test", tt.permitted, "permitted 2"))
			eventually(t, "the permitted messages", func() bool { return len(env.mod.got()) >= 2 })
			eventually(t, "the refusal notice", func() bool { return len(env.hs.sentMessages()) >= 1 })
			time.Sleep(100 * time.Millisecond)
			if got := bodies(env.mod.got()); strings.Join(got, ",") != "permitted 1,permitted 2" {
				t.Errorf("module got %q, want only the permitted user's messages", got)
			}
			sent := env.hs.sentMessages()
			if len(sent) != 1 {
				t.Fatalf("homeserver got %d messages, want 1 notice (rate-limited): %+v", len(sent), sent)
			}
			if sent[0].Sender != "@bot:test" || sent[0].Room != "!p:test" ||
				!strings.Contains(string(sent[0].Content), "not permitted") || !strings.Contains(string(sent[0].Content), tt.refused) {
				t.Errorf("notice %+v %s", sent[0], sent[0].Content)
			}
		})
	}
}

func TestInvitesFromUsersWithoutPermissionAreDeclined(t *testing.T) {
	env := startCore(t, sqliteStore(t))
	env.putTxn(t, "t1",
		inviteEvent("$i1", "!dm1:test", "@eve:evil.example", "@_rec_ghost:test"),
		inviteEvent("$i2", "!dm2:test", "@alice:test", "@_rec_ghost:test"))
	eventually(t, "the permitted invite", func() bool { return len(env.mod.got()) >= 1 })
	eventually(t, "the declined invite", func() bool { return len(env.hs.leftRooms()) >= 1 })
	time.Sleep(100 * time.Millisecond)
	if got := env.mod.got(); len(got) != 1 || got[0].RoomID != "!dm2:test" {
		t.Errorf("module got %d events (%v), want only alice's invite", len(got), got)
	}
	left := env.hs.leftRooms()
	if len(left) != 1 || left[0].Room != "!dm1:test" || left[0].User != "@_rec_ghost:test" || !strings.Contains(left[0].Reason, "not permitted") {
		t.Errorf("leaves %+v, want the ghost declining eve's invite with a reason", left)
	}
	sent := env.hs.sentMessages()
	if len(sent) != 1 || sent[0].Sender != "@_rec_ghost:test" || sent[0].Room != "!dm1:test" || !strings.Contains(string(sent[0].Content), "not permitted") {
		t.Errorf("sent %+v, want the ghost saying why in eve's room before leaving", sent)
	}
}

func TestKicksOfOurUsersStillReachTheModule(t *testing.T) {
	env := startCore(t, sqliteStore(t))
	putPortal(t, env, "!p:test")
	env.putTxn(t, "t1", `{"event_id":"$k","room_id":"!p:test","type":"m.room.member","state_key":"@_rec_ghost:test","sender":"@eve:evil.example","origin_server_ts":1,"content":{"membership":"leave"}}`)
	eventually(t, "the kick", func() bool { return len(env.mod.got()) == 1 })
}

func TestEphemeralEventsOfUsersWithoutPermissionAreFiltered(t *testing.T) {
	env := startCore(t, sqliteStore(t))
	body := `{"events":[],"ephemeral":[` +
		`{"type":"m.typing","room_id":"!p:test","content":{"user_ids":["@alice:test","@eve:evil.example"]}},` +
		`{"type":"m.presence","sender":"@eve:evil.example","content":{"presence":"online"}},` +
		`{"type":"m.receipt","room_id":"!p:test","content":{"$e":{"m.read":{"@eve:evil.example":{"ts":1}}}}}` +
		`]}`
	if status, resp := env.do(t, "PUT", "/_matrix/app/v1/transactions/e1", testHSToken, body); status != 200 {
		t.Fatalf("%d %s", status, resp)
	}
	eventually(t, "the typing event", func() bool {
		env.mod.mu.Lock()
		defer env.mod.mu.Unlock()
		return len(env.mod.ephemeral) >= 1
	})
	time.Sleep(100 * time.Millisecond)
	env.mod.mu.Lock()
	defer env.mod.mu.Unlock()
	if len(env.mod.ephemeral) != 1 {
		t.Fatalf("module got %d ephemeral events, want only the typing event", len(env.mod.ephemeral))
	}
	if got := env.mod.ephemeral[0].Content.AsTyping().UserIDs; len(got) != 1 || got[0] != "@alice:test" {
		t.Errorf("typing users %v, want only alice", got)
	}
}

// cmdModule is a recModule that adds management commands.
type cmdModule struct{ recModule }

func (m *cmdModule) HandleCommand(context.Context, Command) (string, error) { return "done", nil }

func TestCommandsOfUsersWithoutPermissionAreRefused(t *testing.T) {
	mod := &cmdModule{recModule{id: "rec", fail: map[id.EventID]int{}}}
	startCoreWith(t, sqliteStore(t), func(o *Options) { o.Permissions = map[string][]string{"rec": {"@alice:test"}} }, mod)
	ctx := context.Background()
	if out, err := mod.host.RunCommand(ctx, "rec", Command{Sender: "@alice:test"}); err != nil || out != "done" {
		t.Errorf("permitted command: %q %v", out, err)
	}
	if _, err := mod.host.RunCommand(ctx, "rec", Command{Sender: "@bob:test"}); !errors.Is(err, ErrNotPermitted) {
		t.Errorf("command of a user without permission: %v, want ErrNotPermitted", err)
	}
}
