package appservice

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"unicode/utf8"

	"github.com/go-json-experiment/json/jsontext"

	"maunium.net/go/mautrix"
	"maunium.net/go/mautrix/id"
)

// ErrBadTransaction is wrapped by every error ParseTransaction returns.
var ErrBadTransaction = errors.New("appservice: bad transaction")

// Transaction is a homeserver transaction as journaled: the raw JSON of each event with the
// few fields the core routes by.
type Transaction struct {
	Events    []TxnEvent // timeline events ("events")
	Ephemeral []TxnEvent // typing, receipts, presence ("ephemeral" or the MSC2409 key)
	// ToDevice are to-device events for Switchboard's devices ("to_device" or the MSC2409
	// key), each with to_user_id; journaled like the other events.
	ToDevice []TxnEvent
	// DevicesChanged lists users whose device lists changed ("device_lists" or the MSC3202
	// key); OTKCounts are the one-time-key counts of Switchboard's devices (MSC3202).
	DevicesChanged []id.UserID
	OTKCounts      map[id.UserID]map[id.DeviceID]mautrix.OTKCount
	// Skipped describes malformed to-device events that were left out.
	Skipped []string
}

// TxnEvent is one event of a transaction.
type TxnEvent struct {
	EventID  string // empty for ephemeral and to-device events
	RoomID   string // may be empty for ephemeral events (presence)
	Type     string
	Sender   string // may be empty for ephemeral events
	StateKey *string
	ToUserID string          // to-device events only
	Raw      json.RawMessage // the event exactly as received
}

// rareParts are the top-level values other than the event arrays. They are rare and small,
// so they are decoded with encoding/json exactly as before (see decodeRare).
type rareParts struct {
	DeviceLists        *mautrix.DeviceLists                           `json:"device_lists"`
	MSC3202DeviceLists *mautrix.DeviceLists                           `json:"org.matrix.msc3202.device_lists"`
	OTKCounts          map[id.UserID]map[id.DeviceID]mautrix.OTKCount `json:"device_one_time_keys_count"`
	MSC3202OTKCounts   map[id.UserID]map[id.DeviceID]mautrix.OTKCount `json:"org.matrix.msc3202.device_one_time_keys_count"`
}

// The top-level keys ParseTransaction reads, as encoding/json matched them: exactly or, failing
// that, case-insensitively.
var (
	txnArrayKeys = [...]string{"events", "ephemeral", "de.sorunome.msc2409.ephemeral", "to_device", "de.sorunome.msc2409.to_device"}
	txnRareKeys  = [...]string{"device_lists", "org.matrix.msc3202.device_lists", "device_one_time_keys_count", "org.matrix.msc3202.device_one_time_keys_count"}
	// envelopeKeys are the event fields the core routes by, in the order parseEvent checks them.
	envelopeKeys = [...]string{"event_id", "room_id", "type", "sender", "to_user_id", "state_key"}
)

const (
	arrEvents = iota
	arrEphemeral
	arrMSC2409Ephemeral
	arrToDevice
	arrMSC2409ToDevice
)

const (
	envEventID = iota
	envRoomID
	envType
	envSender
	envToUserID
	envStateKey
)

// maxIDLength bounds the identifiers the core stores (the spec limits event and room IDs to
// 255 bytes).
const maxIDLength = 255

