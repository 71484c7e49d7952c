package jitsie2e

import (
	"fmt"
	"strings"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	josejwt "github.com/go-jose/go-jose/v4/jwt"

	"maunium.net/go/mautrix/id"

	"github.com/switchboard-matrix/switchboard/bridges/jitsi"
	"github.com/switchboard-matrix/switchboard/internal/testpeer/peerproc"
)

const jwtSecret = "jitsi-app-secret-for-the-e2e-test-0123456789" // RFC 7518 3.2: at least 256 bits

// TestMintedJitsiToken: with Jitsi's plain JWT authentication, a member exchanges a real
// OpenID token from Synapse for a Jitsi token. The token is checked with an independent
// JWT library (go-jose) against the configured secret and the claims Jitsi's token
// authentication reads (iss, aud, sub, room, exp, context.user); its room is the
// conference of the room's widget. A non-member gets no token.
func TestMintedJitsiToken(t *testing.T) {
	r := startModule(t, jwtConfig(t), false)
	alice := onHS.NewUser(t, "alice")
	dave := onHS.NewUser(t, "dave")
	bot := r.module.BotUserID()
	room := meetingRoom(t, alice, bot, "Clinic")
	sendText(t, alice, room, "!meet")
	waitNotice(t, alice, room, bot, "Added a Jitsi video meeting")
	_, widget, _ := widgetOf(t, alice, room)
	conf := widget["data"].(map[string]any)["conferenceId"].(string)

	tok := openIDToken(t, alice)
	status, body := post(t, r, "/token", "", map[string]any{"token": tok.AccessToken, "matrix_server_name": tok.MatrixServerName, "room_id": room})
	if status != 200 {
		t.Fatalf("/token: %d %v", status, body)
	}
	raw, _ := body["jwt"].(string)
	checkJitsiToken(t, raw, alice.UserID, conf)
	if u, _ := body["url"].(string); !strings.HasPrefix(u, "https://meet.test/") || !strings.Contains(u, "jwt="+raw) {
		t.Errorf("url %q: want the conference on Jitsi with the token", u)
	}

	if status, body := post(t, r, "/token", "", map[string]any{"token": openIDToken(t, dave).AccessToken, "matrix_server_name": "localhost", "room_id": room}); status != 403 || body["jwt"] != nil {
		t.Errorf("non-member: %d %v, want 403 without a token", status, body)
	}
	if status, _ := post(t, r, "/token", "", map[string]any{"token": "forged", "matrix_server_name": "localhost", "room_id": room}); status != 401 {
		t.Errorf("forged OpenID token: %d, want 401", status)
	}
}

// jwtConfig is the module minting HS256 tokens, its listener on a port chosen here so that
// its public URL (the join page's) is known before it starts.
func jwtConfig(t testing.TB) jitsi.Config {
	t.Helper()
	port, err := peerproc.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	cfg := moduleConfig()
	cfg.Auth = jitsi.AuthJWT
	cfg.JWT = jitsi.JWTConfig{AppID: "switchboard-test", Audience: "jitsi", Secret: jwtSecret}
	cfg.HTTP.Listen = fmt.Sprintf("127.0.0.1:%d", port)
	cfg.HTTP.PublicURL = "http://" + cfg.HTTP.Listen
	return cfg
}

// checkJitsiToken verifies a minted token with go-jose, an independent JWT library, against
// the secret and the claims Jitsi's token authentication reads.
func checkJitsiToken(t testing.TB, raw string, user id.UserID, conf string) {
	t.Helper()
	parsed, err := josejwt.ParseSigned(raw, []jose.SignatureAlgorithm{jose.HS256})
	if err != nil {
		t.Fatalf("go-jose cannot parse the token: %v", err)
	}
	var std josejwt.Claims
	var jitsiClaims struct {
		Room    string `json:"room"`
		Context struct {
			User struct {
				ID   string `json:"id"`
				Name string `json:"name"`
			} `json:"user"`
		} `json:"context"`
	}
	if err := parsed.Claims([]byte(jwtSecret), &std, &jitsiClaims); err != nil {
		t.Fatalf("the token's signature does not verify with the secret: %v", err)
	}
	if err := parsed.Claims([]byte("another-secret-entirely"), &std); err == nil {
		t.Fatal("the token verifies with a wrong secret")
	}
	if err := std.ValidateWithLeeway(josejwt.Expected{Issuer: "switchboard-test", AnyAudience: []string{"jitsi"}, Subject: "meet.test", Time: time.Now()}, time.Minute); err != nil {
		t.Errorf("standard claims: %v (%+v)", err, std)
	}
	if std.Expiry == nil || std.Expiry.Time().After(time.Now().Add(2*time.Hour)) {
		t.Errorf("exp %v: want within the configured hour", std.Expiry)
	}
	if !strings.EqualFold(jitsiClaims.Room, conf) {
		t.Errorf("room claim %q, want the widget's conference %q", jitsiClaims.Room, conf)
	}
	if jitsiClaims.Context.User.ID != user.String() {
		t.Errorf("context.user.id %q, want %s", jitsiClaims.Context.User.ID, user)
	}
}
