// Package meeting tracks Jitsi meetings from snapshots of their participants: when a
// conference gets its first participant a meeting starts, every different snapshot is a
// change, and when the last participant has left and nobody came back within a grace period
// the meeting ends, at the time the last one left. A quick rejoin (a dropped connection, a
// reload) therefore neither ends nor restarts the meeting.
//
// The [Tracker] is fed by the MUC watcher (complete occupant lists) and reports [Event]s to
// one emit function. It does no I/O and knows nothing of Matrix; time comes from a [Clock]
// so that tests control it.
package meeting

import (
	"slices"
	"strings"
	"sync"
	"time"
)

// Participant is one person in a conference.
type Participant struct {
	Nick   string    // MUC nick, unique in the conference; the participant's key
	Name   string    // display name
	UserID string    // Matrix user ID when known
	Since  time.Time // when the tracker first saw them in this meeting (ignored on input)
}

// Kind says what happened to a meeting.
type Kind int

// Kinds of events.
const (
	Started Kind = iota + 1 // the first participant arrived; always followed by Changed
	Changed                 // the participants are different (possibly none, while the grace period runs)
	Ended                   // nobody came back within the grace period, or the conference was forgotten
)

// String returns the kind's name.
func (k Kind) String() string {
	switch k {
	case Started:
		return "started"
	case Changed:
		return "changed"
	case Ended:
		return "ended"
	}
	return "unknown"
}

// Event is something that happened to a meeting.
type Event struct {
	Kind         Kind
	Conference   string
	StartedAt    time.Time     // set in every event
	EndedAt      time.Time     // Ended only: when the last participant left (or when Forget ended it)
	Participants []Participant // Started and Changed: everyone present, by Since then Nick; owned by the receiver
}

// Clock is the time source of a [Tracker].
type Clock interface {
	Now() time.Time
	// AfterFunc calls f in its own goroutine once d has passed; stop cancels that and reports
	// whether it did (false: f has run or is running).
	AfterFunc(d time.Duration, f func()) (stop func() bool)
}

type realClock struct{}

func (realClock) Now() time.Time { return time.Now() }

func (realClock) AfterFunc(d time.Duration, f func()) func() bool { return time.AfterFunc(d, f).Stop }

// meeting is the state of one conference; guarded by Tracker.mu.
type meeting struct {
	startedAt    time.Time
	participants []Participant // nil after Restore until the first Update
	lastLeave    time.Time     // when the conference became empty; valid while endStop != nil
	endStop      func() bool   // cancels the scheduled end; nil when none
	endSeq       uint64        // identifies the scheduled end, so a stale timer does nothing
}

// Tracker follows the meetings of any number of conferences. Its methods may be called
// from any goroutine.
//
// emit gets the events of all conferences in the order they happened (so in order per
// conference), one call at a time and never with the tracker's lock held, so it may call
// back into the tracker. Events are queued and delivered by whichever goroutine is already
// delivering: usually emit runs in the goroutine whose call caused the event, before that
// call returns; when another goroutine (a concurrent call, or the timer that ends a meeting)
// is delivering at that moment, it delivers this event too, and the call returns earlier.
type Tracker struct {
	grace time.Duration // immutable
	clock Clock         // immutable
	emit  func(Event)   // immutable

	mu       sync.Mutex
	meetings map[string]*meeting // guarded by mu; only active meetings
	queue    []Event             // guarded by mu; events not yet given to emit
	draining bool                // guarded by mu; some goroutine is delivering the queue
	seq      uint64              // guarded by mu; last endSeq handed out
	closed   bool                // guarded by mu
}

// NewTracker returns a tracker that ends a meeting grace after its last participant left
// (grace <= 0: at once). clock nil means real time.
func NewTracker(grace time.Duration, clock Clock, emit func(Event)) *Tracker {
	if clock == nil {
		clock = realClock{}
	}
	if emit == nil {
		emit = func(Event) {}
	}
	return &Tracker{grace: grace, clock: clock, emit: emit, meetings: map[string]*meeting{}}
}

// Restore declares a meeting that was active before a restart, started at startedAt. No
// event is emitted; the first [Tracker.Update] then says how it goes on: non-empty is a
// Changed (no Started), empty is a Changed with nobody and schedules the end (EndedAt is
// then the time of that Update, the last leave being unknown). A conference already
// tracked is left alone.
func (t *Tracker) Restore(conf string, startedAt time.Time) {
	t.mu.Lock()
	if t.closed || t.meetings[conf] != nil {
		t.mu.Unlock()
		return
	}
	t.meetings[conf] = &meeting{startedAt: startedAt}
	t.mu.Unlock()
}

