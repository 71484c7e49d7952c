package ucrm

import (
	"bytes"
	"context"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"
	"time"
)

// Error is a UCRI2 error answer of the UCRM.
type Error struct {
	Status  int    `json:"-"`    // HTTP status
	Code    int    `json:"code"` // UCRI2 code, 0 if the body held none
	Reason  string `json:"reason"`
	Message string `json:"message"`
}

func (e *Error) Error() string {
	return fmt.Sprintf("ucrm: HTTP %d, code %d (%s): %s", e.Status, e.Code, e.Reason, e.Message)
}

// Peer is a client of the Server that plays a participant (another dispatch centre) over
// real HTTP, with its own token. It is safe for concurrent use.
type Peer struct {
	s      *Server         // immutable
	oid    string          // immutable
	key    *rsa.PrivateKey // immutable; may be nil: sends are unsigned
	client *http.Client    // immutable

	mu    sync.Mutex
	token string // guarded by mu; "" until fetched
}

// Peer returns a client acting as participant oid, which must be registered (its user
// name and password are looked up at each token fetch). Sends are signed with key unless
// it is nil.
func (s *Server) Peer(oid string, key *rsa.PrivateKey) *Peer {
	p := &Peer{s: s, oid: oid, key: key, client: &http.Client{Transport: &http.Transport{}}}
	s.mu.Lock()
	s.peers = append(s.peers, p)
	s.mu.Unlock()
	return p
}

// OID returns the participant the peer plays.
func (p *Peer) OID() string { return p.oid }

// Token fetches a new token with the participant's credentials and keeps it.
func (p *Peer) Token(ctx context.Context) (string, error) {
	p.s.mu.Lock()
	part := p.s.participant(p.oid)
	var user, pass string
	if part != nil {
		user, pass = part.Username, part.Password
	}
	p.s.mu.Unlock()
	if part == nil {
		return "", fmt.Errorf("ucrm: peer %s is not a registered participant", p.oid)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, p.s.URL()+"/token", nil)
	if err != nil {
		return "", err
	}
	req.SetBasicAuth(user, pass)
	status, body, err := p.roundTrip(req)
	if err != nil {
		return "", err
	}
	if status != http.StatusOK {
		return "", remoteError(status, body)
	}
	var tok struct {
		Token string `json:"token"`
	}
	if err := json.Unmarshal(body, &tok); err != nil || tok.Token == "" {
		return "", fmt.Errorf("ucrm: peer %s: bad token answer %q", p.oid, body)
	}
	p.mu.Lock()
	p.token = tok.Token
	p.mu.Unlock()
	return tok.Token, nil
}

// Do sends a request to path (below the base path) with the peer's token, fetching one
// first if needed and once more after an answer 401. body is sent as JSON: []byte and
// json.RawMessage verbatim, anything else marshalled, nil as no body. It returns the
// HTTP status and the answer body; error answers are not turned into errors.
func (p *Peer) Do(ctx context.Context, method, path string, body any) (int, []byte, error) {
	var raw []byte
	switch b := body.(type) {
	case nil:
	case []byte:
		raw = b
	case json.RawMessage:
		raw = b
	default:
		var err error
		if raw, err = json.Marshal(b); err != nil {
			return 0, nil, fmt.Errorf("ucrm: peer %s: failed to encode the body: %w", p.oid, err)
		}
	}
	for attempt := 0; ; attempt++ {
		p.mu.Lock()
		tok := p.token
		p.mu.Unlock()
		if tok == "" {
			var err error
			if tok, err = p.Token(ctx); err != nil {
				return 0, nil, err
			}
		}
		var rd io.Reader
		if raw != nil {
			rd = bytes.NewReader(raw)
		}
		req, err := http.NewRequestWithContext(ctx, method, p.s.URL()+path, rd)
		if err != nil {
			return 0, nil, err
		}
		req.Header.Set("Authorization", "Bearer "+tok)
		if raw != nil {
			req.Header.Set("Content-Type", "application/json")
		}
		status, resp, err := p.roundTrip(req)
		if err != nil || status != http.StatusUnauthorized || attempt > 0 {
			return status, resp, err
		}
		p.mu.Lock()
		if p.token == tok {
			p.token = ""
		}
		p.mu.Unlock()
	}
}

