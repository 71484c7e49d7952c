package case116117

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"maunium.net/go/mautrix/event"

	"github.com/switchboard-matrix/switchboard/appservice"
	"github.com/switchboard-matrix/switchboard/bots/case116117/ucri"
)

// Reactions that answer a case: ✅ accepts, ❌ rejects.
var reactionCommand = map[string]string{
	"✅": "accept", "✔️": "accept", "👍": "accept",
	"❌": "reject", "👎": "reject",
}

const caseHelp = "Befehle im Fallraum: !accept [Bemerkung] nimmt den Fall an · !reject <Grund> lehnt ihn ab · " +
	"!complete [Info] meldet ihn abgeschlossen · !abort [Info] abgebrochen · !status zeigt Zustand und Verlauf. " +
	"Reaktionen: ✅ annehmen, ❌ ablehnen."

const adminHelp = "Befehle im Verwaltungsraum: !registry listet die erreichbaren Leitstellen · !info zeigt die UCRM · " +
	"!handover <OID> übergibt einen Fall, mit den Angaben in den folgenden Zeilen (Feld: Wert), z. B.\n" +
	"!handover 1.2.3.4.5.6\nstichwort: A1\nanlass: Atemnot\nstrasse: Musterstraße\nhausnummer: 15b\nplz: 12345\nort: Musterhausen\n" +
	"patient: Mustermann, Hans\ngeschlecht: m\ngeburtsdatum: 1980-12-30\ntelefon: +49 30 123456\nersteinschaetzung: unspezifischer Notfall\n" +
	"Weitere Felder: ortsteil, lat, lon, objekt, etage, zimmer, ortsinfo, alter, rmi, rmc, pzc, infektion, anrufer, anrufer_telefon, info, bemerkung, interne_nr, sonderrechte (ja/nein)."

// handleEvent handles a dispatcher's message or reaction in one of the link's rooms.
func (l *link) handleEvent(ctx context.Context, key portalKey, evt *event.Event) error {
	cmd, args := "", ""
	switch evt.Type {
	case event.EventReaction:
		r := evt.Content.AsReaction()
		cmd = reactionCommand[strings.TrimSuffix(r.RelatesTo.Key, "\ufe0f")]
		if cmd == "" {
			cmd = reactionCommand[r.RelatesTo.Key]
		}
		if cmd == "" || key.caseID == "" {
			return nil
		}
	case event.EventMessage:
		msg := evt.Content.AsMessage()
		if msg.MsgType != event.MsgText || msg.RelatesTo != nil && msg.RelatesTo.Type == event.RelReplace {
			return nil
		}
		body := strings.TrimSpace(msg.Body)
		if !strings.HasPrefix(body, "!") {
			return nil
		}
		cmd, args, _ = strings.Cut(body[1:], " ")
		if first, rest, ok := strings.Cut(cmd, "\n"); ok {
			cmd, args = first, rest+" "+args
		}
		cmd, args = strings.ToLower(cmd), strings.TrimSpace(args)
	}
	if key.caseID == "" {
		return l.adminCommand(ctx, evt, cmd, args)
	}
	return l.caseCommand(ctx, key.caseID, evt, cmd, args)
}

func userError(format string, args ...any) error {
	return appservice.RoomError{Msg: fmt.Sprintf(format, args...), Permanent: true}
}

