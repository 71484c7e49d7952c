package ucri

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"sync"

	"github.com/santhosh-tekuri/jsonschema/v6"
)

// This file decodes the UCRM's answers strictly: every body is validated against its
// schema in the bundled UCRM Client API (spec.ClientAPI; formats are annotations there, and
// OpenAPI keywords such as example are ignored), then checked for what the schemas cannot
// express. Every error is an *Error with code 460 whose Message names JSON pointers, never
// payload data.

// MaxBodyBytes is the largest UCRM answer the decoders accept.
const MaxBodyBytes = 8 << 20

// Schemas of the bundled UCRM Client API, as JSON pointers into it.
const (
	ptrReceiverResponse = "#/components/schemas/receiverResponse"
	ptrSenderResponse   = "#/components/schemas/senderResponse"
	ptrCommParticipant  = "#/components/schemas/commParticipant"
	ptrRegistry         = "#/paths/~1registry/get/responses/200/content/application~1json/schema"
	ptrInfo             = "#/components/schemas/info"
	ptrError            = "#/components/schemas/error"
)

// transportSchemas are the compiled transport schemas, built once by loadTransportSchemas.
var transportSchemas struct {
	once    sync.Once
	schemas map[string]*jsonschema.Schema // by pointer
	err     error
}

func loadTransportSchemas() error {
	transportSchemas.once.Do(func() {
		c := newCompiler(false)
		m := map[string]*jsonschema.Schema{}
		for _, p := range []string{ptrReceiverResponse, ptrSenderResponse, ptrCommParticipant, ptrRegistry, ptrInfo, ptrError} {
			sch, err := c.Compile(clientAPIURL + p)
			if err != nil {
				transportSchemas.err = fmt.Errorf("ucri: failed to compile %s: %w", p, err)
				return
			}
			m[p] = sch
		}
		transportSchemas.schemas = m
	})
	return transportSchemas.err
}

// invalidTransport returns a 460 error.
func invalidTransport(what, msg string) *Error {
	return &Error{Code: CodeInvalidTransport, Reason: what, Message: msg}
}

// parseTransport checks the size of body and parses it for validation.
func parseTransport(what string, body []byte) (any, *Error) {
	if len(body) > MaxBodyBytes {
		return nil, invalidTransport(what, fmt.Sprintf("body of %d bytes exceeds %d", len(body), MaxBodyBytes))
	}
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(body))
	if err != nil {
		return nil, invalidTransport(what, "body is not JSON: "+jsonErrorText(err))
	}
	if p := checkNumbers(doc, nil); p != nil {
		return nil, invalidTransport(what, p.String())
	}
	return doc, nil
}

// decodeTransport validates body against the schema at ptr and unmarshals it into v.
func decodeTransport(what, ptr string, body []byte, v any) *Error {
	if err := loadTransportSchemas(); err != nil {
		return &Error{Code: CodeInternalError, Reason: "schemas not available", Message: err.Error()}
	}
	doc, e := parseTransport(what, body)
	if e != nil {
		return e
	}
	if err := transportSchemas.schemas[ptr].Validate(doc); err != nil {
		return invalidTransport(what, describeProblems(schemaProblems(err)...))
	}
	if err := json.Unmarshal(body, v); err != nil {
		return invalidTransport(what, unrepresentable(doc, err, nil).String())
	}
	return nil
}

// MessageError is a received message that DecodeReceiveResponse set aside because it is
// invalid. Index is its position in the answer; SequenceID and Destination are always
// valid, so the message can still be committed; MessageID is set only if it is a UUID.
type MessageError struct {
	Index       int
	SequenceID  int64
	Destination string
	MessageID   string
	Err         *Error // code 460
}

func (e MessageError) Error() string {
	s := fmt.Sprintf("ucri: message %d (destination %s, sequenceId %d) rejected", e.Index, e.Destination, e.SequenceID)
	if e.Err != nil {
		s += ": " + strconv.Itoa(e.Err.Code) + " " + e.Err.Reason
		if e.Err.Message != "" {
			s += ": " + e.Err.Message
		}
	}
	return s
}

func (e MessageError) Unwrap() error {
	if e.Err == nil {
		return nil
	}
	return e.Err
}

