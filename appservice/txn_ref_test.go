package appservice

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"

	"maunium.net/go/mautrix"
	"maunium.net/go/mautrix/id"
)

type refRawTransaction struct {
	Events           []json.RawMessage `json:"events"`
	Ephemeral        []json.RawMessage `json:"ephemeral"`
	MSC2409Ephemeral []json.RawMessage `json:"de.sorunome.msc2409.ephemeral"`
	ToDevice         []json.RawMessage `json:"to_device"`
	MSC2409ToDevice  []json.RawMessage `json:"de.sorunome.msc2409.to_device"`

	DeviceLists        *mautrix.DeviceLists                           `json:"device_lists"`
	MSC3202DeviceLists *mautrix.DeviceLists                           `json:"org.matrix.msc3202.device_lists"`
	OTKCounts          map[id.UserID]map[id.DeviceID]mautrix.OTKCount `json:"device_one_time_keys_count"`
	MSC3202OTKCounts   map[id.UserID]map[id.DeviceID]mautrix.OTKCount `json:"org.matrix.msc3202.device_one_time_keys_count"`
}

type refEnvelope struct {
	EventID  *string `json:"event_id"`
	RoomID   *string `json:"room_id"`
	Type     *string `json:"type"`
	Sender   *string `json:"sender"`
	StateKey *string `json:"state_key"`
	ToUserID *string `json:"to_user_id"`
}

// refParseTransaction is ParseTransaction as it was before the single-pass parser (encoding/json
// into raw messages, then each event again); the differential tests hold the new one to it.
// It parses and checks the body of PUT /transactions. It rejects, with an
// error that names the offending event by index, anything the core could not journal or
// route: a body that is not a JSON object, a timeline event without event_id, room_id,
// type or sender, or identifiers that are not strings or are too long. Unknown top-level
// keys are ignored. To-device events (MSC2409) need type, sender and to_user_id.
func refParseTransaction(body []byte) (*Transaction, error) {
	body = bytes.TrimSpace(body)
	if len(body) == 0 || body[0] != '{' {
		return nil, fmt.Errorf("%w: body is not a JSON object", ErrBadTransaction)
	}
	var raw refRawTransaction
	if err := json.Unmarshal(body, &raw); err != nil {
		return nil, fmt.Errorf("%w: %s", ErrBadTransaction, describeJSONError(err))
	}
	txn := &Transaction{Events: make([]TxnEvent, 0, len(raw.Events))}
	for i, r := range raw.Events {
		evt, err := refParseEvent(r, true)
		if err != nil {
			return nil, fmt.Errorf("%w: events[%d]: %w", ErrBadTransaction, i, err)
		}
		txn.Events = append(txn.Events, evt)
	}
	eph, key := raw.Ephemeral, "ephemeral"
	if eph == nil {
		eph, key = raw.MSC2409Ephemeral, "de.sorunome.msc2409.ephemeral"
	}
	for i, r := range eph {
		evt, err := refParseEvent(r, false)
		if err != nil {
			return nil, fmt.Errorf("%w: %s[%d]: %w", ErrBadTransaction, key, i, err)
		}
		txn.Ephemeral = append(txn.Ephemeral, evt)
	}
	td, key := raw.ToDevice, "to_device"
	if td == nil {
		td, key = raw.MSC2409ToDevice, "de.sorunome.msc2409.to_device"
	}
	for i, r := range td {
		evt, err := refParseEvent(r, false)
		if err == nil && (evt.Sender == "" || evt.ToUserID == "") {
			err = errors.New("missing sender or to_user_id")
		}
		if err != nil {
			// Skipped, not refused: refusing the transaction would make the homeserver
			// retry it, and every event after it, forever.
			txn.Skipped = append(txn.Skipped, fmt.Sprintf("%s[%d]: %v", key, i, err))
			continue
		}
		txn.ToDevice = append(txn.ToDevice, evt)
	}
	if dl := raw.DeviceLists; dl != nil || raw.MSC3202DeviceLists != nil {
		if dl == nil {
			dl = raw.MSC3202DeviceLists
		}
		txn.DevicesChanged = dl.Changed
	}
	txn.OTKCounts = raw.OTKCounts
	if txn.OTKCounts == nil {
		txn.OTKCounts = raw.MSC3202OTKCounts
	}
	return txn, nil
}

func refParseEvent(r json.RawMessage, timeline bool) (TxnEvent, error) {
	r = bytes.TrimSpace(r)
	if len(r) == 0 || r[0] != '{' {
		return TxnEvent{}, errors.New("not a JSON object")
	}
	var env refEnvelope
	if err := json.Unmarshal(r, &env); err != nil {
		return TxnEvent{}, errors.New(describeJSONError(err))
	}
	evt := TxnEvent{Raw: r, StateKey: env.StateKey}
	fields := []struct {
		name     string
		val      *string
		dst      *string
		required bool
	}{
		{"event_id", env.EventID, &evt.EventID, timeline},
		{"room_id", env.RoomID, &evt.RoomID, timeline},
		{"type", env.Type, &evt.Type, true},
		{"sender", env.Sender, &evt.Sender, timeline},
		{"to_user_id", env.ToUserID, &evt.ToUserID, false},
	}
	for _, f := range fields {
		switch {
		case f.val == nil && f.required:
			return TxnEvent{}, fmt.Errorf("missing %s", f.name)
		case f.val == nil:
		case *f.val == "" && f.required:
			return TxnEvent{}, fmt.Errorf("empty %s", f.name)
		case len(*f.val) > maxIDLength:
			return TxnEvent{}, fmt.Errorf("%s longer than %d bytes", f.name, maxIDLength)
		default:
			*f.dst = *f.val
		}
	}
	return evt, nil
}