// caseCommand answers a case: the answer is stored with a messageId derived from the
// event, the case's state changes at once (so a second dispatcher sees it), and the
// sender loop delivers the answer.
func (l *link) caseCommand(ctx context.Context, caseID string, evt *event.Event, cmd, args string) error {
	l.caseMu.Lock()
	defer l.caseMu.Unlock()
	c, err := l.loadCase(ctx, caseID)
	if err != nil {
		return err
	}
	reply := func(text string) error { return l.post(ctx, evt.RoomID, "reply:"+string(evt.ID), text, "") }
	switch cmd {
	case "help":
		return reply(caseHelp)
	case "status":
		return reply(statusText(c))
	case "accept", "reject", "complete", "abort":
	default:
		return userError("Unbekannter Befehl !%s. %s", cmd, caseHelp)
	}
	msgID := ucri.DerivedMessageID(l.cfg.OID, "answer", string(evt.ID))
	if o, err := l.loadOut(ctx, msgID); err == nil {
		// A redelivery: the answer is stored; finish recording and announcing it.
		if !c.hasMessage(msgID) {
			if err := l.setState(ctx, c, change{State: o.NewState, By: string(evt.Sender), At: eventTime(evt), MessageID: msgID, Note: args}); err != nil {
				return err
			}
		}
		return l.announceAnswer(ctx, c, evt, o.NewState, args)
	} else if !errors.Is(err, appservice.ErrNotFound) {
		return err
	}
	if c.Role != roleIncoming {
		return userError("Dieser Fall wurde von hier an %s übergeben; annehmen, ablehnen und abschließen kann nur die dortige Leitstelle.", l.peerName(ctx, c.Peer))
	}
	at := eventTime(evt)
	var m ucri.Message
	var next, kind string
	switch cmd {
	case "accept", "reject":
		if c.State != stateReceived {
			return userError("Der Fall ist bereits %s%s.", stateLabel[c.State], lastChange(c))
		}
		next, kind = stateAccepted, kindAck
		status := ucri.AckAccepted
		if cmd == "reject" {
			next, status = stateRejected, ucri.AckRejected
			if args == "" && evt.Type == event.EventMessage {
				return userError("Bitte einen Grund angeben: !reject <Grund>")
			}
		}
		m = &ucri.Acknowledgement{SharedIncidentID: c.ID, AcknowledgedByDispatcherAt: ucri.FormatTime(at), Status: status, Cause: truncate(args, 2000)}
	case "complete", "abort":
		if c.State != stateAccepted {
			return userError("Abschließen oder abbrechen geht nur bei einem angenommenen Fall; der Fall ist %s%s.", stateLabel[c.State], lastChange(c))
		}
		next, kind = stateCompleted, kindCompletion
		status := ucri.CompletedSuccessfully
		if cmd == "abort" {
			next, status = stateAborted, ucri.Aborted
		}
		m = &ucri.Completion{SharedIncidentID: c.ID, CompletedAt: ucri.FormatTime(at), Status: status, AdditionalInformation: truncate(args, 2000)}
	}
	_, err = l.queueSend(ctx, outgoing{
		MessageID: msgID, Dest: c.Peer, Kind: kind, Case: c.ID, Room: c.Room, By: string(evt.Sender), EventID: evt.ID,
		PrevState: c.State, NewState: next, Message: m,
	})
	var ue *ucri.Error
	if errors.As(err, &ue) {
		return userError("Die Antwort wäre ungültig und wurde nicht gesendet: %s", ue.Message)
	} else if err != nil {
		return err
	}
	if err := l.setState(ctx, c, change{State: next, By: string(evt.Sender), At: at, MessageID: msgID, Note: args}); err != nil {
		return err
	}
	return l.announceAnswer(ctx, c, evt, next, args)
}

// announceAnswer tells the case room who answered what (once per Matrix event).
func (l *link) announceAnswer(ctx context.Context, c *caseRecord, evt *event.Event, state, args string) error {
	text := fmt.Sprintf("%s Fall %s", stateIcon[state], stateLabel[state])
	if args != "" {
		text += ": " + displayArgs(args)
	}
	text += fmt.Sprintf(" von %s — wird an %s gesendet.", evt.Sender, l.peerName(ctx, c.Peer))
	return l.post(ctx, c.Room, "answer:"+string(evt.ID), text, "")
}

func displayArgs(args string) string {
	if args == "" {
		return ""
	}
	return "„" + args + "“"
}

func eventTime(evt *event.Event) time.Time {
	if evt.Timestamp > 0 {
		return time.UnixMilli(evt.Timestamp).UTC()
	}
	return time.Now().UTC()
}

func lastChange(c *caseRecord) string {
	if len(c.History) == 0 {
		return ""
	}
	h := c.History[len(c.History)-1]
	return fmt.Sprintf(" (durch %s, %s)", h.By, h.At.Format("02.01.2006 15:04 MST"))
}

// statusText is a case's state and its history: who changed what, when.
func statusText(c *caseRecord) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s (Fall-ID %s): %s\nVerlauf:", c.Title, c.ID, stateLabel[c.State])
	for _, h := range c.History {
		fmt.Fprintf(&b, "\n- %s %s: %s durch %s", h.At.Format("02.01.2006 15:04:05 MST"), stateIcon[h.State], stateLabel[h.State], h.By)
		if h.Note != "" {
			b.WriteString(" — " + h.Note)
		}
	}
	return b.String()
}