// DecodeReceiveResponse decodes the answer of POST /messaging/receive.
//
// One bad message does not fail the batch: a message that violates the schema or Check is
// left out of the returned Messages and reported as a MessageError, as long as its
// sequenceId and destination can be read; the caller should reject it (log it with its ids,
// answer a NACK if it wants) and still commit its sequenceId, or the UCRM delivers it again
// forever. The error is non-nil (and the rest nil) when the answer as a whole is invalid or
// a bad message's sequenceId or destination cannot be read; then nothing may be committed.
// Messages keep the order of the answer; Index in MessageError is the position in it.
func DecodeReceiveResponse(body []byte) (*ReceiveResponse, []MessageError, error) {
	const what = "invalid receive answer"
	if err := loadTransportSchemas(); err != nil {
		return nil, nil, &Error{Code: CodeInternalError, Reason: "schemas not available", Message: err.Error()}
	}
	doc, e := parseTransport(what, body)
	if e != nil {
		return nil, nil, e
	}
	// Attribute every schema problem to a message, or fail the batch.
	bad := map[int][]problem{}
	if err := transportSchemas.schemas[ptrReceiverResponse].Validate(doc); err != nil {
		var batch []problem
		for _, p := range schemaProblems(err) {
			if i, ok := messageIndex(p.ptr); ok {
				bad[i] = append(bad[i], p)
			} else {
				batch = append(batch, p)
			}
		}
		if len(batch) > 0 {
			return nil, nil, invalidTransport(what, describeProblems(batch...))
		}
	}
	// The schema passed for everything but single messages, so messages is an array of at
	// least one element and maxMessages an integer ≥ 1. Both are taken from the validated
	// document, not decoded again: encoding/json matches keys case-insensitively and could
	// pick another "MESSAGES".
	top, _ := doc.(map[string]any)
	items, ok := top["messages"].([]any)
	if !ok {
		return nil, nil, invalidTransport(what, "/messages: got no array")
	}
	maxMessages, ok := jsonInt(top["maxMessages"])
	if !ok || maxMessages > math.MaxInt32 {
		return nil, nil, invalidTransport(what, "/maxMessages: value out of range")
	}
	resp := &ReceiveResponse{MaxMessages: int(maxMessages), Messages: make([]ReceivedMessage, 0, len(items))}
	var rejects []MessageError
	for i, item := range items {
		prefix := []string{"messages", strconv.Itoa(i)}
		problems := bad[i]
		var m ReceivedMessage
		if len(problems) == 0 {
			if err := remarshal(item, &m); err != nil {
				problems = []problem{unrepresentable(item, err, prefix)}
			} else {
				problems = m.check(prefix)
			}
		}
		if len(problems) == 0 {
			resp.Messages = append(resp.Messages, m)
			continue
		}
		me, ok := messageRefs(item)
		if !ok {
			return nil, nil, invalidTransport(what, describeProblems(problems...))
		}
		me.Index = i
		me.Err = invalidTransport("invalid message", describeProblems(problems...))
		rejects = append(rejects, me)
	}
	return resp, rejects, nil
}

// remarshal decodes a value of a validated document into v.
func remarshal(item any, v any) error {
	b, err := json.Marshal(item)
	if err != nil {
		return err
	}
	return json.Unmarshal(b, v)
}

// jsonInt returns a JSON integer of a validated document as int64, if it is written as
// one (JSON Schema also counts 1e2 and 1.0 as integers; those are not accepted here).
func jsonInt(v any) (int64, bool) {
	num, ok := v.(json.Number)
	if !ok {
		return 0, false
	}
	i, err := strconv.ParseInt(string(num), 10, 64)
	return i, err == nil
}

// messageIndex returns i if ptr is inside /messages/i.
func messageIndex(ptr []string) (int, bool) {
	if len(ptr) < 2 || ptr[0] != "messages" {
		return 0, false
	}
	i, err := strconv.Atoi(ptr[1])
	return i, err == nil && i >= 0
}

// messageRefs reads the ids of an invalid message, if its sequenceId and destination are
// valid.
func messageRefs(item any) (MessageError, bool) {
	obj, ok := item.(map[string]any)
	if !ok {
		return MessageError{}, false
	}
	dest, _ := obj["destination"].(string)
	seq, ok := jsonInt(obj["sequenceId"])
	if !IsOID(dest) || !ok || seq < 0 {
		return MessageError{}, false
	}
	me := MessageError{SequenceID: seq, Destination: dest}
	if id, _ := obj["messageId"].(string); IsUUID(id) {
		me.MessageID = id
	}
	return me, true
}

// Check checks what a received message needs beyond its Go types and the schema can't
// express: messageId a UUID, source and destination OIDs, sequenceId ≥ 0, sentDate set,
// timeout 10 to 86400, a known ack and contentType, appId, appVersion and schemaId set. It
// returns nil or an *Error with code 460 naming JSON pointers relative to the message.
func (m *ReceivedMessage) Check() error {
	if ps := m.check(nil); ps != nil {
		return invalidTransport("invalid message", describeProblems(ps...))
	}
	return nil
}

func (m *ReceivedMessage) check(prefix []string) []problem {
	ps := checkEnvelope(prefix, &m.Envelope, false)
	if !IsOID(m.Destination) {
		ps = append(ps, problem{ptrAt(prefix, "destination"), "not an OID"})
	}
	if m.SequenceID < 0 {
		ps = append(ps, problem{ptrAt(prefix, "sequenceId"), "must be ≥ 0"})
	}
	return ps
}