// ParseTransaction parses and checks the body of PUT /transactions. It rejects, with an
// error that names the offending event by index, anything the core could not journal or
// route: a body that is not a JSON object, a timeline event without event_id, room_id,
// type or sender, or identifiers that are not strings or are too long. Unknown top-level
// keys are ignored. To-device events (MSC2409) need type, sender and to_user_id.
//
// It reads the body once, with a streaming tokenizer, and takes each event's raw JSON as a
// slice of body (no copy). Its results and errors are those of the encoding/json version it
// replaced (kept in txn_ref_test.go, held to it by a differential fuzz test): encoding/json's
// leniency (invalid UTF-8, duplicate names with the last one winning, case-insensitive
// names) and its order of errors (a syntax error anywhere, then the first type error, then
// the first bad event).
func ParseTransaction(body []byte) (*Transaction, error) {
	body = bytes.TrimSpace(body)
	if len(body) == 0 || body[0] != '{' {
		return nil, fmt.Errorf("%w: body is not a JSON object", ErrBadTransaction)
	}
	p := txnParser{body: body}
	if err := p.parse(); err != nil {
		return nil, fmt.Errorf("%w: %s", ErrBadTransaction, err.Error())
	}
	txn := &Transaction{Events: make([]TxnEvent, 0, len(p.arrays[arrEvents]))}
	for i, pe := range p.arrays[arrEvents] {
		if pe.err != nil {
			return nil, fmt.Errorf("%w: events[%d]: %w", ErrBadTransaction, i, pe.err)
		}
		txn.Events = append(txn.Events, pe.evt)
	}
	eph, key := p.arrays[arrEphemeral], txnArrayKeys[arrEphemeral]
	if eph == nil {
		eph, key = p.arrays[arrMSC2409Ephemeral], txnArrayKeys[arrMSC2409Ephemeral]
	}
	for i, pe := range eph {
		if pe.err != nil {
			return nil, fmt.Errorf("%w: %s[%d]: %w", ErrBadTransaction, key, i, pe.err)
		}
		txn.Ephemeral = append(txn.Ephemeral, pe.evt)
	}
	td, key := p.arrays[arrToDevice], txnArrayKeys[arrToDevice]
	if td == nil {
		td, key = p.arrays[arrMSC2409ToDevice], txnArrayKeys[arrMSC2409ToDevice]
	}
	for i, pe := range td {
		err := pe.err
		if err == nil && (pe.evt.Sender == "" || pe.evt.ToUserID == "") {
			err = errors.New("missing sender or to_user_id")
		}
		if err != nil {
			// Skipped, not refused: refusing the transaction would make the homeserver
			// retry it, and every event after it, forever.
			txn.Skipped = append(txn.Skipped, fmt.Sprintf("%s[%d]: %v", key, i, err))
			continue
		}
		txn.ToDevice = append(txn.ToDevice, pe.evt)
	}
	if dl := p.rare.DeviceLists; dl != nil || p.rare.MSC3202DeviceLists != nil {
		if dl == nil {
			dl = p.rare.MSC3202DeviceLists
		}
		txn.DevicesChanged = dl.Changed
	}
	txn.OTKCounts = p.rare.OTKCounts
	if txn.OTKCounts == nil {
		txn.OTKCounts = p.rare.MSC3202OTKCounts
	}
	return txn, nil
}

// parsedEvent is an event of an array with either its envelope or why it is unusable.
type parsedEvent struct {
	evt TxnEvent
	err error
}

// txnParser is one pass of ParseTransaction over a body.
type txnParser struct {
	body    []byte
	dec     *jsontext.Decoder
	typeErr error // the first value of the wrong JSON kind, as encoding/json reported it
	// arrays holds the events of each of txnArrayKeys; nil when absent or null.
	arrays [len(txnArrayKeys)][]parsedEvent
	rare   rareParts
}

func (p *txnParser) parse() error {
	p.dec = jsontext.NewDecoder(bytes.NewBuffer(p.body),
		jsontext.AllowInvalidUTF8(true), jsontext.AllowDuplicateNames(true))
	if err := p.object(); err != nil {
		return p.syntaxError(err)
	}
	if _, err := p.dec.ReadToken(); err != io.EOF {
		return p.syntaxError(err)
	}
	return p.typeErr
}

// object reads the top-level object.
func (p *txnParser) object() error {
	if _, err := p.dec.ReadToken(); err != nil {
		return err
	}
	for p.dec.PeekKind() == '"' {
		name, err := p.dec.ReadValue()
		if err != nil {
			return err
		}
		if i := matchKey(name, txnArrayKeys[:]); i >= 0 {
			err = p.array(i)
		} else if i := matchKey(name, txnRareKeys[:]); i >= 0 {
			err = p.decodeRare(txnRareKeys[i])
		} else {
			err = p.dec.SkipValue()
		}
		if err != nil {
			return err
		}
	}
	_, err := p.dec.ReadToken() // '}' or the syntax error
	return err
}

