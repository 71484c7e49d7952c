package jitsie2e

import (
	"context"
	"strings"
	"testing"
	"time"

	"maunium.net/go/mautrix"
	"maunium.net/go/mautrix/id"

	"github.com/switchboard-matrix/switchboard/bridges/jitsi"
	"github.com/switchboard-matrix/switchboard/config"
	"github.com/switchboard-matrix/switchboard/internal/testpeer/peerproc"
	"github.com/switchboard-matrix/switchboard/internal/testpeer/prosody"
)

// watcherConfig is the module with the conference watcher on the package's Prosody, which
// plays Jitsi's conference MUC.
func watcherConfig(grace time.Duration) jitsi.Config {
	cfg := moduleConfig()
	cfg.MUCDomain = xs.MUCDomain
	cfg.EndGrace = config.Duration(grace)
	cfg.XMPP = jitsi.XMPPConfig{Address: xs.C2SAddr, JID: watcherUser + "@" + xs.Domain, Password: watcherPassword, TLS: "none"}
	return cfg
}

// TestWhoIsInTheCall: two XMPP occupants, one slixmpp and one Go client (with the identity
// Jitsi's token authentication adds to presence), join the conference of a room's meeting
// and leave it. The room shows the participants in its state event, with the Matrix user
// where the identity names one, and one notice when the meeting starts and one when it
// ends, with its duration. Leaving and coming back within the grace period posts nothing.
func TestWhoIsInTheCall(t *testing.T) {
	peerproc.RequireOrSkip(t, "slixmpp", prosody.SlixmppAvailable())
	const grace = 4 * time.Second
	r := startModule(t, watcherConfig(grace), false)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	alice := onHS.NewUser(t, "alice")
	bot := r.module.BotUserID()
	room := meetingRoom(t, alice, bot, "Ward 3")
	widgetID, conf := addMeeting(t, alice, room, bot)

	goUser, slixUser := unique("go"), unique("slix")
	for _, u := range []string{goUser, slixUser} {
		if err := xs.Register(ctx, u, "pw-"+u); err != nil {
			t.Fatal(err)
		}
	}
	joinGo := func() *prosody.Occupant {
		t.Helper()
		occ, err := xs.JoinMUC(ctx, goUser, "pw-"+goUser, conf, "a1b2c3", prosody.JoinOptions{
			DisplayName: "Alice", IdentityID: alice.UserID.String(), IdentityName: "Alice",
		})
		if err != nil {
			t.Fatal(err)
		}
		return occ
	}
	goOcc := joinGo()
	defer goOcc.Close()
	waitNotice(t, alice, room, bot, "📞 The meeting has started")
	waitParticipants(t, alice, room, widgetID, []string{"Alice"})

	slix := xs.StartSlixOccupant(ctx, t, slixUser, "pw-"+slixUser, conf, "d4e5f6", "Slix Person")
	parts := waitParticipants(t, alice, room, widgetID, []string{"Alice", "Slix Person"})
	for _, p := range parts {
		if p["name"] == "Alice" && p["user_id"] != alice.UserID.String() {
			t.Errorf("participant Alice: user_id %v, want %s (from the identity)", p["user_id"], alice.UserID)
		}
		if p["name"] == "Slix Person" && p["user_id"] != nil {
			t.Errorf("participant Slix Person: user_id %v, want none", p["user_id"])
		}
	}

	slix.Leave(t)
	waitParticipants(t, alice, room, widgetID, []string{"Alice"})
	// The last participant drops out and comes back at once: no end, no new start.
	if err := goOcc.Leave(ctx); err != nil {
		t.Fatal(err)
	}
	_ = goOcc.Close()
	goOcc = joinGo()
	waitParticipants(t, alice, room, widgetID, []string{"Alice"})
	if err := goOcc.Leave(ctx); err != nil {
		t.Fatal(err)
	}
	end := waitNotice(t, alice, room, bot, "The meeting has ended after")
	if !strings.Contains(end, "less than a minute") && !strings.Contains(end, "1 minute") {
		t.Errorf("end notice %q: want the meeting's duration", end)
	}
	state := stateOf(t, alice, room, "net.switchboard.jitsi.participants", widgetID)
	if state["active"] != false || len(state["participants"].([]any)) != 0 {
		t.Errorf("participants after the end: %v, want inactive and empty", state)
	}
	time.Sleep(grace + time.Second) // anything the quick rejoin would have caused is out by now
	var starts, ends int
	for _, n := range noticesFrom(t, alice, room, bot) {
		switch {
		case strings.HasPrefix(n, "📞 The meeting has started"):
			starts++
		case strings.HasPrefix(n, "The meeting has ended"):
			ends++
		}
	}
	if starts != 1 || ends != 1 {
		t.Errorf("%d start and %d end notices, want one each", starts, ends)
	}
}

