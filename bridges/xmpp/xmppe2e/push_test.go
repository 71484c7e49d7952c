package xmppe2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"testing"
	"time"

	"maunium.net/go/mautrix"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"

	"github.com/switchboard-matrix/switchboard/internal/testpeer/matrixtest"
)

// Dendrite v0.13.8 pushes neither redactions (element-hq/dendrite#3445) nor ephemeral
// events (MSC2409) to appservices. Where a test needs them, it plays that part of the
// homeserver: it takes the event as Dendrite stored it (or builds the EDU as the spec
// defines it) and delivers it in a transaction to the bridge's appservice endpoint with
// the homeserver token, exactly as a homeserver that supports them does.

// pushRedaction delivers the redaction event redaction, fetched from Dendrite by cli.
func pushRedaction(t *testing.T, cli *mautrix.Client, room id.RoomID, redaction id.EventID) {
	t.Helper()
	var evt *event.Event
	matrixtest.WaitFor(t, 10*time.Second, "the redaction to be readable", func() (ok bool, err error) {
		evt, err = cli.GetEvent(context.Background(), room, redaction)
		return err == nil, err
	})
	raw, err := json.Marshal(evt)
	if err != nil {
		t.Fatal(err)
	}
	pushTransaction(t, []json.RawMessage{raw}, nil)
}

// pushEphemeral delivers EDUs such as m.typing and m.receipt (each with its room_id).
func pushEphemeral(t *testing.T, edus ...any) {
	t.Helper()
	var raws []json.RawMessage
	for _, e := range edus {
		raw, err := json.Marshal(e)
		if err != nil {
			t.Fatal(err)
		}
		raws = append(raws, raw)
	}
	pushTransaction(t, nil, raws)
}

func pushTransaction(t *testing.T, events, ephemeral []json.RawMessage) {
	t.Helper()
	if events == nil {
		events = []json.RawMessage{}
	}
	body, _ := json.Marshal(map[string]any{"events": events, "ephemeral": ephemeral})
	url := fmt.Sprintf("http://127.0.0.1:%d/_matrix/app/v1/transactions/test-%s", onHS.ASPort, unique("txn"))
	req, _ := http.NewRequest(http.MethodPut, url, bytes.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+onHS.Reg.ServerToken)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("pushing a transaction: %s", resp.Status)
	}
}
