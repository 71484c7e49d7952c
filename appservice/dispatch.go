package appservice

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"time"

	"github.com/rs/zerolog"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"

	"github.com/switchboard-matrix/switchboard/internal/store"
)

// ErrPermanent marks a handler error that retrying cannot fix (wrap it with %w); the event
// is failed at once and the sender is told.
var ErrPermanent = errors.New("permanent failure")

// Retry is the backoff policy of the dispatcher and the outbox.
type Retry struct {
	Attempts int           // attempts before giving up; at least 1
	Initial  time.Duration // first backoff
	Max      time.Duration // backoff cap
}

// backoff is the wait before attempt n+1 after n failures: exponential with ±20% jitter.
func (r Retry) backoff(n int) time.Duration {
	d := r.Initial
	for i := 1; i < n && d < r.Max; i++ {
		d *= 2
	}
	d = min(d, r.Max)
	jitter := time.Duration(float64(d) * (rand.Float64()*0.4 - 0.2))
	return d + jitter
}

// maxLoaded bounds the events held in memory; the rest wait in the journal.
const maxLoaded = 2048

// Completions are recorded in batches of up to completeBatch events or completeWindow.
const (
	completeBatch  = 4096
	completeWindow = 50 * time.Millisecond
)

// dispatcher hands journaled events to modules, in order per room and rooms in parallel.
//
// Events reach it two ways. The inbox offers the events of each commit, in commit order,
// right after writing them (offer): while the dispatcher is caught up with the journal they
// go straight to the queue, without being read back. Otherwise (at start, after an offer
// found no room, or while stopped) the loader reads the journal in sequence order until it
// has caught up again. Both admit under mu, so an event is admitted once and a room's
// events in order: the loader may only declare itself caught up when no commit finished
// while it read (commits counts them).
type dispatcher struct {
	core  *Core
	queue *keyedQueue[store.InboxEvent]
	wake  chan struct{} // buffered 1
	done  chan int64    // seqs of handled events, recorded in batches by complete
	// maxLoaded bounds the events held in memory (admitted, not finished); the rest wait
	// in the journal. Default maxLoaded; tests lower it.
	maxLoaded int

	mu         sync.Mutex
	inflight   map[int64]bool // guarded by mu; admitted and not finished
	lastError  map[string]string
	work       context.Context // guarded by mu; the handlers' context while running, else nil
	loadedUpTo int64           // guarded by mu; the highest seq admitted
	caughtUp   bool            // guarded by mu; no pending event above loadedUpTo is left in the journal
	commits    uint64          // guarded by mu; offers so far
	// settled holds the admitted events recorded done or failed (guarded by mu); an event
	// that finishes unsettled (its handler stopped with the core) is abandoned: it stays
	// pending, and the handled watermark stays at or below the lowest such seq, abandoned
	// (0: none).
	settled   map[int64]bool
	abandoned int64
}

func newDispatcher(c *Core) *dispatcher {
	d := &dispatcher{
		core:      c,
		wake:      make(chan struct{}, 1),
		done:      make(chan int64, 1024),
		inflight:  make(map[int64]bool),
		settled:   make(map[int64]bool),
		lastError: make(map[string]string),
		maxLoaded: maxLoaded,
	}
	d.queue = newKeyedQueue(c.opts.Workers, d.handle)
	return d
}

func (d *dispatcher) poke() {
	select {
	case d.wake <- struct{}{}:
	default:
	}
}

// offer admits the new events of a commit (in seq order, after every earlier commit's)
// when the dispatcher runs, is caught up and has room; otherwise the loader reads them
// from the journal.
func (d *dispatcher) offer(events []store.InboxEvent) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.commits++
	if d.work == nil || !d.caughtUp || len(d.inflight)+len(events) > d.maxLoaded {
		d.caughtUp = false
		d.poke()
		return
	}
	for _, e := range events {
		// The loader may have read them already: between their commit and this offer.
		if e.Seq > d.loadedUpTo {
			d.admit(e)
		}
	}
}

// admit queues e; d.mu is held, so admissions (and so each room's queue) are in seq order.
func (d *dispatcher) admit(e store.InboxEvent) {
	d.inflight[e.Seq] = true
	d.loadedUpTo = max(d.loadedUpTo, e.Seq)
	d.queue.push(d.work, e.RoomID, e)
}

