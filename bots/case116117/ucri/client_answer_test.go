package ucri

import (
	"errors"
	"net/http"
	"testing"
)

// TestClientSendTakenButAnsweredOutOfSpec: a 200 whose body does not match the spec means
// the message was taken; the error says so, so the caller does not report it as failed.
func TestClientSendTakenButAnsweredOutOfSpec(t *testing.T) {
	tests := []struct {
		name   string
		answer any
	}{
		{"empty object", map[string]any{}},
		{"no messageId", map[string]any{"source": testOID, "destinations": []string{testOID}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFakeUCRM(t)
			f.handle = func(w http.ResponseWriter, r *http.Request) { writeJSON(w, http.StatusOK, tc.answer) }
			_, err := f.client(t, nil).Send(t.Context(), testSendRequest("x"))
			if !errors.Is(err, ErrInvalidAnswer) {
				t.Fatalf("Send() error %v; want ErrInvalidAnswer", err)
			}
			if IsTemporary(err) {
				t.Error("a taken message must not be retried as temporary")
			}
		})
	}
}
