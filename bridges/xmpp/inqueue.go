package xmpp

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/rs/zerolog"
	"maunium.net/go/mautrix/id"
	"mellium.im/xmpp/jid"

	"github.com/switchboard-matrix/switchboard/appservice"
	"github.com/switchboard-matrix/switchboard/bridges/xmpp/component"
	"github.com/switchboard-matrix/switchboard/bridges/xmpp/xmsg"
)

// Inbound messages with out-of-band links leave the component's ordered path: the links
// are downloaded by a worker of the message's conversation, so that a slow or hostile file
// server delays only its own conversation. To keep the order within a conversation, every
// later message of that conversation waits behind it in the same queue; other
// conversations go on at once.
//
// A queued message is recorded in the store ("inq:<number>", its stanza and routing)
// before the component goes on (and before an XEP-0184 receipt is sent), and deleted after
// it was queued for Matrix. A crash in between makes the worker run it again after the
// restart, before any new stanza is handled; the outbox's idempotency by message key
// keeps that exactly-once. Memory holds only the keys of waiting messages; when more
// than maxWaiting wait in one conversation, the links of further ones are not downloaded
// (they arrive as links), so that a flood drains quickly.

const inqPrefix = "inq:"

// inqJob is a queued inbound message.
type inqJob struct {
	key       string    // the store key; not stored in the value
	Raw       string    `json:"raw"` // the stanza
	Chat      string    `json:"chat"`
	Room      id.RoomID `json:"room"`
	Sender    string    `json:"sender"`
	Ghost     id.UserID `json:"ghost"`
	Groupchat bool      `json:"groupchat,omitempty"`
	NoFetch   bool      `json:"no_fetch,omitempty"` // queued behind too many: links stay links
}

// maxWaiting is the number of waiting messages in a conversation above which links are no
// longer downloaded.
const maxWaiting = 20

// inQueues are the conversations with queued messages.
type inQueues struct {
	mu      sync.Mutex
	waiting map[string][]string // guarded by mu; per chat, the jobs' store keys in order
	running map[string]bool     // guarded by mu; chats with a worker
	last    int64               // guarded by mu; the last job number given out
	sem     chan struct{}       // bounds the messages downloading at once
}

func (q *inQueues) init(downloads int) {
	q.waiting, q.running = map[string][]string{}, map[string]bool{}
	q.sem = make(chan struct{}, max(downloads, 1))
}

// busy reports whether chat has queued or running messages.
func (q *inQueues) busy(chat string) bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.running[chat] || len(q.waiting[chat]) > 0
}

// nextKey gives out increasing store keys (time-based, so they keep increasing after a
// restart, and above every loaded one).
func (q *inQueues) nextKey() string {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.last = max(q.last+1, time.Now().UnixNano())
	return inqPrefix + fmt.Sprintf("%020d", q.last)
}

// needsWorker reports whether m must leave the ordered path: it has links to download.
func needsWorker(m *xmsg.Message) bool {
	return len(m.OOB) > 0 && m.Retract == "" && m.Reactions == nil
}

// toMatrixInOrder bridges in now, or queues it behind its conversation's earlier messages
// when it has links to download or its conversation has queued messages. Either way it
// returns nil only once the message is durably on its way (queued for Matrix or recorded
// in the conversation's queue).
func (b *Bridge) toMatrixInOrder(ctx context.Context, in *inbound) error {
	m := in.msg
	if !hasContent(m) || (!needsWorker(m) && !b.inq.busy(in.chat)) {
		return b.toMatrix(ctx, in)
	}
	if !in.groupchat && len(m.Body)+len(m.XHTML) > maxMatrixText {
		// Refused now, while the sender can still be told with a stanza error.
		return refusal{"modify", "policy-violation", "The message is too large for Matrix."}
	}
	job := inqJob{key: b.inq.nextKey(), Raw: string(in.raw), Chat: in.chat, Room: in.room,
		Sender: in.sender.String(), Ghost: in.ghost, Groupchat: in.groupchat,
		NoFetch: b.inq.waitingIn(in.chat) >= maxWaiting}
	value, err := json.Marshal(job)
	if err != nil {
		return err
	}
	if err := b.host.Store().PutKV(ctx, job.key, string(value)); err != nil {
		return err
	}
	b.pushJob(job.Chat, job.key)
	return nil
}