// run loads pending events until stop ends, then lets in-flight handlers finish (they run
// with work, which the core cancels when the shutdown deadline passes).
func (d *dispatcher) run(stop, work context.Context) {
	completed := make(chan struct{})
	go func() { defer close(completed); d.complete(work) }()
	d.mu.Lock()
	d.work, d.caughtUp = work, false
	d.mu.Unlock()
	tick := time.NewTicker(5 * time.Second)
	defer tick.Stop()
	for {
		d.load(work)
		select {
		case <-stop.Done():
			d.mu.Lock()
			d.work, d.caughtUp = nil, false
			d.queue.close()
			d.mu.Unlock()
			d.queue.wait()
			close(d.done)
			<-completed
			return
		case <-d.wake:
		case <-tick.C:
		}
	}
}

// load reads pending events from the journal into the queue while the dispatcher is not
// caught up and has room.
func (d *dispatcher) load(ctx context.Context) {
	for {
		d.mu.Lock()
		after, room, commits, need := d.loadedUpTo, d.maxLoaded-len(d.inflight), d.commits, !d.caughtUp
		d.mu.Unlock()
		if !need || room <= 0 {
			return
		}
		rows, err := d.core.store.PendingEvents(ctx, after, room)
		if err != nil {
			zerolog.Ctx(ctx).Error().Err(err).Msg("Failed to load pending events")
			return
		}
		d.mu.Lock()
		if d.work == nil {
			d.mu.Unlock()
			return
		}
		for _, r := range rows {
			if r.Seq > d.loadedUpTo {
				d.admit(r)
			}
		}
		// Fewer rows than asked for: the journal had no more when it was read; that is all
		// there is unless a commit finished meanwhile (its offer was turned away).
		if len(rows) < room && d.commits == commits {
			d.caughtUp = true
		}
		d.mu.Unlock()
	}
}

func (d *dispatcher) finish(seq int64) {
	d.mu.Lock()
	delete(d.inflight, seq)
	if !d.settled[seq] && (d.abandoned == 0 || seq < d.abandoned) {
		d.abandoned = seq
	}
	delete(d.settled, seq)
	waiting := !d.caughtUp
	d.mu.Unlock()
	if waiting {
		d.poke()
	}
}

// handle delivers one journaled event, retrying with backoff, and records the outcome.
// When the core stops while the event is unfinished, it returns without recording anything:
// the event stays pending and is delivered after the next start.
func (d *dispatcher) handle(ctx context.Context, row store.InboxEvent) {
	defer d.finish(row.Seq)
	c := d.core
	log := zerolog.Ctx(ctx).With().Int64("seq", row.Seq).Str("event_id", row.EventID).Str("room_id", row.RoomID).Logger()
	if row.Kind == kindToDevice || row.Kind == kindDeviceLists {
		d.handleCrypto(ctx, log, row)
		return
	}
	evt, err := decodeEvent(row)
	if err != nil {
		log.Error().Err(err).Msg("Journaled event cannot be decoded; marking it failed")
		_ = d.markFailed(ctx, row.Seq, err.Error())
		return
	}
	if row.Kind == kindTimeline {
		if cm := c.crypto.Load(); cm != nil && evt.Type == event.StateEncryption {
			if err := cm.NoteEncryption(ctx, evt); err != nil {
				log.Warn().Err(err).Msg("Failed to record the room's encryption")
			}
		}
		if evt.Type == event.EventEncrypted {
			var ok bool
			if evt, ok = d.decrypt(ctx, log, row, evt); !ok {
				return
			}
		}
		if c.refuseUnencrypted(ctx, evt) {
			d.markDone(row.Seq)
			return
		}
	}
	if !d.settleEcho(ctx, log, evt, row.Kind) {
		return // stopping: the event stays pending
	}
	attempts := row.Attempts
	refused := false // the refusals of this event were sent
	for {
		targets, err := c.route(ctx, evt, row.Kind)
		if err == nil {
			targets = c.admitted(ctx, targets, evt, row.Kind, !refused)
			refused = true
		}
		if err == nil && len(targets) == 0 {
			c.metrics.handled.WithLabelValues("", "ignored").Inc()
			d.markDone(row.Seq)
			return
		}
		if err == nil && c.fenced(ctx) {
			return // no longer the leader: the event stays pending for the next one
		}
		if err == nil {
			err = d.deliver(ctx, log, targets, evt, row.Kind)
		}
		if err == nil {
			d.markDone(row.Seq)
			return
		}
		if ctx.Err() != nil {
			return
		}
		if held(err) {
			// A file waits for the virus scanner: not an attempt. The scanner refuses it
			// itself once its hold is over (scan.go).
			log.Warn().Err(err).Msg("A file of the event waits for the virus scanner")
			if !d.queue.pause(ctx, time.Second) {
				return
			}
			continue
		}
		if n, aerr := c.store.RecordEventAttempt(ctx, row.Seq, err.Error()); aerr == nil {
			attempts = n
		} else {
			attempts++ // counted in memory; the journal keeps the event pending
			log.Error().Err(aerr).Msg("Failed to record the attempt")
		}
		if attempts >= c.opts.Retry.Attempts || errors.Is(err, ErrPermanent) {
			log.Error().Err(err).Int("attempts", attempts).Msg("Giving up on event")
			// Report first: the reports are idempotent by event ID, and a crash between the
			// two steps must not leave the sender uninformed.
			d.reportFailure(ctx, targets, evt, row.Kind, err)
			if ferr := d.markFailed(ctx, row.Seq, err.Error()); ferr != nil {
				log.Error().Err(ferr).Msg("Failed to mark event failed")
			}
			return
		}
		wait := c.opts.Retry.backoff(attempts)
		log.Warn().Err(err).Int("attempts", attempts).Dur("retry_in", wait).Msg("Handler failed; retrying")
		if !d.queue.pause(ctx, wait) {
			return
		}
	}
}

