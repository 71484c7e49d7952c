// Package testmodule is a module for Switchboard's own end-to-end and crash tests. Its side
// effect for every Matrix message is a row keyed by event ID (so the tests can count lost
// and doubled handling), and it can pull numbered messages from a fake remote network over
// HTTP and send them to a Matrix room (so the tests can count lost and doubled sends). It is
// wired only into the test binary, never into switchboard itself.
package testmodule

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"sync"
	"time"

	"github.com/rs/zerolog"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"

	"github.com/switchboard-matrix/switchboard/appservice"
	"github.com/switchboard-matrix/switchboard/internal/store"
	"github.com/switchboard-matrix/switchboard/registration"
)

// ID is the module's ID.
const ID = "testmod"

// GhostPrefix is the localpart prefix of the module's ghosts.
const GhostPrefix = "_test_"

// Config configures the test module.
type Config struct {
	// RemoteURL is the fake remote network: GET RemoteURL?after=N returns a JSON array of
	// RemoteMessage with IDs > N. Empty disables the feed.
	RemoteURL string `yaml:"remote_url"`
	// Room receives the remote messages.
	Room string `yaml:"room"`
	// Ghost is the localpart (after GhostPrefix) that sends them.
	Ghost string `yaml:"ghost"`
	// FailBodies makes the handler fail for messages with this body (to test failure
	// reports).
	FailBody string `yaml:"fail_body"`
	// EffectURL, when set, receives a POST for every message handled (?event=ID&pid=PID):
	// a side effect outside the database, for tests that watch who acts when (Effects
	// keeps the count in the database either way).
	EffectURL string `yaml:"effect_url"`
}

// RemoteMessage is one message of the fake remote network.
type RemoteMessage struct {
	Seq  int    `json:"seq"`
	Body string `json:"body"`
}

// Module is the test module.
type Module struct {
	cfg   Config
	db    *store.Store
	host  appservice.Host
	stop  context.CancelFunc
	wg    sync.WaitGroup
	mu    sync.Mutex
	state string
}

// New returns the module; db is where it records its side effects.
func New(cfg Config, db *store.Store) *Module { return &Module{cfg: cfg, db: db, state: "idle"} }

// ID implements appservice.Module.
func (m *Module) ID() string { return ID }

// Namespaces implements appservice.Module.
func (m *Module) Namespaces() registration.Namespaces {
	return registration.Namespaces{Users: []registration.Pattern{{Localpart: GhostPrefix + ".+", Exclusive: true}}}
}

// Start implements appservice.Module.
func (m *Module) Start(ctx context.Context, host appservice.Host) error {
	m.host = host
	_, err := m.db.DB().ExecContext(ctx, `CREATE TABLE IF NOT EXISTS testmod_effects (
		event_id TEXT PRIMARY KEY, room_id TEXT NOT NULL, body TEXT NOT NULL, deliveries INTEGER NOT NULL)`)
	if err != nil {
		return fmt.Errorf("testmodule: failed to create table: %w", err)
	}
	if m.cfg.RemoteURL != "" {
		fctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
		m.stop = cancel
		m.wg.Add(1)
		go m.feed(fctx)
	}
	return nil
}

// Stop implements appservice.Module.
func (m *Module) Stop(context.Context) error {
	if m.stop != nil {
		m.stop()
	}
	m.wg.Wait()
	return nil
}

// Status implements appservice.StatusReporter.
func (m *Module) Status(context.Context) appservice.ModuleStatus {
	m.mu.Lock()
	defer m.mu.Unlock()
	return appservice.ModuleStatus{Connected: true, State: m.state}
}

