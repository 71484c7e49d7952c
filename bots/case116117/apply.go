package case116117

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/switchboard-matrix/switchboard/appservice"
	"github.com/switchboard-matrix/switchboard/bots/case116117/ucri"
)

// applyIncident opens the case room of an incident handed over to this ELS (or posts an
// update of a case it knows), once per messageId.
func (l *link) applyIncident(ctx context.Context, m *ucri.ReceivedMessage, inc *ucri.Incident) error {
	c, err := l.loadCase(ctx, inc.SharedIncidentID)
	switch {
	case errors.Is(err, appservice.ErrNotFound):
		c = &caseRecord{
			ID: inc.SharedIncidentID, Role: roleIncoming, Peer: m.Source, State: stateReceived,
			Title: caseTitle(inc), Created: time.Now().UTC(),
		}
	case err != nil:
		return err
	case c.Peer != m.Source || c.Role != roleIncoming:
		return fmt.Errorf("%w: der Fall %s gehört einer anderen Leitstelle oder wurde von hier übergeben", errInvalid, inc.SharedIncidentID)
	}
	peer := l.peerName(ctx, m.Source)
	if c.Room == "" {
		room, err := l.ensureCaseRoom(ctx, c, "116117-Fall "+c.ID+" · übergeben von "+peer)
		if err != nil {
			return err
		}
		c.Room = room
	}
	if c.hasMessage(m.MessageID) {
		return l.putStateEvent(ctx, c) // a crash may have come between the save and the state event
	}
	// Everything posted is keyed by the messageId (idempotent); the case is saved last,
	// so a crash before it posts the rest again instead of skipping it.
	update := len(c.Messages) > 0
	text, html := renderIncident(inc, peer, update, c.Role)
	if err := l.post(ctx, c.Room, "in:"+m.MessageID+":summary", text, html); err != nil {
		return err
	}
	if err := l.postPayload(ctx, c, m.MessageID, m.Source, m.SentDate, m.Payload); err != nil {
		return err
	}
	verb := "Neuer Fall"
	if update {
		verb = "Aktualisierter Fall"
	}
	link := "https://matrix.to/#/" + string(c.Room)
	note := fmt.Sprintf("📥 %s von %s: %s — %s", verb, peer, c.Title, link)
	noteHTML := fmt.Sprintf(`📥 %s von %s: <a href="%s">%s</a>`, verb, esc(peer), link, esc(c.Title))
	if err := l.announce(ctx, "in:"+m.MessageID+":work", note, noteHTML); err != nil {
		return err
	}
	if err := l.post(ctx, l.admin(), "in:"+m.MessageID+":admin", note, noteHTML); err != nil {
		return err
	}
	c.Messages = append(c.Messages, m.MessageID)
	if !update {
		c.History = append(c.History, change{State: stateReceived, By: m.Source, At: time.Now().UTC(), MessageID: m.MessageID})
	}
	if err := l.saveCase(ctx, c); err != nil {
		return err
	}
	if !update {
		return nil // the room was created with this state (ensureCaseRoom's initial state)
	}
	return l.putStateEvent(ctx, c)
}

// postPayload posts the full structured payload of a message in the case room, in a
// namespaced event that clients do not show but tools can read.
func (l *link) postPayload(ctx context.Context, c *caseRecord, msgID, source, sentDate string, p ucri.Payload) error {
	return l.b.host.Enqueue(ctx, appservice.Message{
		RoomID: c.Room, Sender: l.botID(), RemoteID: l.cfg.Name + ":in:" + msgID + ":payload", Type: payloadType,
		Content: map[string]any{
			"case_id": c.ID, "message_id": msgID, "source": source, "sent_date": sentDate,
			"app_id": p.AppID, "app_version": p.AppVersion, "schema_id": p.SchemaID,
			// The app message's JSON text as a string: Matrix's canonical JSON has no
			// fractional numbers (coordinates), so it cannot be embedded as an object.
			"data": p.Data,
		},
	})
}

