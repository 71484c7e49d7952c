package matrixtest

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"testing"
)

// PushEphemeral delivers EDUs such as m.typing and m.receipt (each with its room_id) to
// the appservice on asPort in a transaction of their own, the way a homeserver that pushes
// ephemeral events to appservices (MSC2409) does. Dendrite does not push them.
func PushEphemeral(t testing.TB, asPort int, hsToken string, edus ...any) {
	t.Helper()
	raws := []json.RawMessage{}
	for _, e := range edus {
		raw, err := json.Marshal(e)
		if err != nil {
			t.Fatal(err)
		}
		raws = append(raws, raw)
	}
	body, _ := json.Marshal(map[string]any{"events": []json.RawMessage{}, "ephemeral": raws})
	var id [8]byte
	_, _ = rand.Read(id[:])
	url := fmt.Sprintf("http://127.0.0.1:%d/_matrix/app/v1/transactions/push-%s", asPort, hex.EncodeToString(id[:]))
	req, _ := http.NewRequest(http.MethodPut, url, bytes.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+hsToken)
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
