package testmodule

import (
	"context"
	"fmt"
	"sync/atomic"

	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"

	"github.com/switchboard-matrix/switchboard/appservice"
	"github.com/switchboard-matrix/switchboard/registration"
)

// NoopID is the ID of the no-op module.
const NoopID = "noop"

// NoopGhostPrefix is the localpart prefix of the no-op module's (never used) ghosts.
const NoopGhostPrefix = "_noop_"

// NoopConfig configures the no-op module.
type NoopConfig struct {
	// Rooms are recorded as the module's portals at start, so that the core routes their
	// events to it.
	Rooms []string `yaml:"rooms"`
}

// Noop is a module that does nothing with the events routed to it but count them: the
// process-level ingest benchmark (internal/ingestbench) measures the core with it.
type Noop struct {
	cfg     NoopConfig   // immutable
	handled atomic.Int64 // events handed to HandleEvent
}

// NewNoop returns the no-op module.
func NewNoop(cfg NoopConfig) *Noop { return &Noop{cfg: cfg} }

// ID implements appservice.Module.
func (m *Noop) ID() string { return NoopID }

// Namespaces implements appservice.Module.
func (m *Noop) Namespaces() registration.Namespaces {
	return registration.Namespaces{Users: []registration.Pattern{{Localpart: NoopGhostPrefix + ".+", Exclusive: true}}}
}

// Start implements appservice.Module: it records each configured room as a portal.
func (m *Noop) Start(ctx context.Context, host appservice.Host) error {
	for _, room := range m.cfg.Rooms {
		if err := host.Store().PutPortal(ctx, "room:"+room, id.RoomID(room)); err != nil {
			return fmt.Errorf("noop: failed to record the portal of %s: %w", room, err)
		}
	}
	return nil
}

// Stop implements appservice.Module.
func (m *Noop) Stop(context.Context) error { return nil }

// HandleEvent implements appservice.Module: it counts the event.
func (m *Noop) HandleEvent(context.Context, *event.Event) error {
	m.handled.Add(1)
	return nil
}

// Handled is the number of events handed to the module since it was made.
func (m *Noop) Handled() int64 { return m.handled.Load() }
