package appservice

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	mas "maunium.net/go/mautrix/appservice"

	"github.com/switchboard-matrix/switchboard/registration"
)

// roomCmdModule is a recModule that also takes the room command "!meet".
type roomCmdModule struct{ recModule }

func (m *roomCmdModule) RoomCommands() []string { return []string{"!meet"} }

func (m *roomCmdModule) Namespaces() registration.Namespaces {
	return registration.Namespaces{Users: []registration.Pattern{{Localpart: "_meet_.+", Exclusive: true}}}
}

// TestRoomCommandRouting: a message starting with a module's room command goes to that
// module alone, in a portal of another module as in any other room; other messages keep
// their routes, and an edit or a notice is not a command.
func TestRoomCommandRouting(t *testing.T) {
	st := sqliteStore(t)
	meet := &roomCmdModule{recModule{id: "meet"}}
	rec := &recModule{id: "rec"}
	env := startCore(t, st, rec, meet)
	if err := st.PutPortal(context.Background(), "rec", "kp", "!p:test"); err != nil {
		t.Fatal(err)
	}
	notice := strings.Replace(msgEvent("$notice", "!p:test", "!meet"), `"m.text"`, `"m.notice"`, 1)
	edit := `{"event_id":"$edit","room_id":"!p:test","type":"m.room.message","sender":"@alice:test","origin_server_ts":1,"content":{"msgtype":"m.text","body":"* !meet","m.new_content":{"msgtype":"m.text","body":"!meet"},"m.relates_to":{"rel_type":"m.replace","event_id":"$x"}}}`
	env.putTxn(t, "1",
		msgEvent("$cmd", "!p:test", "!meet end"),
		msgEvent("$plain", "!p:test", "let us !meet"),
		msgEvent("$other", "!o:test", "  !meet"),
		msgEvent("$near", "!o:test", "!meeting"),
		notice, edit,
	)
	eventually(t, "routed events", func() bool { return len(meet.got()) == 2 && len(rec.got()) == 3 })
	time.Sleep(50 * time.Millisecond)
	var gotMeet, gotRec []string
	for _, e := range meet.got() {
		gotMeet = append(gotMeet, e.ID.String())
	}
	for _, e := range rec.got() {
		gotRec = append(gotRec, e.ID.String())
	}
	slices.Sort(gotMeet) // two rooms: no order between them
	if strings.Join(gotMeet, ",") != "$cmd,$other" {
		t.Errorf("room command module got %v, want [$cmd $other]", gotMeet)
	}
	if strings.Join(gotRec, ",") != "$plain,$notice,$edit" {
		t.Errorf("portal owner got %v, want [$plain $notice $edit]", gotRec)
	}
}

// TestRoomCommandClaimedTwice: two modules may not claim one word.
func TestRoomCommandClaimedTwice(t *testing.T) {
	a := &roomCmdModule{recModule{id: "a"}}
	b := &roomCmdModule{recModule{id: "b"}}
	_, err := New(Options{Registration: &mas.Registration{ID: "x", AppToken: "a", ServerToken: "h", SenderLocalpart: "bot"}, HomeserverURL: "http://127.0.0.1:1", Domain: "test", Store: sqliteStore(t), Modules: []Module{a, b}})
	if err == nil || !strings.Contains(err.Error(), `room command "!meet" claimed by`) {
		t.Fatalf("New: %v, want the double claim refused", err)
	}
}

// TestRoomCommandModuleGetsItsInvites: an invite of a room command module's user into
// another module's portal goes to the room command module.
func TestRoomCommandModuleGetsItsInvites(t *testing.T) {
	st := sqliteStore(t)
	meet := &roomCmdModule{recModule{id: "meet"}}
	rec := &recModule{id: "rec"}
	env := startCore(t, st, rec, meet)
	if err := st.PutPortal(context.Background(), "rec", "kp", "!p:test"); err != nil {
		t.Fatal(err)
	}
	invite := `{"event_id":"$inv","room_id":"!p:test","type":"m.room.member","state_key":"@_meet_bot:test","sender":"@alice:test","origin_server_ts":1,"content":{"membership":"invite"}}`
	other := `{"event_id":"$inv2","room_id":"!p:test","type":"m.room.member","state_key":"@bob:test","sender":"@alice:test","origin_server_ts":1,"content":{"membership":"invite"}}`
	env.putTxn(t, "1", invite, other)
	eventually(t, "routed events", func() bool { return len(meet.got()) == 1 && len(rec.got()) == 1 })
	if got := meet.got()[0].ID; got != "$inv" {
		t.Fatalf("room command module got %s, want $inv", got)
	}
}
