package appservice

import (
	"encoding/json"
	"errors"
	"fmt"

	"maunium.net/go/mautrix/event"

	"github.com/switchboard-matrix/switchboard/internal/store"
)

// decodeEvent turns a journaled payload into a mautrix event with parsed content.
func decodeEvent(row store.InboxEvent) (*event.Event, error) {
	var evt event.Event
	if err := json.Unmarshal(row.Payload, &evt); err != nil {
		return nil, fmt.Errorf("failed to decode event: %w", err)
	}
	switch {
	case row.Kind == kindEphemeral:
		evt.Type.Class = event.EphemeralEventType
		evt.Mautrix.EventSource = event.SourceEphemeral
	case evt.StateKey != nil:
		evt.Type.Class = event.StateEventType
		evt.Mautrix.EventSource = event.SourceTimeline
	default:
		evt.Type.Class = event.MessageEventType
		evt.Mautrix.EventSource = event.SourceTimeline
	}
	if err := evt.Content.ParseRaw(evt.Type); err != nil && !errors.Is(err, event.ErrUnsupportedContentType) {
		// Content that does not match its type's schema is still delivered raw.
		evt.Content.Parsed = nil
	}
	return &evt, nil
}