// Update gives the complete list of a conference's participants. Since is ignored: it is
// kept from when the tracker first saw a nick in the meeting.
func (t *Tracker) Update(conf string, ps []Participant) {
	t.mu.Lock()
	if t.closed {
		t.mu.Unlock()
		return
	}
	now := t.clock.Now()
	m := t.meetings[conf]
	switch {
	case len(ps) == 0 && m == nil:
		// nothing is going on
	case len(ps) == 0:
		if m.participants == nil || len(m.participants) > 0 { // unknown (restored) or people left
			m.participants = []Participant{}
			t.enqueue(conf, m, Changed)
		}
		if m.endStop == nil {
			t.scheduleEnd(conf, m, now)
		}
	default:
		started := m == nil
		if started {
			m = &meeting{startedAt: now}
			t.meetings[conf] = m
		}
		if m.endStop != nil {
			m.endStop()
			m.endStop = nil
		}
		next := merge(m.participants, ps, now)
		if started {
			m.participants = next
			t.enqueue(conf, m, Started)
			t.enqueue(conf, m, Changed)
		} else if m.participants == nil || !same(m.participants, next) {
			m.participants = next
			t.enqueue(conf, m, Changed)
		}
	}
	t.drain()
}

// Forget ends a conference's meeting at once (its widget was removed): Ended is emitted
// when one was active, with EndedAt the time the last participant left if the conference
// is empty, else now.
func (t *Tracker) Forget(conf string) {
	t.mu.Lock()
	m := t.meetings[conf]
	if t.closed || m == nil {
		t.mu.Unlock()
		return
	}
	endedAt := t.clock.Now()
	if m.endStop != nil {
		m.endStop()
		endedAt = m.lastLeave
	}
	t.end(conf, m, endedAt)
	t.drain()
}

// Close cancels every scheduled end; afterwards the tracker ignores all calls and emits
// nothing more. Meetings still active are not ended: a later [Tracker.Restore] picks them up.
func (t *Tracker) Close() {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.closed = true
	for _, m := range t.meetings {
		if m.endStop != nil {
			m.endStop()
		}
	}
	t.meetings = map[string]*meeting{}
	t.queue = nil
}

// scheduleEnd ends m grace after now unless someone comes back. Called with mu held.
func (t *Tracker) scheduleEnd(conf string, m *meeting, now time.Time) {
	m.lastLeave = now
	if t.grace <= 0 {
		t.end(conf, m, now)
		return
	}
	t.seq++
	seq := t.seq
	m.endSeq = seq
	m.endStop = t.clock.AfterFunc(t.grace, func() { t.graceOver(conf, seq) })
}

// graceOver is the timer of a scheduled end.
func (t *Tracker) graceOver(conf string, seq uint64) {
	t.mu.Lock()
	m := t.meetings[conf]
	if t.closed || m == nil || m.endStop == nil || m.endSeq != seq {
		t.mu.Unlock() // cancelled after the timer fired
		return
	}
	t.end(conf, m, m.lastLeave)
	t.drain()
}

// end forgets m and queues its Ended. Called with mu held.
func (t *Tracker) end(conf string, m *meeting, endedAt time.Time) {
	delete(t.meetings, conf)
	m.endStop = nil
	t.queue = append(t.queue, Event{Kind: Ended, Conference: conf, StartedAt: m.startedAt, EndedAt: endedAt})
}

// enqueue queues an event about m. Called with mu held.
func (t *Tracker) enqueue(conf string, m *meeting, k Kind) {
	t.queue = append(t.queue, Event{Kind: k, Conference: conf, StartedAt: m.startedAt, Participants: slices.Clone(m.participants)})
}

// drain delivers the queue unless another goroutine is doing it. Called with mu held;
// returns with mu released.
func (t *Tracker) drain() {
	if t.draining {
		t.mu.Unlock()
		return
	}
	t.draining = true
	for len(t.queue) > 0 {
		ev := t.queue[0]
		t.queue[0] = Event{}
		t.queue = t.queue[1:]
		t.mu.Unlock()
		t.deliver(ev)
		t.mu.Lock()
	}
	t.draining = false
	t.queue = nil
	t.mu.Unlock()
}

// deliver calls emit; a panicking emit does not leave the tracker stuck draining.
func (t *Tracker) deliver(ev Event) {
	ok := false
	defer func() {
		if !ok {
			t.mu.Lock()
			t.draining = false
			t.mu.Unlock()
		}
	}()
	t.emit(ev)
	ok = true
}

// merge returns the new participant list: ps with Since kept from prev (by nick) or now,
// sorted by Since then Nick. A nick listed twice counts once (the last entry wins).
func merge(prev, ps []Participant, now time.Time) []Participant {
	since := make(map[string]time.Time, len(prev))
	for _, p := range prev {
		since[p.Nick] = p.Since
	}
	byNick := make(map[string]int, len(ps))
	out := make([]Participant, 0, len(ps))
	for _, p := range ps {
		if s, ok := since[p.Nick]; ok {
			p.Since = s
		} else {
			p.Since = now
		}
		if i, ok := byNick[p.Nick]; ok {
			out[i] = p
			continue
		}
		byNick[p.Nick] = len(out)
		out = append(out, p)
	}
	slices.SortFunc(out, func(a, b Participant) int {
		if c := a.Since.Compare(b.Since); c != 0 {
			return c
		}
		return strings.Compare(a.Nick, b.Nick)
	})
	return out
}

// same reports whether two merged lists have the same people under the same names.
func same(a, b []Participant) bool {
	return slices.EqualFunc(a, b, func(x, y Participant) bool {
		return x.Nick == y.Nick && x.Name == y.Name && x.UserID == y.UserID && x.Since.Equal(y.Since)
	})
}
