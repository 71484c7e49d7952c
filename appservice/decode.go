package appservice

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"
	"strconv"
	"sync"

	jsonv2 "github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"
	jsonv1 "github.com/go-json-experiment/json/v1"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"

	"github.com/switchboard-matrix/switchboard/internal/store"
)

// decodeEvent turns a journaled payload into a mautrix event with parsed content.
//
// What modules can rely on is what mautrix's own decoding (json.Unmarshal into event.Event,
// then Content.ParseRaw) gives, field for field: Type with the Class of the event's kind, ID,
// Sender, RoomID, StateKey, Timestamp, Redacts, Unsigned, ToUserID/ToDeviceID, and Content
// with VeryRaw (the content's bytes) and Parsed (the typed content, nil when mautrix does
// not know the type or the content does not fit it; the As* helpers read it) -- with one
// difference: Content.Raw, the content as a map, is nil when Parsed is set, except for
// m.room.encrypted (mautrix's decryption reads it). Code that needs a key the typed content
// lacks reads VeryRaw (contentString does, for string values). Events of types mautrix does
// not parse, and content that does not fit its type, keep Raw as before. No module read Raw.
//
// It is about five times faster than mautrix's decoding for a message event: one pass of a
// streaming tokenizer over the event's top level, then the content (and Unsigned, when
// present) decoded by the encoding/json v2 prototype with encoding/json's semantics, and Raw
// (when built) with v2's default ones, which give the same map. An event that pass is not
// sure to decode exactly as mautrix would (a name in other case or with escapes, a repeated
// or unexpected field, a value of another kind, top-level prev_content, a decoder error)
// goes through mautrix's path instead (decodeEventSlow). decode_test.go holds the two to
// the same results.
func decodeEvent(row store.InboxEvent) (*event.Event, error) {
	if evt, ok := decodeEventFast(row); ok {
		return evt, nil
	}
	return decodeEventSlow(row)
}

// decodeEventSlow is mautrix's decoding of an event.
func decodeEventSlow(row store.InboxEvent) (*event.Event, error) {
	var evt event.Event
	if err := json.Unmarshal(row.Payload, &evt); err != nil {
		return nil, fmt.Errorf("failed to decode event: %w", err)
	}
	setClass(&evt, row.Kind)
	if err := evt.Content.ParseRaw(evt.Type); err != nil && !errors.Is(err, event.ErrUnsupportedContentType) {
		// Content that does not match its type's schema is still delivered raw.
		evt.Content.Parsed = nil
	}
	return &evt, nil
}

func setClass(evt *event.Event, kind string) {
	switch {
	case kind == kindEphemeral:
		evt.Type.Class = event.EphemeralEventType
		evt.Mautrix.EventSource = event.SourceEphemeral
	case evt.StateKey != nil:
		evt.Type.Class = event.StateEventType
		evt.Mautrix.EventSource = event.SourceTimeline
	default:
		evt.Type.Class = event.MessageEventType
		evt.Mautrix.EventSource = event.SourceTimeline
	}
}

// The top-level event fields decodeEventFast reads, by their exact JSON names.
const (
	fieldStateKey = iota
	fieldSender
	fieldType
	fieldTimestamp
	fieldID
	fieldRoomID
	fieldContent
	fieldRedacts
	fieldUnsigned
	fieldToUserID
	fieldToDeviceID
	fieldSlow // a field only decodeEventSlow handles
	fieldOther
)

var eventFieldNames = map[string]int{
	"state_key": fieldStateKey, "sender": fieldSender, "type": fieldType,
	"origin_server_ts": fieldTimestamp, "event_id": fieldID, "room_id": fieldRoomID,
	"content": fieldContent, "redacts": fieldRedacts, "unsigned": fieldUnsigned,
	"to_user_id": fieldToUserID, "to_device_id": fieldToDeviceID,
	"msc4354_sticky": fieldSlow, "prev_content": fieldSlow, "replaces_state": fieldSlow,
}

// eventField classifies a quoted top-level name. encoding/json matches field names
// case-insensitively, so a name that could fold to a field's is left to the slow path.
func eventField(quoted []byte) int {
	name := quoted[1 : len(quoted)-1]
	if f, ok := eventFieldNames[string(name)]; ok {
		return f
	}
	if bytes.IndexByte(name, '\\') >= 0 || !isASCIINoFold(name) {
		return fieldSlow
	}
	return fieldOther
}

// eventDecoder is a pooled tokenizer; buf is what it reads (the payload, not copied).
type eventDecoder struct {
	buf bytes.Buffer
	dec *jsontext.Decoder
}

var eventDecoders = sync.Pool{New: func() any {
	ed := new(eventDecoder)
	ed.dec = jsontext.NewDecoder(&ed.buf)
	return ed
}}

// decodeOpts are the tokenizer's: like encoding/json, accept invalid UTF-8 (the content
// decoders mangle it as encoding/json does). Duplicate names are refused, which sends such
// events to the slow path.
var decodeOpts = jsontext.AllowInvalidUTF8(true)

// parsedOpts decode Parsed and Unsigned with encoding/json's semantics, as mautrix does.
var parsedOpts = jsonv2.JoinOptions(jsonv1.DefaultOptionsV1(), jsontext.AllowInvalidUTF8(true))