// checkEnvelope checks an envelope as the UCRM hands it out: messageId, sentDate and
// timeout filled in, and ack too if requireAck.
func checkEnvelope(prefix []string, env *Envelope, requireAck bool) []problem {
	var ps []problem
	add := func(field, text string) { ps = append(ps, problem{ptrAt(prefix, field), text}) }
	if !IsUUID(env.MessageID) {
		add("messageId", "not a UUID")
	}
	if !IsOID(env.Source) {
		add("source", "not an OID")
	}
	if env.SentDate == "" {
		add("sentDate", "missing")
	}
	if env.Timeout < 10 || env.Timeout > 86400 {
		add("timeout", "must be 10 to 86400")
	}
	switch env.Ack {
	case AckNone, AckNACK, AckAll:
	default:
		if requireAck || env.Ack != "" {
			add("ack", "must be NONE, NACK or ALL")
		}
	}
	p := env.Payload
	switch p.ContentType {
	case ContentTypeJSON, ContentTypeJOSE:
	default:
		ps = append(ps, problem{ptrAt(prefix, "payload", "contentType"), "unknown contentType"})
	}
	for _, f := range []struct{ name, v string }{{"appId", p.AppID}, {"appVersion", p.AppVersion}, {"schemaId", p.SchemaID}} {
		if f.v == "" {
			ps = append(ps, problem{ptrAt(prefix, "payload", f.name), "empty"})
		}
	}
	return ps
}

func ptrAt(prefix []string, tokens ...string) []string {
	return append(append([]string(nil), prefix...), tokens...)
}

// DecodeSendResponse decodes the answer of POST /messaging/send: the sent message with
// messageId, sentDate, timeout and ack filled in by the UCRM.
func DecodeSendResponse(body []byte) (*SendRequest, error) {
	const what = "invalid send answer"
	var r SendRequest
	if e := decodeTransport(what, ptrSenderResponse, body, &r); e != nil {
		return nil, e
	}
	ps := checkEnvelope(nil, &r.Envelope, true)
	for i, d := range r.Destinations {
		if !IsOID(d) {
			ps = append(ps, problem{[]string{"destinations", strconv.Itoa(i)}, "not an OID"})
		}
	}
	if len(ps) > 0 {
		return nil, invalidTransport(what, describeProblems(ps...))
	}
	return &r, nil
}

// DecodeParticipant decodes the answer of GET /registry/{id}. The participant's key is not
// checked here; see PublicKeyFromJWK.
func DecodeParticipant(body []byte) (*CommParticipant, error) {
	const what = "invalid participant"
	var p CommParticipant
	if e := decodeTransport(what, ptrCommParticipant, body, &p); e != nil {
		return nil, e
	}
	if !IsOID(p.ID) {
		return nil, invalidTransport(what, "/id: not an OID")
	}
	return &p, nil
}

// DecodeRegistry decodes the answer of GET /registry ({"commParticipants": [...]}).
//
// An invalid entry does not hide the others (the official example itself has status
// "off", which the schema forbids): DecodeRegistry then returns the valid entries together
// with an *Error naming the invalid ones. If the answer as a whole is invalid, it returns
// nil and the error.
func DecodeRegistry(body []byte) ([]CommParticipant, error) {
	const what = "invalid registry"
	if err := loadTransportSchemas(); err != nil {
		return nil, &Error{Code: CodeInternalError, Reason: "schemas not available", Message: err.Error()}
	}
	doc, e := parseTransport(what, body)
	if e != nil {
		return nil, e
	}
	bad := map[int]bool{}
	var problems []problem
	if err := transportSchemas.schemas[ptrRegistry].Validate(doc); err != nil {
		for _, p := range schemaProblems(err) {
			if len(p.ptr) < 2 || p.ptr[0] != "commParticipants" {
				return nil, invalidTransport(what, describeProblems(schemaProblems(err)...))
			}
			i, _ := strconv.Atoi(p.ptr[1])
			bad[i] = true
			problems = append(problems, p)
		}
	}
	top, _ := doc.(map[string]any)
	items, ok := top["commParticipants"].([]any)
	if !ok {
		return nil, invalidTransport(what, "/commParticipants: got no array")
	}
	ps := make([]CommParticipant, 0, len(items))
	for i, item := range items {
		if bad[i] {
			continue
		}
		var p CommParticipant
		switch err := remarshal(item, &p); {
		case err != nil:
			problems = append(problems, unrepresentable(item, err, []string{"commParticipants", strconv.Itoa(i)}))
		case !IsOID(p.ID):
			problems = append(problems, problem{[]string{"commParticipants", strconv.Itoa(i), "id"}, "not an OID"})
		default:
			ps = append(ps, p)
		}
	}
	if len(problems) > 0 {
		return ps, invalidTransport(what, fmt.Sprintf("invalid entries left out: %d: %s",
			len(items)-len(ps), describeProblems(problems...)))
	}
	return ps, nil
}

// DecodeInfo decodes the answer of GET /info.
func DecodeInfo(body []byte) (*Info, error) {
	var info Info
	if e := decodeTransport("invalid info", ptrInfo, body, &info); e != nil {
		return nil, e
	}
	return &info, nil
}

// DecodeError decodes a UCRI2 error answer. The decoded *Error is the result; the error
// result (an *Error with code 460) says the body is not a valid UCRI2 error, e.g. a code
// outside the list of error.yaml.
func DecodeError(body []byte) (*Error, error) {
	var ue Error
	if e := decodeTransport("invalid error answer", ptrError, body, &ue); e != nil {
		return nil, e
	}
	return &ue, nil
}
