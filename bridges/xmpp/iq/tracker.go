package iq

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"sync"

	"mellium.im/xmpp/jid"
)

// Errors of Pending.Wait.
var (
	// ErrRemote marks an answer of type error; the *Error in the chain has the condition.
	ErrRemote = errors.New("iq: remote error")
	// ErrCanceled marks a request whose Pending was cancelled, or replaced by a later
	// Expect with the same id.
	ErrCanceled = errors.New("iq: request cancelled")
)

// Tracker correlates our iq requests with their answers. Its methods are safe for
// concurrent use. The zero value is not usable; use NewTracker.
type Tracker struct {
	mu      sync.Mutex
	pending map[string]*Pending // by id; guarded by mu
}

// NewTracker returns an empty Tracker.
func NewTracker() *Tracker {
	return &Tracker{pending: make(map[string]*Pending)}
}

// NewID returns a random id, unique with overwhelming probability.
func (t *Tracker) NewID() string { return rand.Text() }

// Pending is one request waiting for its answer.
type Pending struct {
	t    *Tracker
	id   string  // immutable
	to   jid.JID // immutable
	done chan struct{}
	q    *IQ   // set before done is closed
	err  error // set before done is closed
}

// Expect registers a pending request with id, sent to to. Only an answer (a result or
// error iq) with that id whose from equals to, compared as full JIDs, is accepted. A
// second Expect with the same id replaces the first, whose Wait returns ErrCanceled.
// Register before sending, so that a fast answer is not missed.
func (t *Tracker) Expect(id string, to jid.JID) *Pending {
	p := &Pending{t: t, id: id, to: to, done: make(chan struct{})}
	t.mu.Lock()
	defer t.mu.Unlock()
	if old := t.pending[id]; old != nil {
		old.finishLocked(nil, fmt.Errorf("%w: iq %q replaced by a newer request", ErrCanceled, id))
	}
	t.pending[id] = p
	return p
}

// Deliver hands q, an inbound iq, to the request it answers. It reports whether q
// answered a pending request; if not, the caller handles q itself (a get or set, or an
// answer nobody waits for, which it may drop).
func (t *Tracker) Deliver(q *IQ) bool {
	if q == nil || (q.Type != TypeResult && q.Type != TypeError) {
		return false
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	p := t.pending[q.ID]
	if p == nil || !q.From.Equal(p.to) {
		return false
	}
	var err error
	if q.Type == TypeError {
		e := q.Error
		if e == nil {
			e = &Error{Condition: "undefined-condition"}
		}
		err = fmt.Errorf("iq: request %q to %s: %w", p.id, p.to, e)
	}
	p.finishLocked(q, err)
	return true
}

// Wait blocks until the answer arrives, the Pending is cancelled or ctx ends. An answer
// of type error returns the IQ and an error wrapping ErrRemote and the *Error. When ctx
// ends first, the request is forgotten: a late answer is not delivered.
func (p *Pending) Wait(ctx context.Context) (*IQ, error) {
	select {
	case <-p.done:
		return p.q, p.err
	case <-ctx.Done():
		p.t.mu.Lock()
		select {
		case <-p.done: // the answer won the race
			p.t.mu.Unlock()
			return p.q, p.err
		default:
		}
		p.finishLocked(nil, fmt.Errorf("iq: waiting for an answer to %q from %s: %w", p.id, p.to, ctx.Err()))
		p.t.mu.Unlock()
		return nil, p.err
	}
}

// Cancel forgets the request; Wait returns ErrCanceled unless the answer came first.
// It may be called more than once and after Wait.
func (p *Pending) Cancel() {
	p.t.mu.Lock()
	defer p.t.mu.Unlock()
	p.finishLocked(nil, fmt.Errorf("%w: iq %q", ErrCanceled, p.id))
}

// finishLocked completes p once and removes it from the tracker. t.mu must be held.
func (p *Pending) finishLocked(q *IQ, err error) {
	select {
	case <-p.done:
		return
	default:
	}
	p.q, p.err = q, err
	close(p.done)
	if p.t.pending[p.id] == p {
		delete(p.t.pending, p.id)
	}
}
