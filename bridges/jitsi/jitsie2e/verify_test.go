package jitsie2e

import (
	"context"
	"strings"
	"testing"
	"time"

	"maunium.net/go/mautrix"
	"maunium.net/go/mautrix/id"

	"github.com/switchboard-matrix/switchboard/bridges/jitsi"
)

const uvsBearer = "uvs-bearer-for-prosody"

// uvsConfig is the module with the matrix-user-verification-service endpoints.
func uvsConfig() jitsi.Config {
	cfg := moduleConfig()
	cfg.Auth = jitsi.AuthUVS
	cfg.UVS.AuthToken = uvsBearer
	cfg.HTTP.Listen = "127.0.0.1:0"
	cfg.RateLimit.PerUser = jitsi.RateConfig{PerSecond: 0.5, Burst: 8}
	return cfg
}

// openIDToken asks Synapse for the user's OpenID token, as Element's widget API does.
func openIDToken(t testing.TB, cli *mautrix.Client) *mautrix.RespOpenIDToken {
	t.Helper()
	tok, err := cli.RequestOpenIDToken(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// TestVerifyUserInRoom drives the UVS contract (the requests of Jitsi's Prosody module
// prosody-mod-auth-matrix-user-verification) with real OpenID tokens from Synapse: a
// member is verified with the UVS body and power levels; a non-member, a member who left
// and a banned user are refused, and so are forged tokens, tokens of another server, a
// room the bot is not in, a wrong bearer token, malformed JSON and a flood. No token
// reaches the log.
func TestVerifyUserInRoom(t *testing.T) {
	r := startModule(t, uvsConfig(), false)
	alice := onHS.NewUser(t, "alice")
	carol := onHS.NewUser(t, "carol")
	dave := onHS.NewUser(t, "dave")
	mallory := onHS.NewUser(t, "mallory")
	bot := r.module.BotUserID()
	room := meetingRoom(t, alice, bot, "Board", carol.UserID, mallory.UserID)
	for _, c := range []*mautrix.Client{carol, mallory} {
		if _, err := c.JoinRoomByID(context.Background(), room); err != nil {
			t.Fatal(err)
		}
	}
	aliceTok := openIDToken(t, alice)
	req := func(tok *mautrix.RespOpenIDToken, room id.RoomID) map[string]any {
		return map[string]any{"token": tok.AccessToken, "room_id": room, "matrix_server_name": tok.MatrixServerName}
	}

	status, body := post(t, r, "/verify/user_in_room", uvsBearer, req(aliceTok, room))
	results, _ := body["results"].(map[string]any)
	pl, _ := body["power_levels"].(map[string]any)
	if status != 200 || results["user"] != true || results["room_membership"] != true || body["user_id"] != alice.UserID.String() || pl["user"].(float64) < 100 {
		// The creator of a room of version 12 has unlimited power (2^53-1 here, a number Lua can read).
		t.Fatalf("member: %d %v, want 200 with user and room_membership true and the creator's power level", status, body)
	}
	if roomPL, _ := pl["room"].(map[string]any); roomPL == nil || roomPL["users"] != nil || roomPL["state_default"] == nil {
		t.Errorf("power_levels.room %v: want the room's power levels without users", pl["room"])
	}
	if status, body := post(t, r, "/verify/user", uvsBearer, map[string]any{"token": aliceTok.AccessToken, "matrix_server_name": aliceTok.MatrixServerName}); status != 200 || body["user_id"] != alice.UserID.String() {
		t.Errorf("/verify/user: %d %v", status, body)
	}
	carolTok := openIDToken(t, carol)
	if status, body := post(t, r, "/verify/user_in_room", uvsBearer, req(carolTok, room)); status != 200 {
		t.Errorf("joined member carol: %d %v", status, body)
	}

	if _, err := carol.LeaveRoom(context.Background(), room); err != nil {
		t.Fatal(err)
	}
	if _, err := alice.BanUser(context.Background(), room, &mautrix.ReqBanUser{UserID: mallory.UserID, Reason: "test"}); err != nil {
		t.Fatal(err)
	}
	otherRoom, err := alice.CreateRoom(context.Background(), &mautrix.ReqCreateRoom{Preset: "private_chat"})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, bearer string
		body         any
		status       int
		errcode      string
		say          string
	}{
		{"non-member", uvsBearer, req(openIDToken(t, dave), room), 403, "M_FORBIDDEN", "not a member"},
		{"member who left", uvsBearer, req(carolTok, room), 403, "M_FORBIDDEN", "not a member"},
		{"banned", uvsBearer, req(openIDToken(t, mallory), room), 403, "M_FORBIDDEN", "banned"},
		{"forged token", uvsBearer, map[string]any{"token": "forged-" + aliceTok.AccessToken[:8], "room_id": room, "matrix_server_name": "localhost"}, 401, "M_UNKNOWN_TOKEN", "invalid or has expired"},
		{"token of another server", uvsBearer, map[string]any{"token": aliceTok.AccessToken, "room_id": room, "matrix_server_name": "evil.example"}, 403, "M_FORBIDDEN", "evil.example"},
		{"room the bot is not in", uvsBearer, req(aliceTok, otherRoom.RoomID), 403, "M_FORBIDDEN", "not in this room"},
		{"wrong bearer", "wrong", req(aliceTok, room), 403, "", ""},
		{"no bearer", "", req(aliceTok, room), 403, "", ""},
		{"malformed JSON", uvsBearer, `{"token": "x", "room_id": `, 400, "M_BAD_JSON", ""},
		{"room_id not a string", uvsBearer, `{"token": "x", "room_id": 5, "matrix_server_name": "localhost"}`, 400, "", "room_id"},
		{"no token", uvsBearer, `{"room_id": "!a:localhost", "matrix_server_name": "localhost"}`, 400, "", "token"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			status, body := post(t, r, "/verify/user_in_room", tc.bearer, tc.body)
			if status != tc.status {
				t.Fatalf("status %d %v, want %d", status, body, tc.status)
			}
			if tc.errcode != "" && body["errcode"] != tc.errcode {
				t.Errorf("errcode %v, want %s (%v)", body["errcode"], tc.errcode, body)
			}
			if msg, _ := body["error"].(string); tc.say != "" && !strings.Contains(msg, tc.say) && !strings.Contains(body["_raw"].(string)+msg, tc.say) {
				t.Errorf("error %q does not say %q", msg, tc.say)
			}
			if results, _ := body["results"].(map[string]any); results != nil && results["room_membership"] == true {
				t.Errorf("refusal with room_membership true: %v", body)
			}
			if body["power_levels"] != nil {
				t.Errorf("a refusal shows the room's power levels: %v", body)
			}
		})
	}

	// A flood of one user's requests is cut off with 429 and Retry-After.
	var limited bool
	floodTok := openIDToken(t, alice)
	for i := 0; i < 40 && !limited; i++ {
		status, _ := post(t, r, "/verify/user_in_room", uvsBearer, req(floodTok, room))
		limited = status == 429
	}
	if !limited {
		t.Error("40 requests of one user in a row were never rate limited")
	}

	time.Sleep(100 * time.Millisecond)
	logs := r.log.String()
	for _, secret := range []string{aliceTok.AccessToken, carolTok.AccessToken, floodTok.AccessToken, uvsBearer} {
		if strings.Contains(logs, secret) {
			t.Errorf("a token reached the log")
		}
	}
}
