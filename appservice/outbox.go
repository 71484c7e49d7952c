package appservice

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/rs/zerolog"
	"maunium.net/go/mautrix"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"

	"github.com/switchboard-matrix/switchboard/internal/store"
)

// coreModuleID owns the outbox rows the core itself sends (failure reports).
const coreModuleID = "core"

// TxnIDFor derives the client-server transaction ID of a module's remote message. The same
// (module, remoteID) always gives the same ID, so a send repeated after a crash is
// deduplicated by the homeserver instead of becoming a second event.
func TxnIDFor(module, remoteID string) string {
	sum := sha256.Sum256([]byte(module + "\x00" + remoteID))
	return "sb_" + base64.RawURLEncoding.EncodeToString(sum[:24])
}

// sendResult is what a waiter of Host.Send learns.
type sendResult struct {
	eventID id.EventID
	err     error
}

// outbox sends module messages to Matrix: recorded first, then sent in order per room with
// a transaction ID derived from the remote ID, retried with backoff.
type outbox struct {
	core  *Core
	queue *keyedQueue[store.OutboxMessage]
	wake  chan struct{}

	mu       sync.Mutex
	inflight map[int64]string              // guarded by mu; seq -> module
	waiters  map[int64][]chan<- sendResult // guarded by mu
	stopped  bool                          // guarded by mu; the send loop has ended
}

func newOutbox(c *Core) *outbox {
	o := &outbox{
		core:     c,
		wake:     make(chan struct{}, 1),
		inflight: make(map[int64]string),
		waiters:  make(map[int64][]chan<- sendResult),
	}
	o.queue = newKeyedQueue(c.opts.Workers, o.send)
	return o
}

func (o *outbox) poke() {
	select {
	case o.wake <- struct{}{}:
	default:
	}
}

// enqueue records msg durably; it returns the stored row (which may have been sent already
// when the same remote ID was enqueued before).
func (c *Core) enqueue(ctx context.Context, module string, msg Message) error {
	_, err := c.enqueueRow(ctx, module, msg)
	return err
}

func (c *Core) enqueueRow(ctx context.Context, module string, msg Message) (store.OutboxMessage, error) {
	switch {
	case msg.RoomID == "":
		return store.OutboxMessage{}, errors.New("appservice: message has no room ID")
	case msg.Sender == "":
		return store.OutboxMessage{}, errors.New("appservice: message has no sender")
	case msg.RemoteID == "":
		return store.OutboxMessage{}, errors.New("appservice: message has no remote ID")
	case msg.Content == nil:
		return store.OutboxMessage{}, errors.New("appservice: message has no content")
	}
	if msg.Type.Type == "" {
		msg.Type = event.EventMessage
	}
	txnID := TxnIDFor(module, msg.RemoteID)
	content, err := contentWithTxnID(msg.Content, txnID)
	if err != nil {
		return store.OutboxMessage{}, fmt.Errorf("appservice: failed to encode message %s: %w", msg.RemoteID, err)
	}
	var ts int64
	if !msg.Timestamp.IsZero() {
		ts = msg.Timestamp.UnixMilli()
	}
	row, existing, err := c.store.EnqueueOutbox(ctx, store.OutboxMessage{
		Module: module, RemoteID: msg.RemoteID, RoomID: msg.RoomID.String(),
		Sender: msg.Sender.String(), EventType: msg.Type.Type, Content: content, TS: ts,
		TxnID: txnID, State: "pending", CausedBy: msg.CausedBy.String(),
	})
	if err != nil {
		return store.OutboxMessage{}, fmt.Errorf("appservice: failed to queue message %s: %w", msg.RemoteID, err)
	}
	if !existing {
		c.outbox.poke()
	}
	return row, nil
}

// sendAndWait enqueues msg and waits for its event ID.
func (c *Core) sendAndWait(ctx context.Context, module string, msg Message) (id.EventID, error) {
	ch := make(chan sendResult, 1)
	row, err := c.enqueueRow(ctx, module, msg)
	if err != nil {
		return "", err
	}
	switch row.State {
	case "sent":
		return id.EventID(row.EventID), nil
	case "failed":
		return "", fmt.Errorf("%w: %s", ErrSendFailed, row.LastError)
	}
	o := c.outbox
	o.mu.Lock()
	if o.stopped {
		o.mu.Unlock()
		return "", fmt.Errorf("message %s is queued but not sent yet: %w", msg.RemoteID, ErrStopping)
	}
	o.waiters[row.Seq] = append(o.waiters[row.Seq], ch)
	o.mu.Unlock()
	// The row may have been sent between enqueue and registering the waiter.
	if cur, err := c.store.GetOutbox(ctx, module, msg.RemoteID); err == nil && cur.State != "pending" {
		o.notify(cur.Seq, resultOf(cur))
	}
	select {
	case res := <-ch:
		return res.eventID, res.err
	case <-ctx.Done():
		return "", fmt.Errorf("appservice: message %s is queued but not sent yet: %w", msg.RemoteID, ctx.Err())
	}
}