// array reads the value of txnArrayKeys[i]. Like encoding/json, a later occurrence of the
// key replaces an earlier one and null clears it.
func (p *txnParser) array(i int) error {
	switch k := p.dec.PeekKind(); k {
	case 'n':
		p.arrays[i] = nil
		return p.dec.SkipValue()
	case '[':
	default:
		p.setTypeErr(txnArrayKeys[i], "an array", k)
		return p.dec.SkipValue()
	}
	if _, err := p.dec.ReadToken(); err != nil {
		return err
	}
	events := []parsedEvent{}
	if i == arrEvents {
		events = make([]parsedEvent, 0, 128)
	}
	for p.dec.PeekKind() != ']' {
		pe, err := p.event(i == arrEvents)
		if err != nil {
			return err
		}
		events = append(events, pe)
	}
	if _, err := p.dec.ReadToken(); err != nil {
		return err
	}
	p.arrays[i] = events
	return nil
}

// event reads one event of an array. The returned error is a syntax error; an unusable
// event is reported in parsedEvent.err.
func (p *txnParser) event(timeline bool) (parsedEvent, error) {
	if p.dec.PeekKind() != '{' {
		return parsedEvent{err: errors.New("not a JSON object")}, p.dec.SkipValue()
	}
	if _, err := p.dec.ReadToken(); err != nil {
		return parsedEvent{}, err
	}
	start := p.dec.InputOffset() - 1
	var (
		vals    [len(envelopeKeys)]string
		has     [len(envelopeKeys)]bool // present and not null
		typeErr error
	)
	for p.dec.PeekKind() == '"' {
		name, err := p.dec.ReadValue()
		if err != nil {
			return parsedEvent{}, err
		}
		f := matchKey(name, envelopeKeys[:])
		if f < 0 {
			if err := p.dec.SkipValue(); err != nil {
				return parsedEvent{}, err
			}
			continue
		}
		switch k := p.dec.PeekKind(); k {
		case '"':
			v, err := p.dec.ReadValue()
			if err != nil {
				return parsedEvent{}, err
			}
			vals[f], has[f] = unquote(v), true
		case 'n':
			vals[f], has[f] = "", false
			err = p.dec.SkipValue()
		default:
			if typeErr == nil {
				typeErr = fmt.Errorf("%s must be a string, not %s", envelopeKeys[f], kindName(k))
			}
			err = p.dec.SkipValue()
		}
		if err != nil {
			return parsedEvent{}, err
		}
	}
	if _, err := p.dec.ReadToken(); err != nil {
		return parsedEvent{}, err
	}
	if typeErr != nil {
		return parsedEvent{err: typeErr}, nil
	}
	raw := p.body[start:p.dec.InputOffset():p.dec.InputOffset()]
	evt, err := checkEnvelope(&vals, &has, raw, timeline)
	return parsedEvent{evt: evt, err: err}, nil
}

// checkEnvelope checks an event's routing fields and makes its TxnEvent.
func checkEnvelope(vals *[len(envelopeKeys)]string, has *[len(envelopeKeys)]bool, raw []byte, timeline bool) (TxnEvent, error) {
	evt := TxnEvent{Raw: raw}
	if has[envStateKey] {
		stateKey := vals[envStateKey]
		evt.StateKey = &stateKey
	}
	dsts := [...]*string{envEventID: &evt.EventID, envRoomID: &evt.RoomID, envType: &evt.Type, envSender: &evt.Sender, envToUserID: &evt.ToUserID}
	for f, dst := range dsts {
		required := f == envType || (timeline && f != envToUserID)
		val := vals[f]
		switch {
		case !has[f] && required:
			return TxnEvent{}, fmt.Errorf("missing %s", envelopeKeys[f])
		case !has[f]:
		case val == "" && required:
			return TxnEvent{}, fmt.Errorf("empty %s", envelopeKeys[f])
		case len(val) > maxIDLength:
			return TxnEvent{}, fmt.Errorf("%s longer than %d bytes", envelopeKeys[f], maxIDLength)
		default:
			*dst = val
		}
	}
	return evt, nil
}

