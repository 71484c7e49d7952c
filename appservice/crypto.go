package appservice

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/rs/zerolog"
	"maunium.net/go/mautrix"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"

	"github.com/switchboard-matrix/switchboard/appservice/e2ee"
	"github.com/switchboard-matrix/switchboard/internal/store"
)

// This file joins the e2ee package to the core: the manager's start, the journal's
// to-device events and device-list changes, decryption before routing, and the notices for
// encrypted events the core cannot read. Encryption of the outbox's messages is in
// outbox.go (sendRow).

// kindDeviceLists journals a transaction's device-list changes, so that none is lost in a
// crash between the acknowledgement and the key fetch.
const kindDeviceLists = "devicelists"

// startEncryption starts the e2ee manager when encryption is enabled. A homeserver without
// appservice devices (MSC4190) leaves encryption off with an error in the log; any other
// failure fails the start.
func (c *Core) startEncryption(ctx context.Context) error {
	enc := c.opts.Encryption
	if !enc.Enabled {
		c.log.Info().Msg("End-to-end encryption is off (encryption.enabled); encrypted events in bridged rooms are answered with a notice")
		return nil
	}
	// The crypto store gets a pool of its own (store.Pool says why).
	db, err := c.store.Pool()
	if err != nil {
		return fmt.Errorf("appservice: %w", err)
	}
	m, err := e2ee.New(e2ee.Options{
		AS: c.as, DB: db, Dialect: string(c.store.Dialect()), PickleKey: enc.PickleKey,
		RotationPeriod: enc.RotationPeriod, RotationMessages: enc.RotationMessages,
	})
	if err != nil {
		return fmt.Errorf("appservice: %w", err)
	}
	sctx, cancel := context.WithTimeout(requestContext(c.log.WithContext(ctx)), 2*time.Minute)
	defer cancel()
	if err := m.Start(sctx); err != nil {
		if errors.Is(err, e2ee.ErrUnsupported) {
			c.encryptionOff.Store(true)
			c.log.Error().Err(err).Msg("Encryption is enabled in the config, but this homeserver cannot create devices for appservice users " +
				"(it lacks MSC4190, e.g. Dendrite v0.13.8): running WITHOUT encryption. Encrypted events in bridged rooms are answered with a notice; " +
				"use Synapse with the registration keys io.element.msc4190 and org.matrix.msc3202 (see docs/encryption.md)")
			return nil
		}
		return fmt.Errorf("appservice: failed to start encryption: %w", err)
	}
	c.crypto.Store(m)
	c.log.Info().Msg("End-to-end encryption is on: each Switchboard user acting in an encrypted room has its own cross-signed device")
	return nil
}

// EncryptionActive reports whether the core encrypts and decrypts (enabled and supported).
func (c *Core) EncryptionActive() bool { return c.crypto.Load() != nil }

// handleCrypto handles the journal's to-device and device-list rows. It reports false when
// the row stays pending (the core is stopping).
func (d *dispatcher) handleCrypto(ctx context.Context, log zerolog.Logger, row store.InboxEvent) {
	c := d.core
	cm := c.crypto.Load()
	if cm == nil {
		d.markDone(row.Seq) // encryption off: nothing reads them
		return
	}
	for attempt := 1; ; attempt++ {
		var err error
		if row.Kind == kindToDevice {
			err = cm.HandleToDevice(ctx, row.Payload)
		} else {
			var users []id.UserID
			if err = json.Unmarshal(row.Payload, &users); err == nil {
				err = cm.MarkDevicesChanged(ctx, users)
			}
		}
		if err == nil {
			d.markDone(row.Seq)
			return
		}
		if ctx.Err() != nil {
			return
		}
		if attempt >= c.opts.Retry.Attempts {
			log.Error().Err(err).Str("kind", row.Kind).Msg("Giving up on an encryption event")
			_ = d.markFailed(ctx, row.Seq, err.Error())
			return
		}
		if !d.queue.pause(ctx, c.opts.Retry.backoff(attempt)) {
			return
		}
	}
}

// deviceListRow journals the users whose device lists changed in a transaction.
func deviceListRow(scope, txnID string, users []id.UserID) store.InboxEvent {
	sorted := append([]id.UserID(nil), users...)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i] < sorted[j] })
	raw, _ := json.Marshal(sorted)
	return store.InboxEvent{EventID: ephemeralID(scope, txnID+"\x00devicelists", raw), Kind: kindDeviceLists, Payload: raw}
}