func resultOf(row store.OutboxMessage) sendResult {
	if row.State == "sent" {
		return sendResult{eventID: id.EventID(row.EventID)}
	}
	return sendResult{err: fmt.Errorf("%w: %s", ErrSendFailed, row.LastError)}
}

// stop ends every wait for a send: what is unsent stays queued for the next start.
func (o *outbox) stop() {
	o.mu.Lock()
	o.stopped = true
	waiters := o.waiters
	o.waiters = map[int64][]chan<- sendResult{}
	o.mu.Unlock()
	for _, chans := range waiters {
		for _, ch := range chans {
			ch <- sendResult{err: fmt.Errorf("queued but not sent yet: %w", ErrStopping)}
		}
	}
}

func (o *outbox) notify(seq int64, res sendResult) {
	o.mu.Lock()
	chans := o.waiters[seq]
	delete(o.waiters, seq)
	o.mu.Unlock()
	for _, ch := range chans {
		ch <- res
	}
}

// run loads pending rows until stop ends (see dispatcher.run).
func (o *outbox) run(stop, work context.Context) {
	pump(stop, work, o.queue, o.wake, "the outbox", o.room, o.core.store.PendingOutboxAfter,
		func(r store.OutboxMessage) (int64, string) {
			o.mu.Lock()
			o.inflight[r.Seq] = r.Module
			o.mu.Unlock()
			return r.Seq, r.RoomID
		})
	o.stop()
}

// room says how many more rows may be loaded into memory.
func (o *outbox) room() int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return maxLoaded - len(o.inflight)
}

// depthByModule counts loaded, unsent messages per module.
func (o *outbox) depthByModule() map[string]int {
	o.mu.Lock()
	defer o.mu.Unlock()
	out := map[string]int{}
	for _, m := range o.inflight {
		out[m]++
	}
	return out
}

