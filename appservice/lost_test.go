package appservice

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"maunium.net/go/mautrix"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"

	"github.com/switchboard-matrix/switchboard/internal/store"
)

// strictHomeserver sits in front of the fake homeserver and refuses sends the way a real
// homeserver does: events over Matrix's 64 KiB limit with 413 M_TOO_LARGE, and every send
// of a user in forbidden with 403 M_FORBIDDEN.
type strictHomeserver struct {
	*httptest.Server
	mu        sync.Mutex
	forbidden map[string]bool // guarded by mu; user IDs that may not post
}

const maxEventBytes = 65536

func newStrictHomeserver(t *testing.T, upstream string) *strictHomeserver {
	target, err := url.Parse(upstream)
	if err != nil {
		t.Fatal(err)
	}
	s := &strictHomeserver{forbidden: map[string]bool{}}
	proxy := httputil.NewSingleHostReverseProxy(target)
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPut && strings.Contains(r.URL.Path, "/send/") {
			body, _ := io.ReadAll(r.Body)
			s.mu.Lock()
			forbidden := s.forbidden[r.URL.Query().Get("user_id")]
			s.mu.Unlock()
			switch {
			case len(body) > maxEventBytes:
				writeError(w, http.StatusRequestEntityTooLarge, "M_TOO_LARGE", "event too large")
				return
			case forbidden:
				writeError(w, http.StatusForbidden, "M_FORBIDDEN", "user not in room")
				return
			}
			r.Body = io.NopCloser(bytes.NewReader(body))
		}
		proxy.ServeHTTP(w, r)
	}))
	t.Cleanup(s.Close)
	return s
}

func (s *strictHomeserver) forbid(user id.UserID) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.forbidden[user.String()] = true
}

// startStrict starts a core behind a strictHomeserver.
func startStrict(t *testing.T, st *store.Store) (*testEnv, *strictHomeserver) {
	var strict *strictHomeserver
	env := startCoreWith(t, st, func(o *Options) {
		strict = newStrictHomeserver(t, o.HomeserverURL)
		o.HomeserverURL = strict.URL
	})
	return env, strict
}

// sentOfType returns the events of type typ the homeserver got, decoded.
func sentOfType(hs *fakeHomeserver, typ string) []map[string]any {
	var out []map[string]any
	for _, s := range hs.sentMessages() {
		if s.Type != typ {
			continue
		}
		var c map[string]any
		_ = json.Unmarshal(s.Content, &c)
		c["_sender"] = s.Sender
		out = append(out, c)
	}
	return out
}

