package case116117

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"
	"time"

	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"

	"github.com/switchboard-matrix/switchboard/appservice"
	"github.com/switchboard-matrix/switchboard/bots/case116117/ucri"
)

// Kinds of outgoing messages.
const (
	kindIncident   = "incident"
	kindAck        = "acknowledgement"
	kindCompletion = "completion"
	kindRejection  = "rejection" // an acknowledgement rejecting an invalid incident
)

// Outgoing message states.
const (
	outPending = "pending"
	outSent    = "sent"
	outFailed  = "failed"
)

// outgoing is a message to another centre as the store keeps it. The request is built,
// signed and stored once; every attempt sends exactly these bytes, so a resend after a
// crash or an outage carries the same messageId.
type outgoing struct {
	MessageID string          `json:"message_id"`
	Dest      string          `json:"dest"`
	Kind      string          `json:"kind"`
	Case      string          `json:"case,omitempty"`
	Room      id.RoomID       `json:"room,omitempty"`
	By        string          `json:"by,omitempty"`
	EventID   id.EventID      `json:"event_id,omitempty"`
	PrevState string          `json:"prev_state,omitempty"`
	NewState  string          `json:"new_state,omitempty"`
	Request   json.RawMessage `json:"request"`
	State     string          `json:"state"`
	Created   time.Time       `json:"created"`
	Sent      time.Time       `json:"sent,omitzero"`
	Error     string          `json:"error,omitempty"`
	Delivery  int             `json:"delivery,omitempty"` // the delivery status code, 0 before

	Message ucri.Message `json:"-"` // for queueSend only
}

func (l *link) loadOut(ctx context.Context, msgID string) (*outgoing, error) {
	raw, err := l.b.host.Store().GetKV(ctx, outKey(l.cfg.Name, msgID))
	if err != nil {
		return nil, err
	}
	var o outgoing
	if err := json.Unmarshal([]byte(raw), &o); err != nil {
		return nil, fmt.Errorf("case116117: outgoing %s in the store: %w", msgID, err)
	}
	return &o, nil
}

func (l *link) saveOut(ctx context.Context, o *outgoing) error {
	raw, err := json.Marshal(o)
	if err != nil {
		return err
	}
	return l.b.host.Store().PutKV(ctx, outKey(l.cfg.Name, o.MessageID), string(raw))
}

// buildRequest makes the signed send request of a message; the payload is validated
// strictly against its schema first.
func (l *link) buildRequest(msgID, dest string, m ucri.Message) (*ucri.SendRequest, error) {
	p, err := ucri.NewPayload(m)
	if err != nil {
		return nil, err
	}
	req := &ucri.SendRequest{
		Envelope: ucri.Envelope{
			MessageID: msgID, SentDate: ucri.FormatTime(time.Now()), Timeout: int(time.Duration(l.cfg.Timeout).Seconds()),
			Ack: ucri.AckAll, Source: l.cfg.OID, Payload: p,
		},
		Destinations: []string{dest},
	}
	if l.key != nil {
		if err := ucri.Sign(&req.Envelope, dest, l.key); err != nil {
			return nil, err
		}
	}
	return req, nil
}

// queueSend stores a message for the sender loop. It is idempotent by messageId: a
// message already stored is returned as it is. The queue row is written before the
// message, so a crash between the two leaves a queue row without a message (dropped by
// the sender) and never a message that nothing sends.
func (l *link) queueSend(ctx context.Context, o outgoing) (*outgoing, error) {
	if prev, err := l.loadOut(ctx, o.MessageID); err == nil {
		return prev, nil
	} else if !errors.Is(err, appservice.ErrNotFound) {
		return nil, err
	}
	req, err := l.buildRequest(o.MessageID, o.Dest, o.Message)
	if err != nil {
		return nil, err
	}
	if o.Request, err = json.Marshal(req); err != nil {
		return nil, err
	}
	o.State, o.Created = outPending, time.Now().UTC()
	st := l.b.host.Store()
	if err := st.PutKV(ctx, pendKey(l.cfg.Name, o.Created.UnixNano(), o.MessageID), o.MessageID); err != nil {
		return nil, err
	}
	if err := l.saveOut(ctx, &o); err != nil {
		return nil, err
	}
	l.wake(l.wakeSend)
	return &o, nil
}