// HandleEvent implements appservice.Module.
func (m *Module) HandleEvent(ctx context.Context, evt *event.Event) error {
	switch evt.Type {
	case event.StateMember:
		target := id.UserID(evt.GetStateKey())
		if evt.Content.AsMember().Membership != event.MembershipInvite {
			return nil
		}
		localpart, _, _ := target.Parse()
		ghost, err := m.host.Ghost(localpart)
		if err != nil {
			return err
		}
		if err := ghost.JoinRoom(ctx, evt.RoomID); err != nil {
			return err
		}
		if err := m.host.Store().PutKV(ctx, "ghost:"+evt.RoomID.String(), target.String()); err != nil {
			return err
		}
		return m.host.Store().PutPortal(ctx, "room:"+evt.RoomID.String(), evt.RoomID)
	case event.EventMessage:
		body := evt.Content.AsMessage().Body
		if m.cfg.FailBody != "" && body == m.cfg.FailBody {
			return fmt.Errorf("%w: the test remote refuses %q", appservice.ErrPermanent, body)
		}
		if m.cfg.EffectURL != "" {
			if err := m.postEffect(ctx, evt.ID); err != nil {
				return err
			}
		}
		_, err := m.db.DB().ExecContext(ctx, `INSERT INTO testmod_effects (event_id, room_id, body, deliveries)
			VALUES ($1, $2, $3, 1) ON CONFLICT (event_id) DO UPDATE SET deliveries = testmod_effects.deliveries + 1`,
			evt.ID.String(), evt.RoomID.String(), body)
		return err
	}
	return nil
}

// feed pulls remote messages and enqueues them; the cursor (the remote "ack") is stored
// only after the messages are durably in the outbox.
func (m *Module) feed(ctx context.Context) {
	defer m.wg.Done()
	log := zerolog.Ctx(ctx)
	st := m.host.Store()
	ghost := id.NewUserID(GhostPrefix+m.cfg.Ghost, m.host.Domain())
	for ctx.Err() == nil {
		cursor, _ := st.GetKV(ctx, "cursor")
		after, _ := strconv.Atoi(cursor)
		msgs, err := m.fetch(ctx, after)
		if err == nil && len(msgs) > 0 {
			for _, rm := range msgs {
				content := event.MessageEventContent{MsgType: event.MsgText, Body: rm.Body}
				if err = m.host.Enqueue(ctx, appservice.Message{
					RoomID: id.RoomID(m.cfg.Room), Sender: ghost, RemoteID: "remote-" + strconv.Itoa(rm.Seq), Content: &content,
				}); err != nil {
					break
				}
				after = rm.Seq
			}
			if perr := st.PutKV(ctx, "cursor", strconv.Itoa(after)); perr != nil && err == nil {
				err = perr
			}
		}
		m.mu.Lock()
		m.state = "feed at " + strconv.Itoa(after)
		m.mu.Unlock()
		if err != nil && ctx.Err() == nil {
			log.Warn().Err(err).Msg("Remote feed failed")
		}
		select {
		case <-ctx.Done():
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// postEffect tells the fake remote network that this process handled evt.
func (m *Module) postEffect(ctx context.Context, evt id.EventID) error {
	q := url.Values{"event": {evt.String()}, "pid": {strconv.Itoa(os.Getpid())}}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, m.cfg.EffectURL+"?"+q.Encode(), nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent {
		return errors.New("the effect endpoint answered " + resp.Status)
	}
	return nil
}

func (m *Module) fetch(ctx context.Context, after int) ([]RemoteMessage, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, m.cfg.RemoteURL+"?after="+strconv.Itoa(after), nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, errors.New("remote answered " + resp.Status)
	}
	var msgs []RemoteMessage
	return msgs, json.NewDecoder(resp.Body).Decode(&msgs)
}

// Effects returns, per event ID, how many times the handler ran for it.
func Effects(ctx context.Context, db *store.Store) (map[string]int, error) {
	rows, err := db.DB().QueryContext(ctx, `SELECT event_id, deliveries FROM testmod_effects`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[string]int{}
	for rows.Next() {
		var eid string
		var n int
		if err := rows.Scan(&eid, &n); err != nil {
			return nil, err
		}
		out[eid] = n
	}
	return out, rows.Err()
}

// FailureSender implements appservice.FailureSender: failures in a room are reported by
// the ghost that joined it first, so that rooms without the bot get them too.
func (m *Module) FailureSender(ctx context.Context, roomID id.RoomID) id.UserID {
	u, _ := m.host.Store().GetKV(ctx, "ghost:"+roomID.String())
	return id.UserID(u)
}

// Host returns the host the module was started with (for in-process tests).
func (m *Module) Host() appservice.Host { return m.host }