func (p *Peer) roundTrip(req *http.Request) (int, []byte, error) {
	resp, err := p.client.Do(req)
	if err != nil {
		return 0, nil, fmt.Errorf("ucrm: peer %s: %s %s: %w", p.oid, req.Method, req.URL.Path, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, nil, fmt.Errorf("ucrm: peer %s: %s %s: failed to read the answer: %w", p.oid, req.Method, req.URL.Path, err)
	}
	return resp.StatusCode, body, nil
}

func remoteError(status int, body []byte) error {
	e := &Error{Status: status}
	_ = json.Unmarshal(body, e)
	if e.Code == 0 && e.Message == "" {
		e.Message = string(body)
	}
	return e
}

// Envelope builds a send request from the peer to destination for app AppVersion 1.0
// with a fresh messageId, signed when the peer has a key. data is the message: []byte and
// json.RawMessage are taken as JSON text verbatim, anything else is marshalled. ack may
// be "" (the UCRM's default, NONE). Tests may change the map before SendEnvelope (and
// sign again with SignEnvelope).
func (p *Peer) Envelope(destination, appID, schemaID string, data any, ack string) (map[string]any, error) {
	var text []byte
	switch d := data.(type) {
	case []byte:
		text = d
	case json.RawMessage:
		text = d
	default:
		var err error
		if text, err = json.Marshal(d); err != nil {
			return nil, fmt.Errorf("ucrm: peer %s: failed to encode the data: %w", p.oid, err)
		}
	}
	env := map[string]any{
		"messageId":    newMessageID(),
		"source":       p.oid,
		"destinations": []any{destination},
		"payload": map[string]any{
			"appId":       appID,
			"appVersion":  AppVersion,
			"schemaId":    schemaID,
			"contentType": "application/json",
			"data":        string(text),
		},
	}
	if ack != "" {
		env["ack"] = ack
	}
	if p.key != nil {
		sig, err := SignEnvelope(env, destination, p.key)
		if err != nil {
			return nil, err
		}
		env["signature"] = sig
	}
	return env, nil
}

// SendEnvelope posts a send request as is and returns the SenderResponse, or an *Error.
func (p *Peer) SendEnvelope(ctx context.Context, env any) (json.RawMessage, error) {
	status, body, err := p.Do(ctx, http.MethodPost, "/messaging/send", env)
	if err != nil {
		return nil, err
	}
	if status != http.StatusOK {
		return nil, remoteError(status, body)
	}
	return body, nil
}

// Send builds (see Envelope), signs and sends a message; it returns its messageId.
func (p *Peer) Send(ctx context.Context, destination, appID, schemaID string, data any, ack string) (string, error) {
	env, err := p.Envelope(destination, appID, schemaID, data, ack)
	if err != nil {
		return "", err
	}
	if _, err := p.SendEnvelope(ctx, env); err != nil {
		return "", err
	}
	return env["messageId"].(string), nil
}

// Fetch receives up to 10 of the peer's oldest uncommitted messages (ReceiverResponse
// items), waiting up to maxDelay (whole seconds, at most 30) for one, without committing
// them. It returns nil when the UCRM answered 204.
func (p *Peer) Fetch(ctx context.Context, maxDelay time.Duration) ([]json.RawMessage, error) {
	req := map[string]any{
		"destinations": []string{p.oid},
		"maxDelay":     min(max(int(maxDelay/time.Second), 0), 30),
	}
	status, body, err := p.Do(ctx, http.MethodPost, "/messaging/receive", req)
	switch {
	case err != nil:
		return nil, err
	case status == http.StatusNoContent:
		return nil, nil
	case status != http.StatusOK:
		return nil, remoteError(status, body)
	}
	var resp struct {
		Messages []json.RawMessage `json:"messages"`
	}
	if err := json.Unmarshal(body, &resp); err != nil {
		return nil, fmt.Errorf("ucrm: peer %s: bad receive answer: %w", p.oid, err)
	}
	return resp.Messages, nil
}

// Commit confirms the peer's messages up to sequenceId seq.
func (p *Peer) Commit(ctx context.Context, seq int64) error {
	status, body, err := p.Do(ctx, http.MethodPost, "/messaging/commit",
		map[string]any{"destination": p.oid, "sequenceId": seq})
	if err != nil {
		return err
	}
	if status != http.StatusNoContent {
		return remoteError(status, body)
	}
	return nil
}

// Receive fetches messages like Fetch and commits them.
func (p *Peer) Receive(ctx context.Context, maxDelay time.Duration) ([]json.RawMessage, error) {
	msgs, err := p.Fetch(ctx, maxDelay)
	if err != nil || len(msgs) == 0 {
		return msgs, err
	}
	last, err := ParseMessage(msgs[len(msgs)-1])
	if err != nil {
		return msgs, err
	}
	return msgs, p.Commit(ctx, last.SequenceID)
}

// Message is a received message (a ReceiverResponse item) taken apart.
type Message struct {
	MessageID   string
	Source      string
	Destination string
	SequenceID  int64
	Ack         string
	AppID       string
	AppVersion  string
	SchemaID    string
	ContentType string
	Data        json.RawMessage // the payload data as JSON text
	Signature   string          // "" if unsigned
	Envelope    map[string]any  // the whole item, numbers as json.Number
}

// ParseMessage takes a received item apart. It checks only that the fields it reads
// have the right types when present.
func ParseMessage(item json.RawMessage) (Message, error) {
	doc, err := decodeJSON(item)
	env, ok := doc.(map[string]any)
	if !ok {
		return Message{}, fmt.Errorf("ucrm: a received message is not a JSON object (%v)", err)
	}
	str := func(m map[string]any, k string) string { v, _ := m[k].(string); return v }
	m := Message{
		MessageID:   str(env, "messageId"),
		Source:      str(env, "source"),
		Destination: str(env, "destination"),
		Ack:         str(env, "ack"),
		Signature:   str(env, "signature"),
		Envelope:    env,
	}
	if n, ok := env["sequenceId"].(json.Number); ok {
		if m.SequenceID, err = n.Int64(); err != nil {
			return m, fmt.Errorf("ucrm: message %s: bad sequenceId: %w", m.MessageID, err)
		}
	}
	payload, ok := env["payload"].(map[string]any)
	if !ok {
		return m, errors.New("ucrm: message " + m.MessageID + " has no payload object")
	}
	m.AppID, m.AppVersion = str(payload, "appId"), str(payload, "appVersion")
	m.SchemaID, m.ContentType = str(payload, "schemaId"), str(payload, "contentType")
	m.Data = json.RawMessage(str(payload, "data"))
	return m, nil
}
