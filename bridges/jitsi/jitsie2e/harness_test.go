package jitsie2e

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/switchboard-matrix/switchboard/internal/syncbuf"

	"github.com/rs/zerolog"
	"maunium.net/go/mautrix"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"

	"github.com/switchboard-matrix/switchboard/appservice"
	"github.com/switchboard-matrix/switchboard/bridges/jitsi"
	"github.com/switchboard-matrix/switchboard/internal/store"
	"github.com/switchboard-matrix/switchboard/internal/store/storetest"
	"github.com/switchboard-matrix/switchboard/internal/testpeer/sbcore"
)

// running is a Switchboard core with the Jitsi module, inside the test.
type running struct {
	core   *appservice.Core
	module *jitsi.Bridge
	st     *store.Store
	log    *syncBuffer // the core's log (JSON lines)
}

// startModule starts Switchboard with the module on the package's Synapse; enc turns the
// core's end-to-end encryption on (rooms created encrypted by default).
func startModule(t testing.TB, cfg jitsi.Config, enc bool) *running {
	t.Helper()
	st := storetest.Open(t, store.SQLite)
	if cfg.OpenIDURL == "" {
		cfg.OpenIDURL = onHS.URL
	}
	module, err := jitsi.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	var e appservice.Encryption
	if enc {
		e = appservice.Encryption{Enabled: true, Default: true, DecryptTimeout: 2 * time.Minute}
	}
	log := &syncBuffer{}
	core, _ := sbcore.Start(t, sbcore.Options{
		Registration: onHS.Reg, HomeserverURL: onHS.URL, Domain: domain, ASPort: onHS.ASPort, Store: st,
		Modules: []appservice.Module{module}, Version: "jitsie2e", LogLevel: logLevel(),
		Encryption: e, Log: log,
	})
	return &running{core: core, module: module, st: st, log: log}
}

func logLevel() zerolog.Level {
	if l, err := zerolog.ParseLevel(getenv("SWITCHBOARD_JITSIE2E_LOG", "debug")); err == nil {
		return l
	}
	return zerolog.DebugLevel
}

type syncBuffer = syncbuf.Buffer

// meetingRoom creates a room as owner with the module's bot invited and given moderator
// power (and the others invited), and waits until the bot has joined.
func meetingRoom(t testing.TB, owner *mautrix.Client, bot id.UserID, name string, invite ...id.UserID) id.RoomID {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	resp, err := owner.CreateRoom(ctx, &mautrix.ReqCreateRoom{
		Name: name, Preset: "private_chat", Invite: append([]id.UserID{bot}, invite...),
		PowerLevelOverride: &event.PowerLevelsEventContent{Users: map[id.UserID]int{bot: 50}}, // the creator has unlimited power (room version 12)
	})
	if err != nil {
		t.Fatal(err)
	}
	waitJoined(t, owner, resp.RoomID, bot)
	return resp.RoomID
}

// waitJoined waits until user is a joined member of the room, as cli sees it.
func waitJoined(t testing.TB, cli *mautrix.Client, room id.RoomID, user id.UserID) {
	t.Helper()
	waitFor(t, string(user)+" in the room", func() bool {
		m, err := cli.JoinedMembers(context.Background(), room)
		return err == nil && hasKey(m.Joined, user)
	})
}

func hasKey(m map[id.UserID]mautrix.JoinedMember, k id.UserID) bool { _, ok := m[k]; return ok }

// stateOf returns the content of a state event as cli sees it (nil when absent).
func stateOf(t testing.TB, cli *mautrix.Client, room id.RoomID, typ, key string) map[string]any {
	t.Helper()
	var out map[string]any
	err := cli.StateEvent(context.Background(), room, event.Type{Type: typ, Class: event.StateEventType}, key, &out)
	if err != nil {
		if strings.Contains(err.Error(), "M_NOT_FOUND") {
			return nil
		}
		t.Fatal(err)
	}
	return out
}