// decodeRare decodes the value of one of txnRareKeys with encoding/json, into the same
// struct each time, so that a repeated key merges as it did when the whole body went
// through encoding/json, and type errors name the same field path.
func (p *txnParser) decodeRare(key string) error {
	v, err := p.dec.ReadValue()
	if err != nil {
		return err
	}
	wrapped := make([]byte, 0, len(key)+len(v)+5)
	wrapped = append(append(append(append(wrapped, `{"`...), key...), `":`...), v...)
	wrapped = append(wrapped, '}')
	if err := json.Unmarshal(wrapped, &p.rare); err != nil && p.typeErr == nil {
		p.typeErr = errors.New(describeJSONError(err))
	}
	return nil
}

func (p *txnParser) setTypeErr(field, want string, got jsontext.Kind) {
	if p.typeErr == nil {
		p.typeErr = fmt.Errorf("%s must be %s, not %s", field, want, kindName(got))
	}
}

// syntaxError reports a body the tokenizer refused as encoding/json did (its byte offset
// is encoding/json's). Errors are rare, so the body is scanned again.
func (p *txnParser) syntaxError(err error) error {
	if jerr := json.Unmarshal(p.body, &struct{}{}); jerr != nil {
		return errors.New(describeJSONError(jerr))
	}
	return fmt.Errorf("invalid JSON at byte %d", p.dec.InputOffset())
}

// matchKey returns the index of the key the quoted JSON name is, matched as encoding/json
// matches struct fields (exactly, else case-insensitively), or -1.
func matchKey(quoted []byte, keys []string) int {
	if len(quoted) >= 2 && bytes.IndexByte(quoted, '\\') < 0 {
		name := quoted[1 : len(quoted)-1]
		for i, k := range keys {
			if string(name) == k {
				return i
			}
		}
		if isASCIINoFold(name) {
			return -1
		}
	}
	name := unquote(quoted)
	for i, k := range keys {
		if strings.EqualFold(name, k) {
			return i
		}
	}
	return -1
}

// isASCIINoFold reports whether name is ASCII without upper-case letters: such a name
// matches a (lower-case) key only exactly.
func isASCIINoFold(name []byte) bool {
	for _, c := range name {
		if c >= utf8.RuneSelf || ('A' <= c && c <= 'Z') {
			return false
		}
	}
	return true
}

// unquote returns the string a valid JSON string literal holds, as encoding/json decodes it
// (invalid UTF-8 and lone surrogates become U+FFFD).
func unquote(quoted []byte) string {
	inner := quoted[1 : len(quoted)-1]
	if bytes.IndexByte(inner, '\\') < 0 && utf8.Valid(inner) {
		return string(inner)
	}
	var s string
	_ = json.Unmarshal(quoted, &s) // quoted is valid: the tokenizer read it
	return s
}

// kindName names a JSON kind as encoding/json's type errors do.
func kindName(k jsontext.Kind) string {
	switch k {
	case '{':
		return "object"
	case '[':
		return "array"
	case '"':
		return "string"
	case '0':
		return "number"
	case 't', 'f':
		return "bool"
	default:
		return "null"
	}
}

// describeJSONError turns encoding/json errors into a short message with the byte offset,
// without echoing the input (it may contain message bodies).
func describeJSONError(err error) string {
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syn):
		return fmt.Sprintf("invalid JSON at byte %d", syn.Offset)
	case errors.As(err, &typ):
		if typ.Field != "" {
			return fmt.Sprintf("%s must be %s, not %s", typ.Field, jsonKind(typ.Type.Kind().String()), typ.Value)
		}
		return fmt.Sprintf("expected %s, got %s", jsonKind(typ.Type.Kind().String()), typ.Value)
	default:
		return "invalid JSON"
	}
}

func jsonKind(goKind string) string {
	switch goKind {
	case "slice":
		return "an array"
	case "ptr", "string":
		return "a string"
	case "struct", "map":
		return "an object"
	default:
		return goKind
	}
}