// sendLoop sends queued messages in order, each until the UCRM took it, it was refused,
// or its envelope timeout passed.
func (l *link) sendLoop(ctx context.Context) {
	st := l.b.host.Store()
	for attempt := 0; ctx.Err() == nil; {
		rows, err := st.ListKV(ctx, "pend:"+l.cfg.Name+":", 20)
		progressed := false
		for _, row := range rows {
			var done bool
			if done, err = l.sendOne(ctx, row.Key, row.Value); err != nil {
				break
			}
			if !done {
				continue
			}
			if err = st.DeleteKV(ctx, row.Key); err != nil {
				break
			}
			progressed = true
		}
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			l.log(ctx).Warn().Err(err).Msg("Sending to the UCRM failed; retrying")
			if !sleepOrWake(ctx, backoff(attempt), l.wakeSend) { // woken when the UCRM is back
				return
			}
			attempt++
			continue
		}
		attempt = 0
		if len(rows) == 20 && progressed {
			continue
		}
		select {
		case <-ctx.Done():
			return
		case <-l.wakeSend:
		case <-time.After(time.Minute):
		}
	}
}

// queueGrace is how long a queue row may wait for its message: queueSend writes the row
// first, so a row without a message is either being queued right now or was left by a
// crash (and the Matrix event that caused it is redelivered and queues it again).
const queueGrace = 10 * time.Minute

// sendOne sends one queued message. done means the queue row can go: the message was
// sent, failed for good, or will never come.
func (l *link) sendOne(ctx context.Context, key, msgID string) (done bool, err error) {
	o, err := l.loadOut(ctx, msgID)
	if errors.Is(err, appservice.ErrNotFound) {
		return time.Since(queuedAt(key)) > queueGrace, nil
	} else if err != nil {
		return false, err
	}
	if o.State != outPending {
		return true, nil
	}
	return true, l.send(ctx, o)
}

// queuedAt is the time in a queue row's key (pend:<link>:<unix nanoseconds>:<messageId>).
func queuedAt(key string) time.Time {
	parts := strings.Split(key, ":")
	if len(parts) < 4 {
		return time.Time{}
	}
	n, _ := strconv.ParseInt(parts[len(parts)-2], 10, 64)
	return time.Unix(0, n)
}

// send delivers one pending message to the UCRM.
func (l *link) send(ctx context.Context, o *outgoing) error {
	var req ucri.SendRequest
	if err := json.Unmarshal(o.Request, &req); err != nil {
		return l.sendFailed(ctx, o, err)
	}
	if time.Since(o.Created) > time.Duration(l.cfg.Timeout) {
		return l.sendFailed(ctx, o, errors.New("die UCRM war bis zum Ablauf der Nachricht (timeout) nicht erreichbar"))
	}
	_, err := l.client.Send(ctx, &req)
	if errors.Is(err, ucri.ErrInvalidAnswer) {
		// Taken (HTTP 200); a malformed answer must not make a delivered answer look failed.
		l.log(ctx).Warn().Err(err).Str("message_id", o.MessageID).Msg("The UCRM took a message but answered out of spec")
		err = nil
	}
	if err != nil {
		if ucri.IsTemporary(err) {
			l.setStatus(ctx, "reconnecting", err)
			return err
		}
		return l.sendFailed(ctx, o, err)
	}
	o.State, o.Sent = outSent, time.Now().UTC()
	if err := l.saveOut(ctx, o); err != nil {
		return err
	}
	if o.Room != "" {
		text := fmt.Sprintf("📤 %s wurde an %s gesendet (messageId %s).", kindLabel[o.Kind], l.peerName(ctx, o.Dest), o.MessageID)
		// The command that queued the message holds caseMu until it has announced it
		// ("✅ Fall angenommen … wird gesendet"): "sent" is posted after that, never before.
		l.caseMu.Lock()
		defer l.caseMu.Unlock()
		return l.post(ctx, o.Room, "out:"+o.MessageID+":sent", text, "")
	}
	return nil
}

