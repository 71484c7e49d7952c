package jitsi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/rs/zerolog"
	"maunium.net/go/mautrix/id"

	"github.com/switchboard-matrix/switchboard/appservice"
	"github.com/switchboard-matrix/switchboard/bridges/jitsi/meeting"
	"github.com/switchboard-matrix/switchboard/bridges/jitsi/muc"
)

// Who is in the call: the watcher (package muc) reports each conference's occupants, the
// tracker (package meeting) turns them into a meeting's start, changes and end, and this
// file writes them into the room: the participants state event (latest wins, written by a
// background loop that retries) and a notice at the start and at the end, keyed by the
// conference and the meeting's start so that each is posted once.

// participantsContent is the content of net.switchboard.jitsi.participants.
type participantsContent struct {
	Conference   string            `json:"conference_id"`
	WidgetID     string            `json:"widget_id"`
	Active       bool              `json:"active"`
	StartedAt    int64             `json:"started_at,omitempty"` // ms since the epoch
	Participants []participantJSON `json:"participants"`
}

type participantJSON struct {
	Name   string    `json:"name"`
	UserID id.UserID `json:"user_id,omitempty"`
	Since  int64     `json:"since"` // ms since the epoch
}

// activeMeeting is a started meeting in the store (for a restart in its middle).
type activeMeeting struct {
	StartedAt time.Time `json:"started_at"`
}

// participantsWriter keeps the latest participants content per room and writes it.
type participantsWriter struct {
	mu      sync.Mutex
	pending map[id.RoomID]pendingState
	kick    chan struct{}
}

type pendingState struct {
	widgetID string
	content  any
}

// occupantHandler is the Bridge as the watcher's muc.Handler.
type occupantHandler Bridge

// Occupants implements muc.Handler.
func (h *occupantHandler) Occupants(_ context.Context, conf string, occupants []muc.Occupant) {
	b := (*Bridge)(h)
	ps := make([]meeting.Participant, 0, len(occupants))
	for _, o := range occupants {
		p := meeting.Participant{Nick: o.Nick, Name: o.DisplayName}
		if p.Name == "" {
			p.Name = o.Nick
		}
		if u := id.UserID(o.UserID); strings.HasPrefix(o.UserID, "@") {
			if _, _, err := u.Parse(); err == nil {
				p.UserID = u.String()
			}
		}
		if p.UserID == "" {
			p.UserID = b.verifiedUser(mucName(conf), p.Name).String()
		}
		ps = append(ps, p)
	}
	b.tracker.Update(mucName(conf), ps)
}

// onMeetingEvent is the tracker's emit: it is called in order per conference.
func (b *Bridge) onMeetingEvent(ev meeting.Event) {
	ctx := b.loops.Context()
	if ctx == nil {
		return
	}
	log := zerolog.Ctx(ctx).With().Str("conference", ev.Conference).Logger()
	roomID, m, err := b.meetingRoom(ctx, ev.Conference)
	if errors.Is(err, appservice.ErrNotFound) {
		return // the widget was removed
	} else if err != nil {
		log.Error().Err(err).Msg("Failed to find the room of a Jitsi conference")
		return
	}
	b.emitMu.Lock()
	defer b.emitMu.Unlock()
	started := ev.StartedAt.UnixMilli()
	key := fmt.Sprintf("%s:%d", ev.Conference, started)
	switch ev.Kind {
	case meeting.Started:
		raw, _ := json.Marshal(activeMeeting{StartedAt: ev.StartedAt})
		if err := b.host.Store().PutKV(ctx, storeMeeting+ev.Conference, string(raw)); err != nil {
			log.Error().Err(err).Msg("Failed to record a started meeting")
		}
		if err := b.notice(ctx, roomID, "start:"+key, "", "📞 The meeting has started: "+b.meetingURL(ev.Conference)); err != nil {
			log.Error().Err(err).Msg("Failed to queue the meeting's start notice")
		}
	case meeting.Ended:
		if err := b.notice(ctx, roomID, "end:"+key, "", "The meeting has ended after "+duration(ev.EndedAt.Sub(ev.StartedAt))+"."); err != nil {
			log.Error().Err(err).Msg("Failed to queue the meeting's end notice")
		}
		if err := b.host.Store().DeleteKV(ctx, storeMeeting+ev.Conference); err != nil {
			log.Error().Err(err).Msg("Failed to record an ended meeting")
		}
	}
	if !*b.cfg.ParticipantsState {
		return
	}
	content := participantsContent{Conference: m.Conference, WidgetID: m.WidgetID, Participants: []participantJSON{}}
	if ev.Kind != meeting.Ended {
		content.Active = true
		content.StartedAt = started
		for _, p := range ev.Participants {
			content.Participants = append(content.Participants, participantJSON{Name: p.Name, UserID: id.UserID(p.UserID), Since: p.Since.UnixMilli()})
		}
	}
	b.writer.put(roomID, m.WidgetID, content)
}

