package access_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"

	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"

	"github.com/switchboard-matrix/switchboard/bridges/jitsi/access"
)

// botView is a RoomState: the glue implements it with the bot's view of the room.
type botView struct{}

func (botView) Membership(_ context.Context, _ id.RoomID, userID id.UserID) (event.Membership, string, error) {
	if userID == "@alice:example.org" {
		return event.MembershipJoin, "Alice", nil
	}
	return "", "", nil
}

func (botView) PowerLevels(context.Context, id.RoomID) (*event.PowerLevelsEventContent, json.RawMessage, error) {
	raw := json.RawMessage(`{"state_default":50,"users":{"@alice:example.org":100}}`)
	var pl event.PowerLevelsEventContent
	err := json.Unmarshal(raw, &pl)
	return &pl, raw, err
}

func ExampleNew() {
	// A homeserver's OpenID userinfo endpoint (the openid listener resource).
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Get("access_token") != "openid-token-of-alice" {
			w.WriteHeader(http.StatusUnauthorized)
			_, _ = w.Write([]byte(`{"errcode":"M_UNKNOWN_TOKEN"}`))
			return
		}
		_, _ = w.Write([]byte(`{"sub":"@alice:example.org"}`))
	}))
	defer hs.Close()

	h, err := access.New(access.Config{
		ServerName:    "example.org",
		HomeserverURL: hs.URL,
		AuthToken:     "prosody-shared-secret", // Prosody's uvs_auth_token
	}, botView{})
	if err != nil {
		fmt.Println(err)
		return
	}

	// What Prosody's mod_auth_matrix_user_verification sends.
	r := httptest.NewRequest(http.MethodPost, "/verify/user_in_room", strings.NewReader(
		`{"token":"openid-token-of-alice","room_id":"!room:example.org","matrix_server_name":"example.org"}`))
	r.Header.Set("Authorization", "Bearer prosody-shared-secret")
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	fmt.Println(w.Code, strings.TrimSpace(w.Body.String()))
	// Output:
	// 200 {"results":{"user":true,"room_membership":true},"user_id":"@alice:example.org","power_levels":{"room":{"state_default":50},"user":100}}
}
