package refucrm

import (
	"context"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sync"

	"github.com/switchboard-matrix/switchboard/bots/case116117/ucri"
)

// Centre is another dispatch centre at the reference UCRM, driven from Go through the
// Client API (token, send, receive, commit): it signs what it sends with its key, as
// UCRI2 says, and keeps what it received. Its methods are safe for concurrent use.
type Centre struct {
	OID    string          // immutable
	Key    *rsa.PrivateKey // immutable; signs what the centre sends
	Client *ucri.Client    // immutable

	mu  sync.Mutex
	got []ucri.ReceivedMessage // guarded by mu; everything received, in order
}

// Centre returns a client for the participant oid with its account and signing key.
func (s *Server) Centre(oid, username, password string, key *rsa.PrivateKey) (*Centre, error) {
	cli, err := ucri.NewClient(ucri.ClientConfig{BaseURL: s.URL, Username: username, Password: password, UserAgent: "refucrm-centre"})
	if err != nil {
		return nil, err
	}
	return &Centre{OID: oid, Key: key, Client: cli}, nil
}

// Send signs and sends an app message (appVersion 1.0, JSON data) to dest and returns the
// UCRM's answer. ack is NONE, NACK or ALL.
func (c *Centre) Send(ctx context.Context, dest, appID, schemaID string, data any, ack string) (*ucri.SendRequest, error) {
	b, err := json.Marshal(data)
	if err != nil {
		return nil, fmt.Errorf("refucrm: %w", err)
	}
	req := &ucri.SendRequest{
		Envelope: ucri.Envelope{
			MessageID: ucri.NewMessageID(), Timeout: 300, Ack: ack, Source: c.OID,
			Payload: ucri.Payload{AppID: appID, AppVersion: "1.0", SchemaID: schemaID, ContentType: ucri.ContentTypeJSON, Data: string(b)},
		},
		Destinations: []string{dest},
	}
	if c.Key != nil {
		if err := ucri.Sign(&req.Envelope, dest, c.Key); err != nil {
			return nil, err
		}
	}
	return c.Client.Send(ctx, req)
}

// Poll receives what is waiting (no long poll), commits it and returns it. A message the
// client's decoder refuses is an error (after the commit: the reference would deliver it
// again forever).
func (c *Centre) Poll(ctx context.Context) ([]ucri.ReceivedMessage, error) {
	zero := 0
	resp, bad, err := c.Client.Receive(ctx, ucri.ReceiveRequest{Destinations: []string{c.OID}, MaxMessages: 50, MaxDelay: &zero})
	if err != nil {
		return nil, err
	}
	last := int64(-1)
	for _, m := range resp.Messages {
		last = max(last, m.SequenceID)
	}
	for _, b := range bad {
		last = max(last, b.SequenceID)
	}
	if last >= 0 {
		if err := c.Client.Commit(ctx, ucri.MessageRef{Destination: c.OID, SequenceID: last}); err != nil {
			return nil, err
		}
	}
	c.mu.Lock()
	c.got = append(c.got, resp.Messages...)
	c.mu.Unlock()
	if len(bad) > 0 {
		errs := make([]error, len(bad))
		for i, b := range bad {
			errs[i] = b
		}
		return resp.Messages, fmt.Errorf("refucrm: %s received invalid messages: %w", c.OID, errors.Join(errs...))
	}
	return resp.Messages, nil
}

// Received returns everything the centre received so far.
func (c *Centre) Received() []ucri.ReceivedMessage {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.got)
}