// adminCommand handles the admin room's commands.
func (l *link) adminCommand(ctx context.Context, evt *event.Event, cmd, args string) error {
	reply := func(text string) error { return l.post(ctx, evt.RoomID, "reply:"+string(evt.ID), text, "") }
	switch cmd {
	case "", "help":
		return reply(adminHelp)
	case "registry":
		list, err := l.client.Registry(ctx)
		if err != nil && len(list) == 0 {
			return userError("Das Register der UCRM ist nicht abrufbar: %s", userText(err))
		}
		sort.Slice(list, func(i, j int) bool { return list[i].ID < list[j].ID })
		var b strings.Builder
		b.WriteString("Leitstellen im Register der UCRM:")
		for _, p := range list {
			fmt.Fprintf(&b, "\n- %s — %s (%s), %s", p.ID, p.OperatorName, p.OperatorShortName, orDefault(p.Status, "Status unbekannt"))
			var apps []string
			for _, a := range p.SupportedApps {
				apps = append(apps, a.AppID+" "+a.AppVersion)
			}
			if len(apps) > 0 {
				b.WriteString(" · " + strings.Join(apps, ", "))
			}
		}
		if err != nil {
			b.WriteString("\nUngültige Einträge wurden ausgelassen: " + userText(err))
		}
		return reply(b.String())
	case "info":
		info, err := l.client.Info(ctx)
		if err != nil {
			return userError("Die UCRM antwortet nicht: %s", userText(err))
		}
		return reply(fmt.Sprintf("UCRM: %s %s von %s, API %s, Zustand %d", info.UCRMProductName, info.UCRMVersion, info.UCRMProvider, info.APIVersion, info.Status))
	case "handover":
		return l.handover(ctx, evt, args)
	}
	return userError("Unbekannter Befehl !%s. %s", cmd, adminHelp)
}

// handover hands a case over from Matrix: it builds an incident from the dispatcher's
// fields, validates it, opens the case room and queues the incident.
func (l *link) handover(ctx context.Context, evt *event.Event, args string) error {
	l.caseMu.Lock()
	defer l.caseMu.Unlock()
	dest, fields := args, ""
	if i := strings.IndexAny(args, " \t\n"); i >= 0 {
		dest, fields = args[:i], args[i+1:]
	}
	if !ucri.IsOID(dest) {
		return userError("!handover braucht die OID der Zielleitstelle als erstes Wort. %s", adminHelp)
	}
	if dest == l.cfg.OID {
		return userError("Das ist die eigene OID.")
	}
	caseID := ucri.DerivedMessageID(l.cfg.OID, "case", string(evt.ID))
	msgID := ucri.DerivedMessageID(l.cfg.OID, "handover", string(evt.ID))
	inc, err := parseHandover(fields, caseID, eventTime(evt))
	if err != nil {
		return userError("%v", err)
	}
	payload, err := ucri.NewPayload(inc)
	if err != nil {
		var ue *ucri.Error
		if errors.As(err, &ue) {
			return userError("Die Übergabe ist ungültig: %s", ue.Message)
		}
		return err
	}
	_, ok, err := l.registryEntry(ctx, dest, 10*time.Minute)
	if err == nil && !ok {
		_, ok, err = l.registryEntry(ctx, dest, registryRecheck) // it may be new
	}
	if err != nil {
		return err // retried: the UCRM may be back soon
	}
	if !ok {
		return userError("Die Leitstelle %s ist nicht im Register der UCRM; !registry listet die erreichbaren.", dest)
	}
	c, err := l.loadCase(ctx, caseID)
	if errors.Is(err, appservice.ErrNotFound) {
		c = &caseRecord{
			ID: caseID, Role: roleOutgoing, Peer: dest, State: stateHandedOver, Title: caseTitle(inc), Created: time.Now().UTC(),
			History: []change{{State: stateHandedOver, By: string(evt.Sender), At: eventTime(evt), MessageID: msgID}},
		}
	} else if err != nil {
		return err
	}
	peer := l.peerName(ctx, dest)
	if c.Room == "" {
		if c.Room, err = l.ensureCaseRoom(ctx, c, "116117-Fall "+c.ID+" · übergeben an "+peer, evt.Sender); err != nil {
			return err
		}
	}
	if _, err := l.queueSend(ctx, outgoing{MessageID: msgID, Dest: dest, Kind: kindIncident, Case: c.ID, Room: c.Room, By: string(evt.Sender), EventID: evt.ID, Message: inc}); err != nil {
		return err
	}
	if err := l.saveCase(ctx, c); err != nil {
		return err
	}
	if err := l.putStateEvent(ctx, c); err != nil {
		return err
	}
	text, html := renderIncident(inc, peer, false, roleOutgoing)
	if err := l.post(ctx, c.Room, "out:"+msgID+":summary", text, html); err != nil {
		return err
	}
	if err := l.postPayload(ctx, c, msgID, l.cfg.OID, "", payload); err != nil {
		return err
	}
	link := "https://matrix.to/#/" + string(c.Room)
	return l.post(ctx, evt.RoomID, "reply:"+string(evt.ID), fmt.Sprintf("📤 %s wird an %s übergeben: %s", c.Title, peer, link), "")
}

func orDefault(s, d string) string {
	if s == "" {
		return d
	}
	return s
}