// markDone queues the completion of seq for the next batch.
func (d *dispatcher) markDone(seq int64) {
	d.mu.Lock()
	d.settled[seq] = true
	d.mu.Unlock()
	d.done <- seq
}

// markFailed records that seq was given up on.
func (d *dispatcher) markFailed(ctx context.Context, seq int64, errText string) error {
	d.mu.Lock()
	d.settled[seq] = true
	d.mu.Unlock()
	return d.core.store.MarkEventFailed(context.WithoutCancel(ctx), seq, errText)
}

// doneBelow is the handled watermark now: every admitted event below it has finished and
// every event below it in the journal was admitted (the loader and offers admit in seq
// order without gaps), so none below it is pending. d.mu is held.
func (d *dispatcher) doneBelow() int64 {
	w := d.loadedUpTo + 1
	for seq := range d.inflight {
		w = min(w, seq)
	}
	if d.abandoned > 0 {
		w = min(w, d.abandoned)
	}
	return w
}

// complete records completions in batches: one database transaction covers every event
// finished within completeWindow (or completeBatch events). Completions need not be quick:
// one lost in a crash only means that the event is delivered again, which handlers
// tolerate (idempotent by event ID); but each batch is a commit, and on SQLite a commit is
// an fsync that the next homeserver transaction would wait behind.
func (d *dispatcher) complete(ctx context.Context) {
	ctx = context.WithoutCancel(ctx) // record completions even while shutting down
	for seq := range d.done {
		batch := []int64{seq}
		window := time.NewTimer(completeWindow)
	collect:
		for len(batch) < completeBatch {
			select {
			case s, ok := <-d.done:
				if !ok {
					break collect
				}
				batch = append(batch, s)
			case <-window.C:
				break collect
			}
		}
		window.Stop()
		// Events below the watermark are recorded by raising it; only those above it (done
		// while an earlier event is still being handled) get a state row each.
		d.mu.Lock()
		w := d.doneBelow()
		d.mu.Unlock()
		above := slices.DeleteFunc(batch, func(seq int64) bool { return seq < w })
		if err := d.core.store.RecordInboxProgress(ctx, w, above); err != nil {
			zerolog.Ctx(ctx).Error().Err(err).Int("events", len(batch)).Msg("Failed to record handled events; they will be delivered again after a restart")
		}
	}
}

// deliver calls every target module; it fails when any of them fails (a retry calls all of
// them again, which their idempotency by event ID makes harmless).
func (d *dispatcher) deliver(ctx context.Context, log zerolog.Logger, targets []Module, evt *event.Event, kind string) error {
	var errs []error
	for _, m := range targets {
		start := time.Now()
		var err error
		func() {
			defer func() {
				if r := recover(); r != nil {
					err = fmt.Errorf("%w: module %s panicked: %v", ErrPermanent, m.ID(), r)
				}
			}()
			mctx, cancel := context.WithTimeout(log.With().Str("module", m.ID()).Logger().WithContext(withHandledEvent(ctx, evt)), d.core.opts.HandlerTime)
			defer cancel()
			if kind == kindEphemeral {
				if filtered := d.core.filterEphemeral(m, evt); filtered != nil {
					err = m.(EphemeralHandler).HandleEphemeral(mctx, filtered)
				}
			} else {
				err = m.HandleEvent(mctx, evt)
			}
		}()
		series := d.core.metrics.series(m.ID())
		series.handlerTime.Observe(time.Since(start).Seconds())
		if err != nil {
			d.mu.Lock()
			d.lastError[m.ID()] = err.Error()
			d.mu.Unlock()
			series.retry.Inc()
			errs = append(errs, fmt.Errorf("module %s: %w", m.ID(), err))
		} else {
			series.ok.Inc()
		}
	}
	return errors.Join(errs...)
}