// send sends one outbox row, retrying with backoff, and records the outcome.
//
// Every attempt is recorded before the request is made. A row whose earlier attempt may
// have reached the homeserver (a crash, a timeout, a dropped connection) is "in doubt":
// before sending it again the outbox looks for it in the room, by the transaction ID it
// carries in its content. The homeserver's own transaction-ID deduplication covers the
// common case; the lookup covers homeservers whose deduplication is in memory only or does
// not hold for a request still in flight (Dendrite), which would otherwise show the user
// the message twice.
func (o *outbox) send(ctx context.Context, row store.OutboxMessage) {
	c := o.core
	defer func() {
		o.mu.Lock()
		delete(o.inflight, row.Seq)
		o.mu.Unlock()
		o.poke() // room for more rows
	}()
	log := zerolog.Ctx(ctx).With().Str("module", row.Module).Str("remote_id", row.RemoteID).
		Str("room_id", row.RoomID).Logger()
	attempts, lastErr := row.Attempts, row.LastError
	inDoubt := row.Attempts > 0
	// Give a request of the previous process time to land before looking for it.
	if inDoubt && !o.queue.pause(ctx, time.Until(c.startedAt.Add(c.opts.InDoubtSettle))) {
		return
	}
	lookupFailures := 0
	for {
		if c.fenced(ctx) {
			return // no longer the leader: the row stays for the next one
		}
		var wait time.Duration
		if inDoubt {
			// The echo of an earlier attempt (settleEcho) or a module's lookup (settleMiss)
			// may have recorded the row meanwhile.
			if cur, err := c.store.GetOutbox(ctx, row.Module, row.RemoteID); err == nil && cur.State == store.OutboxSent {
				log.Info().Str("event_id", cur.EventID).Msg("An earlier attempt had been sent (recorded from its echo); not sending again")
				c.metrics.outboxSent.WithLabelValues(row.Module, "sent").Inc()
				o.notify(row.Seq, sendResult{eventID: id.EventID(cur.EventID)})
				return
			}
			eventID, found, err := c.findSent(ctx, row)
			switch {
			case found:
				log.Info().Stringer("event_id", eventID).Msg("An earlier attempt had been sent; not sending again")
				o.sent(ctx, log, row, eventID)
				return
			case err != nil && lookupFailures < 3:
				lookupFailures++
				wait = c.opts.Retry.backoff(lookupFailures)
				log.Warn().Err(err).Dur("retry_in", wait).Msg("Could not check whether an earlier attempt was sent")
			case err != nil:
				log.Warn().Err(err).Msg("Could not check whether an earlier attempt was sent; sending again")
			}
		}
		if wait == 0 {
			if n, err := c.store.RecordOutboxAttempt(ctx, row.Seq, lastErr); err != nil {
				// Never send what could not be recorded: after a crash it would not be
				// known to be in doubt.
				wait = c.opts.Retry.backoff(attempts + 1)
				log.Error().Err(err).Dur("retry_in", wait).Msg("Failed to record the attempt; not sending yet")
			} else {
				attempts = n
			}
		}
		if wait == 0 {
			log.Debug().Int("attempt", attempts).Bool("in_doubt", inDoubt).Msg("Sending to Matrix")
			eventID, err := c.sendRow(ctx, row)
			if err == nil {
				log.Debug().Stringer("event_id", eventID).Msg("Sent to Matrix")
				o.sent(ctx, log, row, eventID)
				return
			}
			if ctx.Err() != nil {
				return
			}
			inDoubt, lastErr = !answered(err), err.Error()
			if attempts >= c.opts.Retry.Attempts || isPermanentSendError(err) {
				log.Error().Err(err).Int("attempts", attempts).Msg("Giving up sending message to Matrix")
				// The room's notice is queued before the row is marked failed: after a crash
				// in between, the row is sent (and refused) again and the notice, keyed by
				// the row, is still queued once.
				if nerr := c.reportLost(context.WithoutCancel(ctx), row, attempts, err); nerr != nil {
					wait = c.opts.Retry.backoff(attempts)
					log.Error().Err(nerr).Dur("retry_in", wait).Msg("Failed to queue the notice about the lost message; not giving up yet")
					if !o.queue.pause(ctx, wait) {
						return
					}
					continue
				}
				_ = c.store.MarkOutboxFailed(context.WithoutCancel(ctx), row.Seq, lastErr)
				c.metrics.outboxSent.WithLabelValues(row.Module, "failed").Inc()
				res := sendResult{err: fmt.Errorf("%w: %w", ErrSendFailed, err)}
				o.notify(row.Seq, res)
				c.reportSendFailure(ctx, row, res.err)
				return
			}
			c.metrics.outboxSent.WithLabelValues(row.Module, "retry").Inc()
			wait = c.opts.Retry.backoff(attempts)
			var rateLimited mautrix.HTTPError
			if errors.As(err, &rateLimited) && rateLimited.RespError != nil && rateLimited.RespError.ErrCode == mautrix.MLimitExceeded.ErrCode {
				if ms, ok := rateLimited.RespError.ExtraData["retry_after_ms"].(float64); ok && ms > 0 {
					wait = max(wait, time.Duration(ms)*time.Millisecond)
				}
			}
			if inDoubt {
				// The request may still be running at the homeserver: let it land first.
				wait = max(wait, c.opts.InDoubtSettle)
			}
			log.Warn().Err(err).Int("attempts", attempts).Dur("retry_in", wait).Msg("Send to Matrix failed; retrying")
		}
		if !o.queue.pause(ctx, wait) {
			return
		}
	}
}

func (o *outbox) sent(ctx context.Context, log zerolog.Logger, row store.OutboxMessage, eventID id.EventID) {
	c := o.core
	if err := c.store.MarkOutboxSent(context.WithoutCancel(ctx), row.Seq, eventID.String()); err != nil {
		// Sent but not recorded: the row stays in doubt and is looked up before a resend.
		log.Error().Err(err).Msg("Failed to record sent message")
	}
	c.metrics.outboxSent.WithLabelValues(row.Module, "sent").Inc()
	o.notify(row.Seq, sendResult{eventID: eventID})
}

// contentWithTxnID encodes content with the transaction ID under txnMarkerKey, once, when
// the message is recorded: every attempt then sends the same bytes.
func contentWithTxnID(content any, txnID string) ([]byte, error) {
	raw, err := json.Marshal(content)
	if err != nil {
		return nil, err
	}
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(raw, &fields); err != nil || fields == nil {
		return nil, errors.New("content is not a JSON object")
	}
	fields[txnMarkerKey], _ = json.Marshal(txnID)
	return json.Marshal(fields)
}

// txnMarkerKey is the content key that carries a message's transaction ID, so that the
// outbox can recognise its own earlier attempt in the room.
const txnMarkerKey = "net.switchboard.txn_id"