// sendFailed records a message the UCRM refused (or that timed out), puts the case back
// in the state it had, and tells the dispatcher who caused it.
func (l *link) sendFailed(ctx context.Context, o *outgoing, cause error) error {
	l.caseMu.Lock()
	defer l.caseMu.Unlock()
	o.State, o.Error = outFailed, userText(cause)
	if err := l.saveOut(ctx, o); err != nil {
		return err
	}
	l.log(ctx).Error().Err(cause).Str("message_id", o.MessageID).Str("kind", o.Kind).Msg("The UCRM refused a message")
	reason := fmt.Sprintf("%s konnte nicht an %s gesendet werden: %s", kindLabel[o.Kind], l.peerName(ctx, o.Dest), strings.TrimRight(o.Error, ". "))
	if o.Case != "" && o.NewState != "" {
		if c, err := l.loadCase(ctx, o.Case); err == nil && c.State == o.NewState {
			if err := l.setState(ctx, c, change{State: o.PrevState, By: "switchboard", At: time.Now().UTC(), Note: "Senden fehlgeschlagen: " + o.Error}); err != nil {
				return err
			}
			reason += ". Der Fall ist wieder " + stateLabel[o.PrevState] + "."
		}
	}
	if o.EventID != "" && o.Room != "" {
		// In German, in reply to the dispatcher's command (the core's report is English).
		if err := l.reply(ctx, &event.Event{RoomID: o.Room, ID: o.EventID}, "send-failed", "❌ "+reason); err != nil {
			return err
		}
	} else if err := l.post(ctx, firstRoom(o.Room, l.admin()), "out:"+o.MessageID+":failed", "❌ "+reason, ""); err != nil {
		return err
	}
	if o.Room != l.admin() {
		return l.post(ctx, l.admin(), "out:"+o.MessageID+":failed-admin", "❌ "+reason+" (Fall-ID "+o.Case+")", "")
	}
	return nil
}

func firstRoom(rooms ...id.RoomID) id.RoomID {
	for _, r := range rooms {
		if r != "" {
			return r
		}
	}
	return ""
}

// userText is an error as it may be shown in a room: in German, a UCRI2 error by its code
// (with the technical detail, which is English, marked as such), without URLs or hosts.
func userText(err error) string {
	var urlErr *url.Error
	if errors.As(err, &urlErr) {
		var opErr *net.OpError
		switch {
		case urlErr.Timeout():
			return "Zeitüberschreitung der Verbindung"
		case errors.As(err, &opErr) && opErr.Err != nil:
			return "keine Verbindung (" + truncate(opErr.Err.Error(), 100) + ")"
		}
		return "keine Verbindung"
	}
	if ue, ok := errors.AsType[*ucri.Error](err); ok {
		return truncate(ucriText(ue), 300)
	}
	if ae, ok := errors.AsType[*ucri.APIError](err); ok {
		return fmt.Sprintf("die UCRM antwortete mit HTTP %d", ae.Status)
	}
	s := err.Error()
	if i := strings.Index(s, "http"); i >= 0 {
		s = s[:i] + "…"
	}
	return truncate(s, 300)
}

// ucriLabel names the UCRI2 error codes (ucriErrorCodes.json) in German.
var ucriLabel = map[int]string{
	ucri.CodeInvalidTransport:    "ungültige Transportnachricht",
	ucri.CodeUnknownAppID:        "unbekannte App",
	ucri.CodeUnknownAppVersion:   "unbekannte App-Version",
	ucri.CodeUnknownSchemaID:     "unbekannter Nachrichtentyp",
	ucri.CodeInvalidPayload:      "ungültiger Inhalt",
	ucri.CodeInvalidJSON:         "kein gültiges JSON",
	ucri.CodeUnsupportedApp:      "App nicht unterstützt",
	ucri.CodeForbiddenAppID:      "App nicht erlaubt",
	ucri.CodeUnsupportedMessage:  "Nachrichtentyp nicht unterstützt",
	ucri.CodeUnknownDestination:  "unbekannter Empfänger",
	ucri.CodeUnauthorized:        "nicht angemeldet",
	ucri.CodeOIDForbidden:        "OID nicht erlaubt",
	ucri.CodeWrongSignature:      "Signatur ungültig",
	ucri.CodeInvalidP2PTransport: "ungültige P2P-Transportnachricht",
	ucri.CodeInternalError:       "interner Fehler der UCRM",
}

// ucriText shows a UCRI2 error in a room: "<German label> (UCRI <code>; technisch:
// <message>)". The message names fields and rules, never data.
func ucriText(ue *ucri.Error) string {
	label, ok := ucriLabel[ue.Code]
	if !ok {
		label = "Fehler"
	}
	s := fmt.Sprintf("%s (UCRI %d", label, ue.Code)
	if ue.Message != "" {
		s += "; technisch: " + strings.TrimRight(ue.Message, ". ")
	}
	return s + ")"
}