// UserError is implemented by errors whose text is meant for the people in the room (for
// example "the recipient's mailbox is full"). Other handler errors are not shown in the
// room: they may name internal hosts or carry remote URLs; they are logged and kept in the
// journal instead.
type UserError interface {
	error
	UserMessage() string
}

// reportFailure tells the sender of a message that it was not delivered: a
// com.beeper.message_send_status event (which clients such as Beeper and Element X show on
// the message) and a short notice in reply, both sent by the bot through the outbox.
func (d *dispatcher) reportFailure(ctx context.Context, targets []Module, evt *event.Event, kind string, cause error) {
	network := "switchboard"
	for _, m := range targets {
		d.core.metrics.handled.WithLabelValues(m.ID(), "failed").Inc()
	}
	if len(targets) > 0 {
		network = targets[0].ID()
	}
	if kind != kindTimeline || evt.StateKey != nil || evt.ID == "" {
		return
	}
	reason := "the " + network + " bridge could not deliver it"
	var ue UserError
	if errors.As(cause, &ue) {
		reason = ue.UserMessage()
	}
	var sender id.UserID
	if len(targets) > 0 {
		sender = d.core.failureSender(ctx, targets[0], evt.RoomID)
	}
	if err := d.core.reportFailure(ctx, network, sender, evt.RoomID, evt.ID, reason); err != nil {
		zerolog.Ctx(ctx).Error().Err(err).Stringer("event_id", evt.ID).Msg("Failed to queue failure report")
	}
}

// failureSender is who reports failures in a module's room: the user the module names
// (see FailureSender), else the bot.
func (c *Core) failureSender(ctx context.Context, m Module, roomID id.RoomID) id.UserID {
	if fs, ok := m.(FailureSender); ok {
		if u := fs.FailureSender(ctx, roomID); u != "" && c.router.moduleForUser(u) == m {
			return u
		}
	}
	return ""
}

// reportFailure queues, as sender (the bot when empty), a com.beeper.message_send_status
// event on the message (clients such as Beeper and Element X show it) and a short notice
// in reply. Both are keyed by the event ID, so reporting twice sends them once.
func (c *Core) reportFailure(ctx context.Context, network string, sender id.UserID, roomID id.RoomID, eventID id.EventID, reason string) error {
	return c.reportFailureKeyed(ctx, network, sender, roomID, eventID, reason, "notice:"+eventID.String())
}

// reportFailureKeyed is reportFailure with the notice keyed by noticeKey (one notice per
// room, say), the status still by the event.
func (c *Core) reportFailureKeyed(ctx context.Context, network string, sender id.UserID, roomID id.RoomID, eventID id.EventID, reason, noticeKey string) error {
	status := statusContent(network, eventID, reason)
	notice := event.MessageEventContent{
		MsgType:   event.MsgNotice,
		Body:      "⚠️ Your message was not delivered: " + reason + ".",
		RelatesTo: &event.RelatesTo{InReplyTo: &event.InReplyTo{EventID: eventID}},
	}
	if sender == "" {
		sender = id.NewUserID(c.reg.SenderLocalpart, c.opts.Domain)
	}
	var errs []error
	for _, msg := range []Message{
		{RoomID: roomID, RemoteID: "status:" + eventID.String(), Type: event.BeeperMessageStatus, Content: status},
		{RoomID: roomID, RemoteID: noticeKey, Content: &notice},
	} {
		msg.Sender = sender
		errs = append(errs, c.enqueue(context.WithoutCancel(ctx), coreModuleID, msg))
	}
	return errors.Join(errs...)
}

// RoomError is a ready-made UserError for modules: Msg is shown in the room (it must not
// contain secrets), Cause is logged; a Permanent error is not retried.
type RoomError struct {
	Msg       string
	Permanent bool
	Cause     error
}

func (e RoomError) Error() string {
	if e.Cause != nil {
		return e.Msg + ": " + e.Cause.Error()
	}
	return e.Msg
}

// UserMessage implements UserError.
func (e RoomError) UserMessage() string { return e.Msg }

// Unwrap returns the cause.
func (e RoomError) Unwrap() error { return e.Cause }

// Is makes a Permanent RoomError match ErrPermanent.
func (e RoomError) Is(target error) bool { return e.Permanent && target == ErrPermanent }

// held reports whether a handler failed only because a file waits for an unreachable virus
// scanner (and not for good).
func held(err error) bool {
	return errors.Is(err, ErrScannerUnavailable) && !errors.Is(err, ErrPermanent)
}