func decodeEventFast(row store.InboxEvent) (*event.Event, bool) {
	ed := eventDecoders.Get().(*eventDecoder)
	defer func() {
		ed.buf = bytes.Buffer{}
		ed.dec.Reset(&ed.buf) // drop the payload
		eventDecoders.Put(ed)
	}()
	ed.buf = *bytes.NewBuffer(row.Payload)
	ed.dec.Reset(&ed.buf, decodeOpts)
	dec := ed.dec

	var (
		evt                  event.Event
		content, unsigned    jsontext.Value
		seen                 uint16
		stateKey             string
		hasStateKey, hasType bool
	)
	if dec.PeekKind() != '{' {
		return nil, false
	}
	if _, err := dec.ReadToken(); err != nil {
		return nil, false
	}
	for dec.PeekKind() == '"' {
		name, err := dec.ReadValue()
		if err != nil {
			return nil, false
		}
		f := eventField(name)
		switch {
		case f == fieldSlow:
			return nil, false
		case f == fieldOther:
			if dec.SkipValue() != nil {
				return nil, false
			}
			continue
		case seen&(1<<f) != 0:
			return nil, false
		}
		seen |= 1 << f
		kind := dec.PeekKind()
		v, err := dec.ReadValue()
		if err != nil {
			return nil, false
		}
		switch f {
		case fieldContent, fieldUnsigned:
			if kind != '{' {
				return nil, false
			}
			if f == fieldContent {
				content = v
			} else {
				unsigned = v
			}
		case fieldTimestamp:
			if kind != '0' {
				return nil, false
			}
			ts, err := strconv.ParseInt(string(v), 10, 64)
			if err != nil {
				return nil, false
			}
			evt.Timestamp = ts
		default:
			if kind != '"' {
				return nil, false
			}
			s := unquote(v)
			switch f {
			case fieldStateKey:
				stateKey, hasStateKey = s, true
			case fieldSender:
				evt.Sender = id.UserID(s)
			case fieldType:
				evt.Type.Type, hasType = s, true
			case fieldID:
				evt.ID = id.EventID(s)
			case fieldRoomID:
				evt.RoomID = id.RoomID(s)
			case fieldRedacts:
				evt.Redacts = id.EventID(s)
			case fieldToUserID:
				evt.ToUserID = id.UserID(s)
			case fieldToDeviceID:
				evt.ToDeviceID = id.DeviceID(s)
			}
		}
	}
	if _, err := dec.ReadToken(); err != nil {
		return nil, false
	}
	if _, err := dec.ReadToken(); err != io.EOF {
		return nil, false
	}
	if !hasType {
		return nil, false // mautrix guesses a class for the empty type; leave it to it
	}
	if hasStateKey {
		evt.StateKey = &stateKey
	}
	if unsigned != nil {
		if jsonv2.Unmarshal(unsigned, &evt.Unsigned, parsedOpts) != nil {
			return nil, false
		}
	}
	setClass(&evt, row.Kind)
	if content != nil {
		evt.Content.VeryRaw = bytes.Clone(content)
		parsed := false
		if structType, ok := event.TypeMap[evt.Type]; ok {
			p := reflect.New(structType).Interface()
			if jsonv2.Unmarshal(evt.Content.VeryRaw, p, parsedOpts) == nil {
				evt.Content.Parsed, parsed = p, true
			}
		}
		// Raw only where modules may need it (see the comment on decodeEvent). mautrix
		// refuses an event whose content has a number beyond float64 (it builds Raw), so
		// such content is decoded into Raw too, to be refused the same way.
		if !parsed || evt.Type == event.EventEncrypted || mayOverflowFloat(content) {
			// v2's default decoding into a map is encoding/json's (numbers as float64,
			// invalid UTF-8 mangled), except that it refuses repeated names, which the
			// slow path then takes.
			if jsonv2.Unmarshal(evt.Content.VeryRaw, &evt.Content.Raw, decodeOpts) != nil {
				return nil, false
			}
		}
	}
	return &evt, true
}

// mayOverflowFloat reports whether the JSON text may hold a number too large for a float64:
// one with an exponent or with 300 digits or more (it may report strings that look so).
func mayOverflowFloat(text []byte) bool {
	digits := 0
	for i, c := range text {
		switch {
		case '0' <= c && c <= '9':
			if digits++; digits >= 300 {
				return true
			}
		case (c == 'e' || c == 'E') && digits > 0 && i+1 < len(text) && (text[i+1] == '-' || text[i+1] == '+' || '0' <= text[i+1] && text[i+1] <= '9'):
			return true
		default:
			digits = 0
		}
	}
	return false
}

// contentString returns the string under key at the top level of an event's content, or ""
// when there is none: from Content.Raw when it was built (by mautrix, or by decodeEvent for
// the types it keeps Raw for), else from Content.VeryRaw, as Raw would have had it.
func contentString(c *event.Content, key string) string {
	if c.Raw != nil {
		s, _ := c.Raw[key].(string)
		return s
	}
	dec := jsontext.NewDecoder(bytes.NewBuffer(c.VeryRaw), decodeOpts, jsontext.AllowDuplicateNames(true))
	if dec.PeekKind() != '{' {
		return ""
	}
	if _, err := dec.ReadToken(); err != nil {
		return ""
	}
	var val string
	for dec.PeekKind() == '"' {
		name, err := dec.ReadValue()
		if err != nil {
			return ""
		}
		v, err := dec.ReadValue()
		if err != nil {
			return ""
		}
		if unquote(name) == key { // the last occurrence wins, as in Raw
			val = ""
			if v.Kind() == '"' {
				val = unquote(v)
			}
		}
	}
	return val
}
