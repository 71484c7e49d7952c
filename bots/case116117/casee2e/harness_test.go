package casee2e

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"github.com/santhosh-tekuri/jsonschema/v6"
	"maunium.net/go/mautrix"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"

	"github.com/switchboard-matrix/switchboard/appservice"
	"github.com/switchboard-matrix/switchboard/bots/case116117"
	"github.com/switchboard-matrix/switchboard/config"
	"github.com/switchboard-matrix/switchboard/internal/store"
	"github.com/switchboard-matrix/switchboard/internal/store/storetest"
	"github.com/switchboard-matrix/switchboard/internal/testpeer/matrixtest"
	"github.com/switchboard-matrix/switchboard/internal/testpeer/sbcore"
	"github.com/switchboard-matrix/switchboard/internal/testpeer/ucrm"
)

// centres numbers the centres of the run.
var centres atomic.Int64

// newMatrixUser registers a real Matrix user on the test's homeserver.
func newMatrixUser(t testing.TB, prefix string) *mautrix.Client {
	t.Helper()
	return onHS.NewUser(t, prefix)
}

// newCentre registers a new dispatch centre at the fake UCRM for the bot to work for (so
// every test starts with an empty queue) and returns its link config, worked by user.
func newCentre(t testing.TB, user id.UserID) case116117.LinkConfig {
	t.Helper()
	n := centres.Add(1)
	oid := fmt.Sprintf("1.2.276.0.76.3.2.%d", n)
	name := fmt.Sprintf("b%d", n)
	srv.AddParticipant(ucrm.Participant{OID: oid, Username: name, Password: "pw-" + name, OperatorName: "116117 " + name, ShortName: "KV " + name, Key: &keyB.PublicKey})
	return case116117.LinkConfig{
		Name: name, OID: oid, SigningKey: keyBPath,
		UCRM:        case116117.UCRMConfig{URL: srv.URL(), Username: name, Password: "pw-" + name},
		Dispatchers: []string{user.String()}, Admins: []string{user.String()},
		MaxDelay: config.Duration(2 * time.Second),
	}
}

// startBot starts Switchboard on the test's homeserver with the bot for the links on st (a fresh SQLite store when
// nil).
func startBot(t testing.TB, st *store.Store, links ...case116117.LinkConfig) *appservice.Core {
	t.Helper()
	return startBotEncrypted(t, st, appservice.Encryption{}, links...)
}

// startBotEncrypted is startBot with the core's end-to-end encryption enc.
func startBotEncrypted(t testing.TB, st *store.Store, enc appservice.Encryption, links ...case116117.LinkConfig) *appservice.Core {
	t.Helper()
	if st == nil {
		st = storetest.Open(t, store.SQLite)
	}
	bot, err := case116117.New(case116117.Config{Links: links})
	if err != nil {
		t.Fatal(err)
	}
	level, _ := zerolog.ParseLevel(getenv("SWITCHBOARD_CASEE2E_LOG", "info"))
	core, _ := sbcore.Start(t, sbcore.Options{
		Registration: onHS.Reg, HomeserverURL: onHS.URL, Domain: domain, ASPort: onHS.ASPort, Store: st,
		Modules: []appservice.Module{bot}, Version: "casee2e", LogLevel: level, Encryption: enc,
	})
	return core
}

var waitEvent = matrixtest.WaitEvent

// adminRoom joins the link's admin room.
func adminRoom(t testing.TB, cli *mautrix.Client, l case116117.LinkConfig) id.RoomID {
	t.Helper()
	return joinAlias(t, cli, "#"+case116117.DefaultPrefix+l.Name+":"+domain)
}

// caseRoom joins the room of a case, once the bot made it.
func caseRoom(t testing.TB, cli *mautrix.Client, l case116117.LinkConfig, caseID string) id.RoomID {
	t.Helper()
	return joinAlias(t, cli, "#"+case116117.DefaultPrefix+l.Name+"_"+caseID+":"+domain)
}

func joinAlias(t testing.TB, cli *mautrix.Client, alias string) id.RoomID {
	t.Helper()
	var room id.RoomID
	matrixtest.WaitFor(t, 30*time.Second, "the room "+alias, func() (bool, error) {
		resp, err := cli.ResolveAlias(context.Background(), id.RoomAlias(alias))
		if err != nil {
			return false, err
		}
		room = resp.RoomID
		_, err = cli.JoinRoomByID(context.Background(), room)
		return err == nil, err
	})
	return room
}

func say(t testing.TB, cli *mautrix.Client, room id.RoomID, text string) id.EventID {
	t.Helper()
	resp, err := cli.SendText(context.Background(), room, text)
	if err != nil {
		t.Fatal(err)
	}
	return resp.EventID
}

// waitNotice waits for a message in the room whose body contains all the parts.
func waitNotice(t testing.TB, cli *mautrix.Client, room id.RoomID, parts ...string) *event.Event {
	t.Helper()
	return waitEvent(t, cli, room, fmt.Sprintf("a message with %q", parts), func(e *event.Event) bool {
		if e.Type != event.EventMessage {
			return false
		}
		body, _ := e.Content.Raw["body"].(string)
		for _, p := range parts {
			if !strings.Contains(body, p) {
				return false
			}
		}
		return true
	})
}