// waitingIn is the number of messages waiting in chat.
func (q *inQueues) waitingIn(chat string) int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.waiting[chat])
}

// pushJob appends the job stored under key to chat's queue and starts the conversation's
// worker if none runs.
func (b *Bridge) pushJob(chat, key string) {
	q := &b.inq
	q.mu.Lock()
	defer q.mu.Unlock()
	q.waiting[chat] = append(q.waiting[chat], key)
	if !q.running[chat] {
		q.running[chat] = true
		b.loops.Go(func(ctx context.Context) { b.runChat(ctx, chat) })
	}
}

// runChat works through chat's queue, one message at a time.
func (b *Bridge) runChat(ctx context.Context, chat string) {
	q := &b.inq
	for {
		q.mu.Lock()
		jobs := q.waiting[chat]
		if len(jobs) == 0 || ctx.Err() != nil {
			delete(q.waiting, chat)
			delete(q.running, chat)
			q.mu.Unlock()
			return
		}
		key := jobs[0]
		q.mu.Unlock()
		if !b.runJob(ctx, key) {
			return // stopping: the job stays in the store for the next start
		}
		q.mu.Lock()
		q.waiting[chat] = q.waiting[chat][1:]
		q.mu.Unlock()
	}
}

// Retries of a queued message whose bridging failed.
const (
	inqAttempts   = 10
	inqMinBackoff = time.Second
	inqMaxBackoff = 30 * time.Second
)

// runJob bridges the queued message stored under key, retrying failures; it returns
// false when ctx ended first.
func (b *Bridge) runJob(ctx context.Context, key string) bool {
	log := zerolog.Ctx(ctx).With().Str("job", key).Logger()
	ctx = log.WithContext(ctx)
	in, err := b.loadJob(ctx, key)
	switch {
	case ctx.Err() != nil:
		return false
	case errors.Is(err, appservice.ErrNotFound):
		return true
	}
	backoff := inqMinBackoff
	for attempt := 1; err == nil; attempt++ {
		if needsWorker(in.msg) && !in.noFetch {
			select {
			case b.inq.sem <- struct{}{}:
			case <-ctx.Done():
				return false
			}
			err = b.toMatrix(ctx, in)
			<-b.inq.sem
		} else {
			err = b.toMatrix(ctx, in)
		}
		if ctx.Err() != nil {
			return false
		}
		var se component.StanzaError
		if err == nil || errors.As(err, &se) || attempt >= inqAttempts {
			break
		}
		log.Warn().Err(err).Int("attempt", attempt).Msg("Could not bridge a queued XMPP message; retrying")
		t := time.NewTimer(backoff/2 + rand.N(backoff/2+1))
		select {
		case <-ctx.Done():
			t.Stop()
			return false
		case <-t.C:
		}
		backoff = min(2*backoff, inqMaxBackoff)
	}
	if err != nil {
		log.Error().Err(err).Msg("Gave up on a queued XMPP message")
		if in != nil {
			b.refuseQueued(ctx, in, err)
		}
	}
	if derr := b.host.Store().DeleteKV(context.WithoutCancel(ctx), key); derr != nil {
		// Run again after the next start: harmless, the outbox drops what it has.
		log.Error().Err(derr).Msg("Could not remove a bridged message from the queue")
	}
	return true
}

