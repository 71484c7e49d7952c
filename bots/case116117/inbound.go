package case116117

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/switchboard-matrix/switchboard/appservice"
	"github.com/switchboard-matrix/switchboard/bots/case116117/ucri"
)

// processStored handles one stored message. It is idempotent: a message whose messageId
// is marked done is skipped, and everything it causes in Matrix is keyed by that id. An
// error means "retry later" (Matrix or the UCRM unreachable); a message that is wrong
// itself is reported and marked done.
func (l *link) processStored(ctx context.Context, row string) error {
	l.caseMu.Lock()
	defer l.caseMu.Unlock()
	var s stored
	var m ucri.ReceivedMessage
	if err := json.Unmarshal([]byte(row), &s); err != nil {
		return l.reject(ctx, nil, fmt.Errorf("%w: stored row: %v", errInvalid, err))
	}
	if s.Broken == "" {
		if err := json.Unmarshal(s.Message, &m); err != nil {
			return l.reject(ctx, nil, fmt.Errorf("%w: %v", errInvalid, err))
		}
	} else {
		m.MessageID = s.MessageID
	}
	st := l.b.host.Store()
	if m.MessageID != "" {
		if _, err := st.GetKV(ctx, doneKey(l.cfg.Name, m.MessageID)); err == nil {
			return nil // a redelivery of a message already handled
		} else if !errors.Is(err, appservice.ErrNotFound) {
			return err
		}
	}
	if s.Broken != "" {
		if err := l.reject(ctx, &m, fmt.Errorf("%w: %s", errInvalid, s.Broken)); err != nil {
			return err
		}
	} else if err := l.apply(ctx, &m); err != nil {
		if errors.Is(err, errInvalid) {
			err = l.reject(ctx, &m, err)
		}
		if err != nil {
			return err
		}
	}
	if m.MessageID == "" {
		return nil
	}
	return st.PutKV(ctx, doneKey(l.cfg.Name, m.MessageID), time.Now().UTC().Format(time.RFC3339))
}

// apply checks a message (envelope, signature, payload) and applies it. Every check
// happens before anything changes, so an invalid message changes nothing.
func (l *link) apply(ctx context.Context, m *ucri.ReceivedMessage) error {
	if err := m.Check(); err != nil {
		return fmt.Errorf("%w: %w", errInvalid, err)
	}
	if err := l.verify(ctx, m); err != nil {
		return err
	}
	msg, err := ucri.DecodePayload(m.Payload)
	if err != nil {
		return fmt.Errorf("%w: %w", errInvalid, err)
	}
	switch msg := msg.(type) {
	case *ucri.Incident:
		return l.applyIncident(ctx, m, msg)
	case *ucri.Acknowledgement:
		return l.applyAnswer(ctx, m, msg.SharedIncidentID, answerFromAck(msg))
	case *ucri.Completion:
		return l.applyAnswer(ctx, m, msg.SharedIncidentID, answerFromCompletion(msg))
	case *ucri.DeliveryStatus:
		return l.applyDeliveryStatus(ctx, m, msg)
	case *ucri.AvailabilityUpdate:
		return l.applyAvailability(ctx, m, msg)
	}
	return fmt.Errorf("%w: %s %s wird nicht verarbeitet", errInvalid, m.Payload.AppID, m.Payload.SchemaID)
}

// verify checks the envelope's signature against the sender's key in the registry. A
// message without signature is accepted only from a participant registered as
// transmitting unsigned messages. Before a message is refused as untrusted (sender not
// registered, unsigned, no or a wrong key, a signature that does not verify), the registry
// is asked again: the sender may be new, have a new key or have opted out of signing
// since it was cached. This costs at most one registry read per refused message (they are
// processed one at a time).
func (l *link) verify(ctx context.Context, m *ucri.ReceivedMessage) error {
	p, ok, err := l.registryEntry(ctx, m.Source, 10*time.Minute)
	if err != nil {
		return fmt.Errorf("case116117: registry: %w", err) // retried
	}
	err = l.trust(m, p, ok)
	if err == nil {
		return nil
	}
	p, ok, rerr := l.registryEntry(ctx, m.Source, registryRecheck)
	if rerr != nil {
		return fmt.Errorf("case116117: registry: %w", rerr) // retried: refuse only on a fresh registry
	}
	return l.trust(m, p, ok)
}

// registryRecheck is the registry age for a second look before a refusal: always ask.
const registryRecheck = 0

