package email

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"

	"github.com/switchboard-matrix/switchboard/appservice"
)

// memHost is a host with an in-memory store; only Store and Enqueue work. A message is
// in the message map once sent is called for it.
type memHost struct {
	appservice.Host
	st     *memStore
	queued []string // RemoteIDs in Enqueue order, repeats included
	fail   string   // the next Enqueue of this RemoteID fails (a crash there)
}

func newMemHost() *memHost {
	return &memHost{st: &memStore{kv: map[string]string{}, msgs: map[string]id.EventID{}}}
}

func (h *memHost) Store() appservice.ModuleStore { return h.st }

func (h *memHost) Enqueue(_ context.Context, msg appservice.Message) error {
	if msg.RemoteID == h.fail {
		h.fail = ""
		return errors.New("killed")
	}
	h.queued = append(h.queued, msg.RemoteID)
	return nil
}

// sendAll puts every queued message in the message map, as the outbox does.
func (h *memHost) sendAll() {
	for _, r := range h.queued {
		h.st.msgs[r] = id.EventID("$" + r)
	}
}

type memStore struct {
	appservice.ModuleStore
	kv   map[string]string
	msgs map[string]id.EventID
}

func (s *memStore) MessageByRemote(_ context.Context, remoteID string) (id.RoomID, id.EventID, error) {
	if e, ok := s.msgs[remoteID]; ok {
		return "!room", e, nil
	}
	return "", "", fmt.Errorf("message %s: %w", remoteID, appservice.ErrNotFound)
}

func (s *memStore) GetKV(_ context.Context, key string) (string, error) {
	if v, ok := s.kv[key]; ok {
		return v, nil
	}
	return "", fmt.Errorf("key %s: %w", key, appservice.ErrNotFound)
}

func (s *memStore) PutKV(_ context.Context, key, value string) error {
	s.kv[key] = value
	return nil
}

func (s *memStore) DeleteKV(_ context.Context, key string) error {
	delete(s.kv, key)
	return nil
}

// TestBeginPost: a mail whose first event is in the room is passed over only when it was
// bridged whole (or sent by the room); one stopped between its events is resumed from
// the files it queued. Before, every mail with its event in the room was passed over, and
// the files of a mail killed after its first event never arrived.
func TestBeginPost(t *testing.T) {
	const key = "mid:box:m1@ext.test"
	tests := []struct {
		name        string
		inRoom      bool
		kv          map[string]string
		wantSkip    bool
		wantResumed bool
		wantFiles   int
	}{
		{"a new mail", false, nil, false, false, 0},
		{"bridged whole before", true, nil, true, false, 0},
		{"a mail the room sent", true, map[string]string{"mail:" + key: `{"from":"post@box.test"}`, "sent:" + key: `{}`}, true, false, 0},
		{"stopped after its first event", true, map[string]string{postingKey(key): "0"}, false, true, 0},
		{"stopped after two of its files", true, map[string]string{postingKey(key): "2"}, false, true, 2},
		{"stopped before its first event was sent", false, map[string]string{postingKey(key): "0"}, false, true, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newMemHost()
			for k, v := range tt.kv {
				h.st.kv[k] = v
			}
			if tt.inRoom {
				h.st.msgs[key] = "$main"
			}
			m := &mailbox{b: &Bridge{host: h}, room: "!room"}
			run, err := m.beginPost(context.Background(), key)
			if err != nil {
				t.Fatal(err)
			}
			if (run == nil) != tt.wantSkip {
				t.Fatalf("passed over: %t, want %t", run == nil, tt.wantSkip)
			}
			if run != nil && (run.resumed != tt.wantResumed || run.files != tt.wantFiles) {
				t.Errorf("resumed %t with %d files, want %t with %d", run.resumed, run.files, tt.wantResumed, tt.wantFiles)
			}
		})
	}
}

// TestPostRunAfterCrash: a run killed while queueing a mail's second file, then a re-read
// after the mail's first events were sent, queues the rest once and the mail is then
// done.
func TestPostRunAfterCrash(t *testing.T) {
	ctx := context.Background()
	const key = "mid:box:m2@ext.test"
	h := newMemHost()
	m := &mailbox{b: &Bridge{host: h}, room: "!room"}
	// queue is what post does with the run: the mail's event, then its three files.
	queue := func(run *postRun) error {
		content := &event.MessageEventContent{MsgType: event.MsgText, Body: "x"}
		if err := run.enqueue(ctx, appservice.Message{RoomID: m.room, Sender: "@g:hs", RemoteID: key, Content: content}); err != nil {
			return err
		}
		for i := run.files; i < 3; i++ {
			if err := run.enqueue(ctx, appservice.Message{RoomID: m.room, Sender: "@g:hs", RemoteID: fmt.Sprintf("%s|part%d", key, i), Content: content}); err != nil {
				return err
			}
			if err := run.fileQueued(ctx, i+1); err != nil {
				return err
			}
		}
		return run.finish(ctx)
	}
	h.fail = key + "|part1"
	run, err := m.beginPost(ctx, key)
	if err != nil || run == nil {
		t.Fatalf("begin: %v, %v", run, err)
	}
	if err := queue(run); err == nil {
		t.Fatal("the kill went unnoticed")
	}
	h.sendAll()

	run, err = m.beginPost(ctx, key)
	if err != nil || run == nil {
		t.Fatalf("the re-read passes over a mail with a file missing (%v)", err)
	}
	if err := queue(run); err != nil {
		t.Fatal(err)
	}
	want := []string{key, key + "|part0", key + "|part1", key + "|part2"}
	if !slices.Equal(h.queued, want) {
		t.Errorf("queued %v, want each once: %v", h.queued, want)
	}
	h.sendAll()
	if run, err := m.beginPost(ctx, key); err != nil || run != nil {
		t.Errorf("a mail bridged whole is not passed over (%v, %v)", run, err)
	}
	if _, ok := h.st.kv[postingKey(key)]; ok {
		t.Error("the progress marker is left behind")
	}
}

// TestOpenThreadKeepsState: the state of a conversation is created once; completing its
// first mail after a crash keeps a recipient a room user added meanwhile.
func TestOpenThreadKeepsState(t *testing.T) {
	ctx := context.Background()
	const key = "mid:box:m3@ext.test"
	h := newMemHost()
	b := &Bridge{host: h}
	mb := &MailboxConfig{Address: "post@box.test"}
	meta := mailMeta{MessageID: "m3@ext.test", From: "alice@ext.test"}
	if _, err := b.openThread(ctx, mb, key, meta); err != nil {
		t.Fatal(err)
	}
	if _, err := b.emailCommand(ctx, mb, key, "!email add carol@ext.test"); err != nil {
		t.Fatal(err)
	}
	st, err := b.openThread(ctx, mb, key, meta)
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(st.Recipients, ","); got != "alice@ext.test,carol@ext.test" {
		t.Errorf("recipients %s, want alice@ext.test,carol@ext.test", got)
	}
}