// decrypt turns an m.room.encrypted timeline event into the event inside. An event whose
// room key has not arrived waits (the journal keeps it pending across restarts) until the
// key arrives or DecryptTimeout after it was journaled; then its sender gets a failure
// status and a notice. ok is false when the event is finished (or stays pending because
// the core is stopping).
func (d *dispatcher) decrypt(ctx context.Context, log zerolog.Logger, row store.InboxEvent, evt *event.Event) (*event.Event, bool) {
	c := d.core
	cm := c.crypto.Load()
	if cm == nil {
		c.refuseEncrypted(ctx, evt)
		d.markDone(row.Seq)
		return nil, false
	}
	deadline := time.UnixMilli(row.ReceivedAt).Add(c.opts.Encryption.DecryptTimeout)
	ours := c.isOurs(evt.Sender)
	var requested time.Time  // when the room key was last asked for
	every := keyRequestAfter // the wait before asking again: doubling, up to keyRequestEvery
	for attempt := 1; ; attempt++ {
		wake := cm.KeyArrived()
		dec, err := cm.Decrypt(ctx, evt)
		if err == nil {
			return dec, true
		}
		if ctx.Err() != nil {
			return nil, false
		}
		waiting := errors.Is(err, e2ee.ErrNoKey) && !ours && time.Now().Before(deadline)
		if waiting {
			if attempt == 1 {
				log.Info().Time("until", deadline).Msg("Waiting for the room key of an encrypted event")
			}
			// A key usually follows its event within moments; one missing for longer may
			// have been dropped by the homeserver while we were down: ask for it.
			if age := time.Since(time.UnixMilli(row.ReceivedAt)); age >= keyRequestAfter && time.Since(requested) >= every {
				if !requested.IsZero() {
					every = min(2*every, keyRequestEvery)
				}
				requested = time.Now()
				c.requestKey(ctx, log, cm, evt)
			}
			if !d.queue.pauseUntil(ctx, min(time.Until(deadline), keyRequestAfter), wake) {
				return nil, false
			}
			continue
		}
		if ours {
			// An echo of our own that cannot be read: nothing to deliver.
			log.Debug().Err(err).Msg("Cannot decrypt the echo of our own event")
			d.markDone(row.Seq)
			return nil, false
		}
		log.Warn().Err(err).Msg("Giving up decrypting an event")
		c.metrics.handled.WithLabelValues("", "undecryptable").Inc()
		reason := "the bridge could not decrypt it (its room key did not arrive)"
		if errors.Is(err, e2ee.ErrWithheld) {
			reason = "the bridge could not decrypt it (the sending device withheld the room key)"
		}
		c.reportUndecryptable(ctx, evt, reason, "")
		_ = d.markFailed(ctx, row.Seq, err.Error())
		return nil, false
	}
}

// Key requests for an event whose room key is missing: the first this long after the event
// was journaled, then again after twice as long each time, up to keyRequestEvery, while it
// waits: an answer can be lost too (a homeserver drops the to-device events of a
// transaction it could not deliver), and one request a minute left an event with a short
// decrypt timeout a single chance.
const (
	keyRequestAfter = 3 * time.Second
	keyRequestEvery = time.Minute
)

// requestKey asks the sender of evt for its room key, as our user in the room that reports
// failures there (the module's choice, else the bot).
func (c *Core) requestKey(ctx context.Context, log zerolog.Logger, cm *e2ee.Manager, evt *event.Event) {
	asker := c.botUserID()
	if targets, err := c.route(ctx, evt, kindTimeline); err == nil && len(targets) > 0 {
		if u := c.failureSender(ctx, targets[0], evt.RoomID); u != "" {
			asker = u
		}
	}
	if err := cm.RequestKey(ctx, asker, evt); err != nil {
		log.Warn().Err(err).Msg("Failed to request a missing room key")
		return
	}
	log.Info().Stringer("asker", asker).Msg("Requested the missing room key from the sender's devices")
}

// reportUndecryptable sends, for an encrypted event in a bridged room from a user who may
// use the bridge, a failure status on the event and a notice: keyed by the event, or, when
// noticeKey is set, once per noticeKey.
func (c *Core) reportUndecryptable(ctx context.Context, evt *event.Event, reason, noticeKey string) {
	targets, err := c.route(ctx, evt, kindTimeline)
	if err != nil || len(targets) == 0 {
		return
	}
	targets = c.admitted(ctx, targets, evt, kindTimeline, false)
	if len(targets) == 0 {
		return // strangers get nothing
	}
	if noticeKey == "" {
		noticeKey = "notice:" + evt.ID.String()
	}
	sender := c.failureSender(ctx, targets[0], evt.RoomID)
	if err := c.reportFailureKeyed(ctx, targets[0].ID(), sender, evt.RoomID, evt.ID, reason, noticeKey); err != nil {
		zerolog.Ctx(ctx).Error().Err(err).Msg("Failed to queue the notice about an undecryptable event")
	}
}