// waitParticipants waits until the room's participants state lists exactly names (in any
// order) and returns its entries.
func waitParticipants(t *testing.T, cli *mautrix.Client, room id.RoomID, widgetID string, names []string) []map[string]any {
	t.Helper()
	var out []map[string]any
	want := strings.Join(sorted(names), ",")
	var last map[string]any
	deadline := time.Now().Add(time.Minute)
	for time.Now().Before(deadline) {
		last = stateOf(t, cli, room, "net.switchboard.jitsi.participants", widgetID)
		list, _ := last["participants"].([]any)
		var got []string
		out = out[:0]
		for _, p := range list {
			m, _ := p.(map[string]any)
			name, _ := m["name"].(string)
			got = append(got, name)
			out = append(out, m)
		}
		if strings.Join(sorted(got), ",") == want && (len(names) == 0 || last["active"] == true) {
			return out
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("participants state %v, want %v", last, names)
	return nil
}

func sorted(s []string) []string {
	out := append([]string(nil), s...)
	for i := range out {
		for j := i + 1; j < len(out); j++ {
			if out[j] < out[i] {
				out[i], out[j] = out[j], out[i]
			}
		}
	}
	return out
}

// TestParticipantFromVerification: with auth uvs, Element's Jitsi wrapper sends only the
// member's display name to Jitsi; the Prosody module's verification of the member (here the
// request it sends) lets the module name the participant's Matrix user.
func TestParticipantFromVerification(t *testing.T) {
	cfg := watcherConfig(time.Second)
	cfg.Auth = jitsi.AuthUVS
	cfg.UVS.AuthToken = uvsBearer
	cfg.HTTP.Listen = "127.0.0.1:0"
	r := startModule(t, cfg, false)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	alice := onHS.NewUser(t, "alice")
	if err := alice.SetDisplayName(ctx, "Dr. Alice"); err != nil {
		t.Fatal(err)
	}
	bot := r.module.BotUserID()
	room := meetingRoom(t, alice, bot, "Rounds")
	widgetID, conf := addMeeting(t, alice, room, bot)

	tok := openIDToken(t, alice)
	if status, body := post(t, r, "/verify/user_in_room", uvsBearer, map[string]any{"token": tok.AccessToken, "room_id": room, "matrix_server_name": tok.MatrixServerName}); status != 200 {
		t.Fatalf("verification: %d %v", status, body)
	}
	user := unique("occ")
	if err := xs.Register(ctx, user, "pw-"+user); err != nil {
		t.Fatal(err)
	}
	occ, err := xs.JoinMUC(ctx, user, "pw-"+user, conf, "f00d", prosody.JoinOptions{DisplayName: "Dr. Alice"})
	if err != nil {
		t.Fatal(err)
	}
	defer occ.Close()
	parts := waitParticipants(t, alice, room, widgetID, []string{"Dr. Alice"})
	if parts[0]["user_id"] != alice.UserID.String() {
		t.Errorf("participant %v: want user_id %s from the verification", parts[0], alice.UserID)
	}
}

// TestNoParticipantsState: with participants_state off the room gets the start and end
// notices but no participants state (state events are never encrypted).
func TestNoParticipantsState(t *testing.T) {
	cfg := watcherConfig(time.Second)
	off := false
	cfg.ParticipantsState = &off
	r := startModule(t, cfg, false)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	alice := onHS.NewUser(t, "alice")
	bot := r.module.BotUserID()
	room := meetingRoom(t, alice, bot, "Private")
	widgetID, conf := addMeeting(t, alice, room, bot)
	user := unique("occ")
	if err := xs.Register(ctx, user, "pw-"+user); err != nil {
		t.Fatal(err)
	}
	occ, err := xs.JoinMUC(ctx, user, "pw-"+user, conf, "beef", prosody.JoinOptions{DisplayName: "Patient Name"})
	if err != nil {
		t.Fatal(err)
	}
	defer occ.Close()
	waitNotice(t, alice, room, bot, "📞 The meeting has started")
	if err := occ.Leave(ctx); err != nil {
		t.Fatal(err)
	}
	waitNotice(t, alice, room, bot, "The meeting has ended after")
	if st := stateOf(t, alice, room, "net.switchboard.jitsi.participants", widgetID); st != nil {
		t.Errorf("participants state %v with participants_state off", st)
	}
}