// firstBody returns the position of the room's first message whose body contains all the
// parts, -1 if none.
func firstBody(t testing.TB, cli *mautrix.Client, room id.RoomID, parts ...string) int {
	t.Helper()
	evts, err := matrixtest.RoomEvents(context.Background(), cli, room, event.EventMessage)
	if err != nil {
		t.Fatal(err)
	}
next:
	for i, e := range evts {
		body, _ := e.Content.Raw["body"].(string)
		for _, p := range parts {
			if !strings.Contains(body, p) {
				continue next
			}
		}
		return i
	}
	return -1
}

// englishInRoom are words of Switchboard's own English texts; the room texts are German.
var englishInRoom = []string{" the ", " was ", " could ", " failed", " sent ", " message ", " unknown ", " invalid "}

// technicalDetail is the marked technical detail of a UCRI2 error, English by nature.
var technicalDetail = regexp.MustCompile(`technisch: [^)]*\)`)

// checkWording checks the bot's messages in the rooms: no "Fall Fall", no "..", no English
// of Switchboard's own (the marked technical detail of a UCRI2 error aside) (issue 10
// item 5).
func checkWording(t testing.TB, cli *mautrix.Client, rooms ...id.RoomID) {
	t.Helper()
	for _, room := range rooms {
		evts, err := matrixtest.RoomEvents(context.Background(), cli, room, event.EventMessage)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range evts {
			if e.Sender == cli.UserID {
				continue
			}
			body, _ := e.Content.Raw["body"].(string)
			bad := strings.Contains(body, "Fall Fall") || strings.Contains(body, "..")
			german := technicalDetail.ReplaceAllString(body, "technisch: …)")
			for _, w := range englishInRoom {
				bad = bad || strings.Contains(german, w)
			}
			if bad {
				t.Errorf("wording of a bot message in %s: %q", room, body)
			}
		}
	}
}

// countBodies counts the room's messages whose body contains part.
func countBodies(t testing.TB, cli *mautrix.Client, room id.RoomID, part string) int {
	t.Helper()
	evts, err := matrixtest.RoomEvents(context.Background(), cli, room, event.EventMessage)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, e := range evts {
		if body, _ := e.Content.Raw["body"].(string); strings.Contains(body, part) {
			n++
		}
	}
	return n
}

// received collects what a centre (A unless peer is set) received, committing it; the
// fake UCRM redelivers nothing after that.
type received struct {
	peer *ucrm.Peer
	mu   sync.Mutex
	msgs []ucrm.Message
}

func (r *received) poll(t testing.TB) {
	t.Helper()
	if r.peer == nil {
		r.peer = peerA
	}
	items, err := r.peer.Receive(context.Background(), 0)
	if err != nil {
		t.Fatal(err)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, it := range items {
		m, err := ucrm.ParseMessage(it)
		if err != nil {
			t.Fatal(err)
		}
		r.msgs = append(r.msgs, m)
	}
}

// wait polls until a message of schemaID from source matches, and returns it.
func (r *received) wait(t testing.TB, source, schemaID string, match func(data map[string]any) bool) ucrm.Message {
	t.Helper()
	var found ucrm.Message
	matrixtest.WaitFor(t, 30*time.Second, "the centre to receive a "+schemaID, func() (bool, error) {
		r.poll(t)
		r.mu.Lock()
		defer r.mu.Unlock()
		for _, m := range r.msgs {
			if m.Source != source || m.SchemaID != schemaID {
				continue
			}
			var data map[string]any
			if err := json.Unmarshal(m.Data, &data); err != nil {
				return false, err
			}
			if match == nil || match(data) {
				found = m
				return true, nil
			}
		}
		return false, nil
	})
	return found
}

// schemas compiles the official UCRI2 schemas, with format assertions.
var schemas = sync.OnceValue(func() *jsonschema.Compiler {
	c := jsonschema.NewCompiler()
	c.AssertFormat()
	return c
})

// schemaPath finds the official schema in ../shared/ucri2 (the reference material beside
// the repository); without it, the copy in ucri/spec (which a test compares with the
// original) is used.
func schemaPath(appID, schemaID string) string {
	for _, root := range []string{filepath.Join("..", "..", "..", "..", "shared", "ucri2", "apps"), filepath.Join("..", "ucri", "spec", "apps")} {
		p := filepath.Join(root, appID, "1.0", schemaID+".schema.json")
		if _, err := os.Stat(p); err == nil {
			abs, _ := filepath.Abs(p)
			return abs
		}
	}
	return ""
}

// checkSchemas validates every message the centre sent (as the UCRM stored it) against
// the official app schema of its payload, with format assertions.
func checkSchemas(t testing.TB, source string) int {
	t.Helper()
	c := schemas()
	n := 0
	for _, raw := range srv.Sent(source) {
		m, err := ucrm.ParseMessage(raw)
		if err != nil {
			t.Errorf("a sent message: %v", err)
			continue
		}
		path := schemaPath(m.AppID, m.SchemaID)
		if path == "" {
			t.Errorf("message %s: no official schema for %s/%s", m.MessageID, m.AppID, m.SchemaID)
			continue
		}
		sch, err := c.Compile(path)
		if err != nil {
			t.Fatal(err)
		}
		inst, err := jsonschema.UnmarshalJSON(strings.NewReader(string(m.Data)))
		if err != nil {
			t.Errorf("message %s: data is not JSON: %v", m.MessageID, err)
			continue
		}
		if err := sch.Validate(inst); err != nil {
			t.Errorf("message %s (%s) does not validate against %s: %v", m.MessageID, m.SchemaID, path, err)
		}
		n++
	}
	return n
}