// refuseEncrypted answers an encrypted event while encryption is off: a failure status on
// the event and one notice per room.
func (c *Core) refuseEncrypted(ctx context.Context, evt *event.Event) {
	if c.isOurs(evt.Sender) {
		return
	}
	reason := "this bridge does not have end-to-end encryption enabled, so it cannot read encrypted messages"
	if c.encryptionOff.Load() {
		reason = "this bridge's homeserver does not support encryption for bridges, so it cannot read encrypted messages"
	}
	c.reportUndecryptable(ctx, evt, reason, "e2ee-off:"+evt.RoomID.String())
}

// refuseUnencrypted answers, with encryption.require, a message in a bridged room that is
// not encrypted: a failure status and one notice per room. It reports whether the event
// was refused.
func (c *Core) refuseUnencrypted(ctx context.Context, evt *event.Event) bool {
	cm := c.crypto.Load()
	if cm == nil || !c.opts.Encryption.Require || evt.StateKey != nil || evt.Mautrix.WasEncrypted || c.isOurs(evt.Sender) {
		return false
	}
	switch evt.Type {
	case event.EventMessage, event.EventSticker, event.EventReaction:
	default:
		return false
	}
	targets, err := c.route(ctx, evt, kindTimeline)
	if err != nil || len(targets) == 0 {
		return false // not bridged (or routing fails: the event's own handling reports it)
	}
	asker := c.failureSender(ctx, targets[0], evt.RoomID)
	if asker == "" {
		asker = c.botUserID()
	}
	enc, err := cm.RoomEncryption(ctx, asker, evt.RoomID)
	if err != nil {
		zerolog.Ctx(ctx).Warn().Err(err).Msg("Cannot tell whether the room is encrypted; bridging the event")
		return false
	}
	if enc != nil {
		return false // encrypted room; a plaintext event there is the client's choice
	}
	c.reportUndecryptable(ctx, evt, "this bridge only bridges encrypted rooms; turn on encryption in the room settings", "e2ee-required:"+evt.RoomID.String())
	return true
}

// statusContent is a com.beeper.message_send_status failure on eventID.
func statusContent(network string, eventID id.EventID, reason string) map[string]any {
	return map[string]any{
		"network":      network,
		"m.relates_to": map[string]any{"rel_type": "m.reference", "event_id": eventID},
		"status":       "FAIL_PERMANENT",
		"reason":       "m_foreign_network_error",
		"error":        reason,
		"message":      "Not delivered: " + reason + ".",
	}
}

// plaintextTypes are sent unencrypted even in encrypted rooms: delivery statuses carry no
// message content and clients read them unencrypted.
func sendsPlaintext(evtType string) bool {
	return evtType == event.BeeperMessageStatus.Type || strings.HasPrefix(evtType, "m.room.redaction")
}

// txnMarker returns the outbox transaction ID an event of ours carries, decrypting it when
// it is encrypted (our own users' devices hold the keys of the sessions they sent with).
func (c *Core) txnMarker(ctx context.Context, evt *event.Event) string {
	if evt.Type.Type == event.EventEncrypted.Type {
		cm := c.crypto.Load()
		if cm == nil || !c.isOurs(evt.Sender) {
			return ""
		}
		dec, err := cm.Decrypt(ctx, evt)
		if err != nil {
			zerolog.Ctx(ctx).Debug().Err(err).Stringer("event_id", evt.ID).Msg("Cannot decrypt our own event to find its transaction ID")
			return ""
		}
		evt = dec
	}
	return contentString(&evt.Content, txnMarkerKey)
}

// withEncryption adds m.room.encryption to a room creation when encryption is on and
// encryption.default is set, unless the request sets it itself.
func (c *Core) withEncryption(req *mautrix.ReqCreateRoom) *mautrix.ReqCreateRoom {
	if c.crypto.Load() == nil || !c.opts.Encryption.Default || req == nil {
		return req
	}
	for _, s := range req.InitialState {
		if s != nil && s.Type.Type == event.StateEncryption.Type {
			return req
		}
	}
	enc := c.opts.Encryption
	out := *req
	out.InitialState = append(append([]*event.Event(nil), req.InitialState...), &event.Event{
		Type: event.StateEncryption,
		Content: event.Content{Parsed: &event.EncryptionEventContent{
			Algorithm:              id.AlgorithmMegolmV1,
			RotationPeriodMillis:   enc.RotationPeriod.Milliseconds(),
			RotationPeriodMessages: enc.RotationMessages,
		}},
	})
	return &out
}