// meetingRoom finds the room and widget of a conference.
func (b *Bridge) meetingRoom(ctx context.Context, conf string) (id.RoomID, roomMeeting, error) {
	room, err := b.host.Store().GetKV(ctx, storeConference+conf)
	if err != nil {
		return "", roomMeeting{}, err
	}
	m, err := b.storedMeeting(ctx, id.RoomID(room))
	if err != nil {
		return "", m, err
	}
	if mucName(m.Conference) != conf {
		return "", m, appservice.ErrNotFound
	}
	return id.RoomID(room), m, nil
}

// restoreMeetings watches every conference with a widget again and tells the tracker of
// the meetings that were going on when Switchboard stopped.
func (b *Bridge) restoreMeetings(ctx context.Context) error {
	st := b.host.Store()
	confs, err := st.ListKV(ctx, storeConference, 0)
	if err != nil {
		return fmt.Errorf("jitsi: failed to list the conferences: %w", err)
	}
	for _, kv := range confs {
		b.watcher.Watch(strings.TrimPrefix(kv.Key, storeConference))
	}
	active, err := st.ListKV(ctx, storeMeeting, 0)
	if err != nil {
		return fmt.Errorf("jitsi: failed to list the meetings: %w", err)
	}
	for _, kv := range active {
		var m activeMeeting
		if err := json.Unmarshal([]byte(kv.Value), &m); err != nil {
			zerolog.Ctx(ctx).Warn().Err(err).Str("key", kv.Key).Msg("Ignored a bad stored meeting")
			continue
		}
		b.tracker.Restore(strings.TrimPrefix(kv.Key, storeMeeting), m.StartedAt)
	}
	return nil
}

// put records the latest participants content of a room and wakes the writer.
func (w *participantsWriter) put(roomID id.RoomID, widgetID string, content any) {
	w.mu.Lock()
	w.pending[roomID] = pendingState{widgetID: widgetID, content: content}
	w.mu.Unlock()
	select {
	case w.kick <- struct{}{}:
	default:
	}
}

// run writes pending participants states, retrying with backoff while the homeserver
// fails; a newer content replaces an unwritten older one.
func (b *Bridge) runParticipantsWriter(ctx context.Context) {
	w := &b.writer
	backoff := time.Second
	for {
		w.mu.Lock()
		batch := w.pending
		w.pending = map[id.RoomID]pendingState{}
		w.mu.Unlock()
		failed := false
		for roomID, p := range batch {
			if _, err := b.bot.SendState(ctx, roomID, participantsType, p.widgetID, p.content); err != nil {
				zerolog.Ctx(ctx).Warn().Err(err).Stringer("room_id", roomID).Msg("Failed to write a meeting's participants; will retry")
				failed = true
				w.mu.Lock()
				if _, newer := w.pending[roomID]; !newer {
					w.pending[roomID] = p
				}
				w.mu.Unlock()
			}
		}
		wait := time.Duration(-1)
		if failed {
			wait, backoff = backoff, min(backoff*2, time.Minute)
		} else {
			backoff = time.Second
		}
		var timer <-chan time.Time
		if wait >= 0 {
			timer = time.After(wait)
		}
		select {
		case <-ctx.Done():
			return
		case <-w.kick:
		case <-timer:
		}
	}
}

// duration says how long a meeting took, in words.
func duration(d time.Duration) string {
	switch d = d.Round(time.Minute); {
	case d < time.Minute:
		return "less than a minute"
	case d == time.Minute:
		return "1 minute"
	case d < time.Hour:
		return fmt.Sprintf("%d minutes", int(d.Minutes()))
	}
	h, m := int(d.Hours()), int(d.Minutes())%60
	if m == 0 {
		return fmt.Sprintf("%d h", h)
	}
	return fmt.Sprintf("%d h %d min", h, m)
}