// trust decides whether m is proven to come from its source, given the source's registry
// entry p (ok false: not registered). It returns nil or an errInvalid wrapping errUntrusted.
func (l *link) trust(m *ucri.ReceivedMessage, p ucri.CommParticipant, ok bool) error {
	if !ok {
		return fmt.Errorf("%w: %w: der Absender %s steht nicht im Register der UCRM", errInvalid, errUntrusted, m.Source)
	}
	if m.Signature == "" {
		if p.TransmitsUnsignedMessages {
			return nil
		}
		return fmt.Errorf("%w: %w: die Nachricht ist nicht signiert, und %s sendet laut Register signiert", errInvalid, errUntrusted, m.Source)
	}
	if p.Key == nil {
		return fmt.Errorf("%w: %w: das Register hat keinen Schlüssel von %s", errInvalid, errUntrusted, m.Source)
	}
	pub, err := ucri.PublicKeyFromJWK(*p.Key)
	if err != nil {
		return fmt.Errorf("%w: %w: der Schlüssel von %s im Register ist ungültig: %w", errInvalid, errUntrusted, m.Source, err)
	}
	if err := ucri.Verify(&m.Envelope, m.Destination, pub); err != nil {
		return fmt.Errorf("%w: %w: %w", errInvalid, errUntrusted, err)
	}
	return nil
}

// reject reports a message that cannot be applied: to the link's admins always, and to
// the sender of an incident as a rejection with the cause (the app's answer to a case it
// cannot take), when its case ID can be read and the sender is registered. An incident
// refused as untrusted is answered too, so that its sender does not take it as delivered;
// the answer goes to the registered centre, which learns that a case under its name was
// refused.
func (l *link) reject(ctx context.Context, m *ucri.ReceivedMessage, cause error) error {
	from, ref := "?", "?"
	if m != nil {
		from, ref = m.Source, m.MessageID
	}
	l.log(ctx).Warn().Err(cause).Str("source", from).Str("message_id", ref).Msg("Rejected a received message")
	why := strings.TrimPrefix(cause.Error(), errInvalid.Error()+": ")
	if ue, ok := errors.AsType[*ucri.Error](cause); ok {
		why = strings.Replace(why, ue.Error(), ucriText(ue), 1)
	}
	text := fmt.Sprintf("⚠️ Eine Nachricht von %s (messageId %s) wurde nicht übernommen: %s", from, ref, strings.TrimRight(why, ". "))
	if err := l.post(ctx, l.admin(), "invalid:"+ref+":"+fmt.Sprint(time.Now().UnixNano()), text, ""); err != nil {
		return err
	}
	if m == nil || m.Payload.AppID != ucri.AppIncidentWithPatient || m.Payload.SchemaID != ucri.SchemaIncident {
		return nil
	}
	if _, ok, err := l.registryEntry(ctx, m.Source, time.Hour); err != nil {
		return fmt.Errorf("case116117: registry: %w", err)
	} else if !ok {
		return nil // an answer could not be delivered
	}
	var probe struct {
		SharedIncidentID string `json:"sharedIncidentId"`
	}
	if json.Unmarshal([]byte(m.Payload.Data), &probe) != nil || !ucri.IsUUID(probe.SharedIncidentID) {
		return nil
	}
	ack := &ucri.Acknowledgement{
		SharedIncidentID: probe.SharedIncidentID, AcknowledgedByDispatcherAt: ucri.FormatTime(time.Now()),
		Status: ucri.AckRejected, Cause: truncate(rejectCause(cause), 2000),
	}
	msgID := ucri.DerivedMessageID(l.cfg.OID, "reject-invalid", m.MessageID)
	_, err := l.queueSend(ctx, outgoing{Dest: m.Source, Message: ack, MessageID: msgID, Room: l.admin(), Kind: "rejection", By: "switchboard"})
	return err
}

// errUntrusted marks a message whose sender is not proven (no or a wrong signature).
var errUntrusted = errors.New("nicht vertrauenswürdig")

// rejectCause is the cause of a rejection sent back for an invalid incident.
func rejectCause(cause error) string {
	if errors.Is(cause, errUntrusted) {
		why := strings.TrimPrefix(cause.Error(), errInvalid.Error()+": "+errUntrusted.Error()+": ")
		if ue, ok := errors.AsType[*ucri.Error](cause); ok {
			why = ucriText(ue)
		}
		return "Übergabe abgelehnt, Absender nicht nachgewiesen: " + why
	}
	return "Übergabe technisch ungültig: " + errorText(cause)
}

func errorText(err error) string {
	if ue, ok := errors.AsType[*ucri.Error](err); ok {
		return ucriText(ue)
	}
	return strings.TrimPrefix(err.Error(), errInvalid.Error()+": ")
}

func truncate(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n-1]) + "…"
}
