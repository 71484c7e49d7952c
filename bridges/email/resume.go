package email

import (
	"context"
	"errors"
	"strconv"

	"github.com/switchboard-matrix/switchboard/appservice"
)

// A mail becomes several events, queued one after the other (the mail or a notice, a
// notice about newcomers, its files), and the IMAP cursor moves only after the last. A
// re-read after a crash must therefore tell a mail bridged whole from one whose first
// events are in the room and the rest not yet queued: "posting:<key>" is written before
// a mail's first event is queued and removed after its last, and holds how many of its
// files are queued. While it exists, a re-read goes on where the run before stopped; every
// step is idempotent by RemoteID. A mail whose event is in the room without the marker was
// bridged whole (or sent by the room, or bridged before the marker was kept).

func postingKey(key string) string { return "posting:" + key }

// postRun is one run of bridging a mail.
type postRun struct {
	m   *mailbox
	key string
	// resumed: an earlier run stopped after queueing some of the mail's events; what it
	// recorded before its first event (thread-last) is not written again.
	resumed bool
	marked  bool // the marker exists
	files   int  // the mail's files queued already
	// imagesRefused: inline images were refused by the virus scanner (scan.go).
	imagesRefused bool
}

// beginPost starts bridging the mail key; nil when it was bridged whole before.
func (m *mailbox) beginPost(ctx context.Context, key string) (*postRun, error) {
	st := m.b.host.Store()
	_, _, merr := st.MessageByRemote(ctx, key)
	if merr != nil && !errors.Is(merr, appservice.ErrNotFound) {
		return nil, merr
	}
	raw, err := st.GetKV(ctx, postingKey(key))
	switch {
	case err == nil:
		files, _ := strconv.Atoi(raw)
		return &postRun{m: m, key: key, resumed: true, marked: true, files: files}, nil
	case !errors.Is(err, appservice.ErrNotFound):
		return nil, err
	case merr == nil:
		return nil, nil // bridged before, or a mail the room sent
	}
	return &postRun{m: m, key: key}, nil
}

// enqueue queues one of the mail's events, writing the marker before the first. A
// resumed run passes over an event in the room already (its outbox row, which would
// recognise it, may have been pruned); in a new run none is, as the outbox sends a room's
// messages in order and the mail's first event is not in the room.
func (r *postRun) enqueue(ctx context.Context, msg appservice.Message) error {
	st := r.m.b.host.Store()
	if r.resumed {
		if _, _, err := st.MessageByRemote(ctx, msg.RemoteID); err == nil {
			return nil
		} else if !errors.Is(err, appservice.ErrNotFound) {
			return err
		}
	}
	if !r.marked {
		if err := st.PutKV(ctx, postingKey(r.key), strconv.Itoa(r.files)); err != nil {
			return err
		}
		r.marked = true
	}
	return r.m.b.host.Enqueue(ctx, msg)
}

// fileQueued records that the mail's first n files are queued.
func (r *postRun) fileQueued(ctx context.Context, n int) error {
	r.files, r.marked = n, true
	return r.m.b.host.Store().PutKV(ctx, postingKey(r.key), strconv.Itoa(n))
}

// finish records that every event of the mail is queued.
func (r *postRun) finish(ctx context.Context) error {
	if r.imagesRefused {
		if err := r.m.b.host.Store().DeleteKV(ctx, inlineRefusedKey(r.key)); err != nil {
			return err
		}
	}
	if !r.marked {
		return nil
	}
	return r.m.b.host.Store().DeleteKV(ctx, postingKey(r.key))
}