func lostRows(t *testing.T, st *store.Store) int {
	t.Helper()
	var n int
	if err := st.DB().QueryRowContext(t.Context(), `SELECT COUNT(*) FROM outbox WHERE module = 'core' AND remote_id LIKE 'lost%'`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// TestLostMessageGetsNotice (issue 10, item 6): a message the homeserver refuses as too
// large (over 64 KiB) is not lost in silence: the sender's ghost posts a notice naming what
// was lost in general terms (never its body) and the error code, and the Matrix event the
// message answered gets a com.beeper.message_send_status failure. Giving up again (a crash
// between queueing the notice and recording the failure, then a restart) adds no notice.
func TestLostMessageGetsNotice(t *testing.T) {
	st := sqliteStore(t)
	env, strict := startStrict(t, st)
	secret := "PATIENT-DATA " + strings.Repeat("x", 70*1024)
	_, err := env.mod.host.Send(context.Background(), Message{
		RoomID: "!p:test", Sender: "@_rec_ghost:test", RemoteID: "big", CausedBy: "$command",
		Timestamp: time.Date(2026, 12, 3, 9, 30, 0, 0, time.UTC),
		Content:   &event.MessageEventContent{MsgType: event.MsgText, Body: secret},
	})
	if !errors.Is(err, ErrSendFailed) {
		t.Fatalf("Send = %v, want ErrSendFailed", err)
	}
	var notices []map[string]any
	eventually(t, "the notice about the lost message", func() bool {
		notices = sentOfType(env.hs, "m.room.message")
		return len(notices) == 1
	})
	n := notices[0]
	body, _ := n["body"].(string)
	for _, want := range []string{"A message (rec, 71 KiB, written 2026-12-03 09:30 UTC)", "could not be posted", "M_TOO_LARGE"} {
		if !strings.Contains(body, want) {
			t.Errorf("notice %q lacks %q", body, want)
		}
	}
	if strings.Contains(body, "PATIENT") || n["msgtype"] != "m.notice" || n["_sender"] != "@_rec_ghost:test" {
		t.Errorf("notice = %v, want an m.notice by the ghost without the body", n)
	}
	if rel, _ := n["m.relates_to"].(map[string]any); rel == nil || rel["m.in_reply_to"].(map[string]any)["event_id"] != "$command" {
		t.Errorf("notice relates to %v, want a reply to $command", n["m.relates_to"])
	}
	var statuses []map[string]any
	eventually(t, "the failure status on the command", func() bool {
		statuses = sentOfType(env.hs, event.BeeperMessageStatus.Type)
		return len(statuses) == 1
	})
	if s := statuses[0]; s["status"] != "FAIL_PERMANENT" || s["m.relates_to"].(map[string]any)["event_id"] != "$command" ||
		!strings.Contains(s["error"].(string), "M_TOO_LARGE") {
		t.Errorf("status = %v", s)
	}

	// A crash after the notice was queued but before the failure was recorded: the row is
	// pending again when the next process starts.
	if err := env.core.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, err := st.DB().ExecContext(t.Context(), `UPDATE outbox SET state = 'pending' WHERE remote_id = 'big'`); err != nil {
		t.Fatal(err)
	}
	startCoreWith(t, st, func(o *Options) {
		o.HomeserverURL = strict.URL
		o.InDoubtSettle = time.Millisecond
	})
	eventually(t, "the refused message given up again", func() bool {
		row, err := st.GetOutbox(t.Context(), "rec", "big")
		return err == nil && row.State == store.OutboxFailed
	})
	time.Sleep(100 * time.Millisecond)
	if got := lostRows(t, st); got != 2 {
		t.Errorf("%d notice and status rows after giving up twice, want 2 (one each)", got)
	}
	if got := len(sentOfType(env.hs, "m.room.message")); got != 1 {
		t.Errorf("the room got %d notices, want 1", got)
	}
}

// TestLostNoticeFallsBackToBot: when the sender may not post in the room (M_FORBIDDEN), the
// notice comes from the bot and names the sender; a notice its first sender could not post
// is posted again by the bot, once.
func TestLostNoticeFallsBackToBot(t *testing.T) {
	env, strict := startStrict(t, sqliteStore(t))
	strict.forbid("@_rec_ghost:test")
	_, err := env.mod.host.Send(context.Background(), Message{
		RoomID: "!p:test", Sender: "@_rec_ghost:test", RemoteID: "r1",
		Content: &event.MessageEventContent{MsgType: event.MsgImage, Body: "scan.png", URL: "mxc://test/x"},
	})
	if !errors.Is(err, ErrSendFailed) {
		t.Fatalf("Send = %v, want ErrSendFailed", err)
	}
	var notices []map[string]any
	eventually(t, "the bot's notice", func() bool {
		notices = sentOfType(env.hs, "m.room.message")
		return len(notices) == 1
	})
	body, _ := notices[0]["body"].(string)
	if notices[0]["_sender"] != "@bot:test" || !strings.Contains(body, "An image (rec,") ||
		!strings.Contains(body, "from @_rec_ghost:test") || !strings.Contains(body, "M_FORBIDDEN") || strings.Contains(body, "scan.png") {
		t.Errorf("notice = %v", notices[0])
	}

	// A failure report the module's ghost could not post is reposted by the bot.
	strict.forbid("@_rec_other:test")
	if err := env.core.enqueue(context.Background(), coreModuleID, Message{
		RoomID: "!p:test", Sender: "@_rec_other:test", RemoteID: "notice:$x",
		Content: &event.MessageEventContent{MsgType: event.MsgNotice, Body: "⚠️ Your message was not delivered"},
	}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the bot's repost", func() bool { return len(sentOfType(env.hs, "m.room.message")) == 2 })
	repost := sentOfType(env.hs, "m.room.message")[1]
	if repost["_sender"] != "@bot:test" || repost["body"] != "⚠️ Your message was not delivered" {
		t.Errorf("repost = %v", repost)
	}
}

func TestDescribeLost(t *testing.T) {
	ts := time.Date(2026, 1, 2, 3, 4, 0, 0, time.UTC).UnixMilli()
	tests := []struct {
		name      string
		eventType string
		content   string
		ts        int64
		want      string
	}{
		{"text", "m.room.message", `{"msgtype":"m.text","body":"secret"}`, ts, "a message (mod, 36 bytes, written 2026-01-02 03:04 UTC)"},
		{"file", "m.room.message", `{"msgtype":"m.file","body":"secret.pdf"}`, 0, "a file (mod, 40 bytes)"},
		{"edit", "m.room.message", `{"msgtype":"m.text","m.relates_to":{"rel_type":"m.replace"}}`, 0, "an edit of a message (mod, 60 bytes)"},
		{"reaction", "m.reaction", `{}`, 0, "a reaction (mod, 2 bytes)"},
		{"custom", "org.example.case", `{}`, 0, "an event of type org.example.case (mod, 2 bytes)"},
		{"not JSON", "m.room.message", `{`, 0, "a message (mod, 1 bytes)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := describeLost(store.OutboxMessage{Module: "mod", EventType: tt.eventType, Content: []byte(tt.content), TS: tt.ts})
			if got != tt.want {
				t.Errorf("describeLost = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestLostReason(t *testing.T) {
	httpErr := func(code string) error {
		return mautrix.HTTPError{Response: &http.Response{StatusCode: 400}, RespError: &mautrix.RespError{ErrCode: code, Err: "secret detail"}}
	}
	tests := []struct {
		name     string
		err      error
		wantCode string
		want     string
	}{
		{"too large", httpErr("M_TOO_LARGE"), "M_TOO_LARGE", "the homeserver refuses events this large"},
		{"413 as Dendrite says it", mautrix.HTTPError{Response: &http.Response{StatusCode: 413}, RespError: &mautrix.RespError{ErrCode: "M_BAD_JSON"}},
			"M_BAD_JSON", "the homeserver refuses events this large"},
		{"forbidden", httpErr("M_FORBIDDEN"), "M_FORBIDDEN", "the sender may not post in this room"},
		{"bad json", httpErr("M_BAD_JSON"), "M_BAD_JSON", "the homeserver refused its content"},
		{"unknown code", httpErr("M_UNKNOWN"), "M_UNKNOWN", "the homeserver refused it (8 attempts)"},
		{"no answer", context.DeadlineExceeded, "", "the homeserver did not accept it after 8 attempts"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, reason := lostReason(tt.err, 8)
			if code != tt.wantCode || reason != tt.want || strings.Contains(reason, "secret") {
				t.Errorf("lostReason = %q, %q; want %q, %q", code, reason, tt.wantCode, tt.want)
			}
		})
	}
}