// loadJob reads the job stored under key and rebuilds its message.
func (b *Bridge) loadJob(ctx context.Context, key string) (*inbound, error) {
	for {
		raw, err := b.host.Store().GetKV(ctx, key)
		if err == nil && raw == "" {
			err = appservice.ErrNotFound
		}
		if err == nil {
			var j inqJob
			if err := json.Unmarshal([]byte(raw), &j); err != nil {
				return nil, fmt.Errorf("xmpp: queued message %s: %w", key, err)
			}
			j.key = key
			return j.inbound()
		}
		if errors.Is(err, appservice.ErrNotFound) || ctx.Err() != nil {
			return nil, err
		}
		zerolog.Ctx(ctx).Error().Err(err).Msg("Could not load a queued XMPP message; retrying")
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(inqMinBackoff):
		}
	}
}

// inbound rebuilds the message of a job.
func (j inqJob) inbound() (*inbound, error) {
	m, err := xmsg.ParseMessage([]byte(j.Raw))
	if err != nil {
		return nil, fmt.Errorf("xmpp: queued message %s: %w", j.key, err)
	}
	sender, err := jid.Parse(j.Sender)
	if err != nil {
		return nil, fmt.Errorf("xmpp: queued message %s: sender: %w", j.key, err)
	}
	return &inbound{msg: m, raw: []byte(j.Raw), chat: j.Chat, room: j.Room, sender: sender,
		ghost: j.Ghost, groupchat: j.Groupchat, noFetch: j.NoFetch}, nil
}

// refuseQueued tells the sender of a 1:1 message that it did not reach Matrix (in a group
// chat an error would make the room drop our puppet).
func (b *Bridge) refuseQueued(ctx context.Context, in *inbound, cause error) {
	user, _, ok := parseDMChat(in.chat)
	if !ok || in.msg.ID == "" {
		return
	}
	puppet, err := b.mapper.PuppetJID(user)
	if err != nil {
		return
	}
	se := &xmsg.StanzaError{Type: "wait", Condition: "internal-server-error", Text: "The message could not be delivered to Matrix."}
	var r component.StanzaError
	if errors.As(cause, &r) {
		se.Type, se.Condition, se.Text = r.StanzaError()
	}
	to := in.msg.From
	if to.Equal(jid.JID{}) {
		to = in.sender
	}
	m := &xmsg.Message{ID: in.msg.ID, Type: "error", From: puppet, To: to, Error: se}
	raw, err := m.Marshal()
	if err == nil {
		err = b.send(ctx, raw)
	}
	if err != nil {
		zerolog.Ctx(ctx).Error().Err(err).Msg("Could not tell an XMPP sender that their message did not reach Matrix")
	}
}

// resumeQueued loads the messages queued before the last stop, in order, and starts
// their workers. It runs before the component connects, so a new message of such a
// conversation waits behind them; it retries until it succeeds or ctx ends.
func (b *Bridge) resumeQueued(ctx context.Context) {
	backoff := inqMinBackoff
	for {
		kvs, err := b.host.Store().ListKV(ctx, inqPrefix, 0)
		if err == nil {
			for _, kv := range kvs {
				var job struct {
					Chat string `json:"chat"`
				}
				if err := json.Unmarshal([]byte(kv.Value), &job); err != nil {
					zerolog.Ctx(ctx).Error().Err(err).Str("job", kv.Key).Msg("Dropped an unreadable queued XMPP message")
					_ = b.host.Store().DeleteKV(ctx, kv.Key)
					continue
				}
				if n, err := strconv.ParseInt(strings.TrimPrefix(kv.Key, inqPrefix), 10, 64); err == nil {
					b.inq.mu.Lock()
					b.inq.last = max(b.inq.last, n)
					b.inq.mu.Unlock()
				}
				b.pushJob(job.Chat, kv.Key)
			}
			if len(kvs) > 0 {
				zerolog.Ctx(ctx).Info().Int("messages", len(kvs)).Msg("Resuming queued XMPP messages")
			}
			return
		}
		if errors.Is(err, appservice.ErrStopping) || ctx.Err() != nil {
			return
		}
		zerolog.Ctx(ctx).Error().Err(err).Msg("Could not load the queued XMPP messages; retrying")
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, inqMaxBackoff)
	}
}