func (c *Core) sendRow(ctx context.Context, row store.OutboxMessage) (id.EventID, error) {
	ctx = requestContext(ctx)
	intent := c.as.Intent(id.UserID(row.Sender))
	if err := ensureRegistered(ctx, intent); err != nil {
		return "", requestError(err)
	}
	var content any = json.RawMessage(row.Content) // carries the transaction ID since enqueueRow
	evtType := event.Type{Type: row.EventType, Class: event.MessageEventType}
	if cm := c.crypto.Load(); cm != nil && !sendsPlaintext(row.EventType) {
		// The sender must be in the room to list its members.
		if err := intent.EnsureJoined(ctx, id.RoomID(row.RoomID)); err != nil {
			return "", requestError(err)
		}
		// Encrypted anew on every attempt: the session state is committed before the
		// request, so no attempt reuses a Megolm index. The transaction ID stays the same,
		// and the marker inside lets findSent recognise the event by decrypting it.
		encrypted, err := cm.Encrypt(ctx, id.UserID(row.Sender), id.RoomID(row.RoomID), evtType, row.Content)
		if err != nil {
			return "", fmt.Errorf("failed to encrypt: %w", err)
		}
		if encrypted != nil {
			content, evtType = encrypted, event.EventEncrypted
		}
	}
	// No retries inside the HTTP client: a retry of its own would bypass the record of the
	// attempt and the in-doubt lookup.
	resp, err := intent.SendMessageEvent(mautrix.WithMaxRetries(ctx, 0), id.RoomID(row.RoomID), evtType,
		content, mautrix.ReqSendEvent{TransactionID: row.TxnID, Timestamp: row.TS})
	if err != nil {
		return "", requestError(err)
	}
	return resp.EventID, nil
}

// findSent looks back through the room, newest first, for an event from the row's sender
// that carries the row's transaction ID: at most findSentPages pages, and not past events
// that arrived more than findSentHorizon ago. (Server-side /messages filters are not used: Dendrite
// ignores sender filters.)
func (c *Core) findSent(ctx context.Context, row store.OutboxMessage) (id.EventID, bool, error) {
	cli := c.as.Client(id.UserID(row.Sender))
	from, scanned := "", 0
	defer func() {
		zerolog.Ctx(ctx).Debug().Str("remote_id", row.RemoteID).Int("scanned", scanned).Msg("Looked for an earlier attempt")
	}()
	for page := 0; page < findSentPages; page++ {
		resp, err := cli.Messages(requestContext(ctx), id.RoomID(row.RoomID), from, "", mautrix.DirectionBackward, nil, 100)
		if err != nil {
			return "", false, requestError(err)
		}
		if len(resp.Chunk) == 0 {
			break
		}
		scanned += len(resp.Chunk)
		for _, e := range resp.Chunk {
			if e.Sender != id.UserID(row.Sender) {
				continue
			}
			e.RoomID = id.RoomID(row.RoomID)
			if txn := c.txnMarker(ctx, e); txn == row.TxnID {
				return e.ID, true, nil
			}
		}
		// Stop at events older than the horizon by their age on this homeserver (unsigned.age),
		// not by origin_server_ts, which "ts massaging" of bridged history sets in the past.
		if last := resp.Chunk[len(resp.Chunk)-1]; resp.End == "" || last.Unsigned.Age > findSentHorizon.Milliseconds() {
			break
		}
		from = resp.End
	}
	return "", false, nil
}

const (
	findSentPages   = 30
	findSentHorizon = time.Hour
)

// answered reports whether the homeserver answered the request with an HTTP status: then
// it did not create the event. Transport errors leave the outcome in doubt.
func answered(err error) bool {
	var httpErr mautrix.HTTPError
	return errors.As(err, &httpErr) && httpErr.Response != nil
}

// isPermanentSendError reports errors a retry cannot fix: the homeserver rejected the
// request itself (bad JSON, too large, unknown room).
func isPermanentSendError(err error) bool {
	var httpErr mautrix.HTTPError
	if !errors.As(err, &httpErr) {
		return false
	}
	if httpErr.Response != nil && httpErr.Response.StatusCode == http.StatusRequestEntityTooLarge {
		return true // whatever the error code (Dendrite says M_BAD_JSON)
	}
	if httpErr.RespError == nil {
		return false
	}
	switch httpErr.RespError.ErrCode {
	case mautrix.MBadJSON.ErrCode, mautrix.MNotJSON.ErrCode, mautrix.MTooLarge.ErrCode, "M_INVALID_PARAM":
		return true
	}
	return false
}

// reportSendFailure tells the module that owns the message, when it implements
// SendFailureHandler, so that it can tell the remote sender.
func (c *Core) reportSendFailure(ctx context.Context, row store.OutboxMessage, err error) {
	m, ok := c.modules[row.Module]
	if !ok {
		return
	}
	if h, ok := m.(SendFailureHandler); ok {
		h.HandleSendFailure(ctx, row.RemoteID, id.RoomID(row.RoomID), err)
	}
}
