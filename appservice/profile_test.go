package appservice

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"

	"maunium.net/go/mautrix/id"
)

// TestProfileNotFound: a user the homeserver does not know is ErrNotFound whatever the
// errcode of the 404: Dendrite answers M_NOT_FOUND, Synapse M_UNKNOWN ("No row found
// (profiles)") for a user who was never registered (issue 11: found by the XMPP DM test on
// Synapse, where the invite to such a user then succeeds). Other errors stay errors.
func TestProfileNotFound(t *testing.T) {
	tests := []struct {
		name         string
		status       int
		body         string
		wantName     string
		wantNotFound bool
		wantErr      bool
	}{
		{"known user", http.StatusOK, `{"displayname":"Alice"}`, "Alice", false, false},
		{"dendrite unknown user", http.StatusNotFound, `{"errcode":"M_NOT_FOUND","error":"The user does not exist or does not have a profile"}`, "", true, true},
		{"synapse unknown user", http.StatusNotFound, `{"errcode":"M_UNKNOWN","error":"No row found (profiles)"}`, "", true, true},
		{"synapse user without profile", http.StatusNotFound, `{"errcode":"M_NOT_FOUND","error":"Profile was not found"}`, "", true, true},
		{"forbidden", http.StatusForbidden, `{"errcode":"M_FORBIDDEN","error":"no shared room"}`, "", false, true},
		{"server error", http.StatusInternalServerError, `{"errcode":"M_UNKNOWN","error":"oops"}`, "", false, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(tt.status)
				_, _ = w.Write([]byte(tt.body))
			}))
			defer srv.Close()
			as := fakeAppService(t, srv.URL)
			in := &Intent{api: as.BotIntent()}
			name, _, err := in.Profile(context.Background(), id.NewUserID("someone", "test"))
			if name != tt.wantName || (err != nil) != tt.wantErr || errors.Is(err, ErrNotFound) != tt.wantNotFound {
				t.Errorf("Profile = %q, %v; want %q, error %v, not found %v", name, err, tt.wantName, tt.wantErr, tt.wantNotFound)
			}
		})
	}
}