// widgetOf finds the room's Jitsi widget (state key and content) as cli sees it.
func widgetOf(t testing.TB, cli *mautrix.Client, room id.RoomID) (string, map[string]any, id.UserID) {
	t.Helper()
	st, err := cli.State(context.Background(), room)
	if err != nil {
		t.Fatal(err)
	}
	for key, evt := range st[event.Type{Type: "im.vector.modular.widgets", Class: event.StateEventType}] {
		if len(evt.Content.Raw) > 0 && evt.Content.Raw["url"] != nil {
			return key, evt.Content.Raw, evt.Sender
		}
	}
	return "", nil, ""
}

// waitFor polls cond until it holds or a minute passes.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// sendText sends a text message as cli.
func sendText(t testing.TB, cli *mautrix.Client, room id.RoomID, text string) id.EventID {
	t.Helper()
	resp, err := cli.SendText(context.Background(), room, text)
	if err != nil {
		t.Fatal(err)
	}
	return resp.EventID
}

// noticesFrom lists the bodies of the notices sender posted in the room (plaintext rooms).
func noticesFrom(t testing.TB, cli *mautrix.Client, room id.RoomID, sender id.UserID) []string {
	t.Helper()
	resp, err := cli.Messages(context.Background(), room, "", "", mautrix.DirectionBackward, nil, 500)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for i := len(resp.Chunk) - 1; i >= 0; i-- {
		e := resp.Chunk[i]
		if e.Sender != sender || e.Type != event.EventMessage {
			continue
		}
		_ = e.Content.ParseRaw(e.Type)
		if m := e.Content.AsMessage(); m.MsgType == event.MsgNotice {
			out = append(out, m.Body)
		}
	}
	return out
}

// waitNotice waits until sender posted a notice starting with prefix.
func waitNotice(t testing.TB, cli *mautrix.Client, room id.RoomID, sender id.UserID, prefix string) string {
	t.Helper()
	var found string
	waitFor(t, "a notice "+prefix+"…", func() bool {
		for _, n := range noticesFrom(t, cli, room, sender) {
			if strings.HasPrefix(n, prefix) {
				found = n
				return true
			}
		}
		return false
	})
	return found
}

// post sends a JSON body to the module's HTTP endpoint and returns status and body.
func post(t testing.TB, r *running, path, bearer string, body any) (int, map[string]any) {
	t.Helper()
	var raw []byte
	switch b := body.(type) {
	case string:
		raw = []byte(b)
	default:
		raw, _ = json.Marshal(b)
	}
	req, err := http.NewRequest(http.MethodPost, "http://"+r.module.HTTPAddr()+path, bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	var out map[string]any
	_ = json.Unmarshal(data, &out)
	if out == nil {
		out = map[string]any{"_raw": string(data)}
	}
	return resp.StatusCode, out
}

// unique is prefix with a random suffix.
func unique(prefix string) string {
	var b [4]byte
	_, _ = rand.Read(b[:])
	return prefix + hex.EncodeToString(b[:])
}

func getenv(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}

// hsBot is the module's bot with the default localpart (for the real binary's runs).
func hsBot() id.UserID { return id.NewUserID(jitsi.DefaultBotLocalpart, domain) }

// addMeeting sends !meet as cli, waits for the bot's answer and returns the widget's ID and
// the conference's name as Jitsi uses it in the MUC (jitsi-meet lower-cases room names).
func addMeeting(t testing.TB, cli *mautrix.Client, room id.RoomID, bot id.UserID) (widgetID, conf string) {
	t.Helper()
	sendText(t, cli, room, "!meet")
	waitNotice(t, cli, room, bot, "Added a Jitsi video meeting")
	widgetID, widget, _ := widgetOf(t, cli, room)
	data, _ := widget["data"].(map[string]any)
	name, _ := data["conferenceId"].(string)
	return widgetID, strings.ToLower(name)
}