// answer is an acknowledgement or completion as a state change.
type answer struct {
	state string
	note  string
	at    string
}

func answerFromAck(a *ucri.Acknowledgement) answer {
	s := stateAccepted
	if a.Status == ucri.AckRejected {
		s = stateRejected
	}
	return answer{state: s, note: a.Cause, at: a.AcknowledgedByDispatcherAt}
}

func answerFromCompletion(c *ucri.Completion) answer {
	s := stateCompleted
	if c.Status == ucri.Aborted {
		s = stateAborted
	}
	return answer{state: s, note: c.AdditionalInformation, at: c.CompletedAt}
}

// applyAnswer records the other centre's answer to a case handed over from here.
func (l *link) applyAnswer(ctx context.Context, m *ucri.ReceivedMessage, caseID string, a answer) error {
	c, err := l.loadCase(ctx, caseID)
	if errors.Is(err, appservice.ErrNotFound) {
		return fmt.Errorf("%w: %s zum unbekannten Fall %s", errInvalid, m.Payload.SchemaID, caseID)
	} else if err != nil {
		return err
	}
	if c.Role != roleOutgoing || c.Peer != m.Source {
		return fmt.Errorf("%w: %s zum Fall %s, der nicht von hier an %s übergeben wurde", errInvalid, m.Payload.SchemaID, caseID, m.Source)
	}
	text := fmt.Sprintf("%s %s: der Fall ist %s", stateIcon[a.state], l.peerName(ctx, m.Source), stateLabel[a.state])
	if a.note != "" {
		text += " — " + a.note
	}
	if a.at != "" {
		text += " (" + a.at + ")"
	}
	if err := l.post(ctx, c.Room, "in:"+m.MessageID+":answer", text, ""); err != nil {
		return err
	}
	if err := l.postPayload(ctx, c, m.MessageID, m.Source, m.SentDate, m.Payload); err != nil {
		return err
	}
	if c.hasMessage(m.MessageID) {
		return l.putStateEvent(ctx, c) // a crash may have come between the save and the state event
	}
	return l.setState(ctx, c, change{State: a.state, By: m.Source, At: time.Now().UTC(), MessageID: m.MessageID, Note: a.note})
}

var stateIcon = map[string]string{
	stateReceived: "📥", stateHandedOver: "📤", stateAccepted: "✅", stateRejected: "❌", stateCompleted: "🏁", stateAborted: "⛔",
}

// applyDeliveryStatus shows the UCRM's delivery report of a message sent from here in the
// case room, and failures also in the admin room.
// Only the UCRM (a registry entry of type "ucrm") or the destination the report is about
// may send it.
func (l *link) applyDeliveryStatus(ctx context.Context, m *ucri.ReceivedMessage, ds *ucri.DeliveryStatus) error {
	if err := l.checkConcerns(ctx, m.Source, ds.Destination, "Zustellstatus"); err != nil {
		return err
	}
	o, err := l.loadOut(ctx, ds.RefMessageID)
	if err == nil && o.Dest != ds.Destination {
		return fmt.Errorf("%w: Zustellstatus für die Nachricht %s an %s, die an %s ging", errInvalid, ds.RefMessageID, ds.Destination, o.Dest)
	}
	if errors.Is(err, appservice.ErrNotFound) {
		return l.post(ctx, l.admin(), "in:"+m.MessageID+":status",
			fmt.Sprintf("ℹ️ Zustellstatus %d für die unbekannte Nachricht %s an %s", ds.StatusCode, ds.RefMessageID, ds.Destination), "")
	} else if err != nil {
		return err
	}
	peer := l.peerName(ctx, ds.Destination)
	what := kindLabel[o.Kind]
	var text string
	if ds.StatusCode == 200 {
		text = fmt.Sprintf("📬 %s wurde %s zugestellt.", what, peer)
		if err := l.post(ctx, l.admin(), "in:"+m.MessageID+":status-admin", text+" — Fall-ID "+o.Case, ""); err != nil {
			return err
		}
	} else {
		text = fmt.Sprintf("⚠️ %s wurde %s NICHT zugestellt (Status %d)", what, peer, ds.StatusCode)
		if ds.StatusMessage != "" {
			text += ": " + ds.StatusMessage
		}
		if ds.Cause != nil {
			text += fmt.Sprintf(" [UCRI %d %s]", ds.Cause.Code, ds.Cause.Reason)
		}
		if err := l.post(ctx, l.admin(), "in:"+m.MessageID+":status-admin", text+" — Fall-ID "+o.Case, ""); err != nil {
			return err
		}
	}
	if o.Room != "" {
		if err := l.post(ctx, o.Room, "in:"+m.MessageID+":status", text, ""); err != nil {
			return err
		}
	}
	if o.Delivery == 0 || ds.StatusCode != 200 {
		o.Delivery = ds.StatusCode
		return l.saveOut(ctx, o)
	}
	return nil
}

var kindLabel = map[string]string{
	kindIncident: "Die Fallübergabe", kindAck: "Die Annahme/Ablehnung", kindCompletion: "Die Abschlussmeldung",
	kindRejection: "Die Ablehnung der ungültigen Übergabe",
}

// applyAvailability shows another centre's availability in the admin room and in the
// rooms of its open cases.
// Only the UCRM or the centre itself may report its availability.
func (l *link) applyAvailability(ctx context.Context, m *ucri.ReceivedMessage, au *ucri.AvailabilityUpdate) error {
	if err := l.checkConcerns(ctx, m.Source, au.ID, "Erreichbarkeitsmeldung"); err != nil {
		return err
	}
	l.mu.Lock()
	if p, ok := l.registry[au.ID]; ok {
		p.Status = au.Status
		l.registry[au.ID] = p
	}
	l.mu.Unlock()
	text := fmt.Sprintf("%s %s ist jetzt %s.", availIcon[au.Status], l.peerName(ctx, au.ID), availLabel[au.Status])
	if err := l.post(ctx, l.admin(), "in:"+m.MessageID+":avail", text, ""); err != nil {
		return err
	}
	rows, err := l.b.host.Store().ListKV(ctx, "case:"+l.cfg.Name+":", 0)
	if err != nil {
		return err
	}
	for _, row := range rows {
		var c caseRecord
		if json.Unmarshal([]byte(row.Value), &c) != nil || c.Peer != au.ID || c.Room == "" || final(c.State) {
			continue
		}
		if err := l.post(ctx, c.Room, "in:"+m.MessageID+":avail:"+c.ID, text, ""); err != nil {
			return err
		}
	}
	return nil
}

var (
	availIcon  = map[string]string{ucri.StatusOnline: "🟢", ucri.StatusOffline: "🔴", ucri.StatusUnknown: "⚪"}
	availLabel = map[string]string{ucri.StatusOnline: "erreichbar", ucri.StatusOffline: "NICHT erreichbar", ucri.StatusUnknown: "in unbekanntem Zustand"}
)

func final(state string) bool {
	return state == stateRejected || state == stateCompleted || state == stateAborted
}

// checkConcerns accepts a transport message (what) about participant about only from that
// participant or from a UCRM (registry type "ucrm"): no other centre may report on it.
func (l *link) checkConcerns(ctx context.Context, source, about, what string) error {
	if source == about {
		return nil
	}
	for _, maxAge := range []time.Duration{10 * time.Minute, registryRecheck} {
		p, ok, err := l.registryEntry(ctx, source, maxAge)
		if err != nil {
			return fmt.Errorf("case116117: registry: %w", err) // retried
		}
		if ok && p.Type == participantUCRM {
			return nil
		}
	}
	return fmt.Errorf("%w: %s über %s von %s, der weder dieser Teilnehmer noch eine UCRM ist", errInvalid, what, about, source)
}

// participantUCRM is the registry type of a UCRM (commParticipant.type).
const participantUCRM = "ucrm"
