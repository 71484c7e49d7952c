package access

import (
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	josejwt "github.com/go-jose/go-jose/v4/jwt"
	"maunium.net/go/mautrix/id"
)

var (
	rsaKeyOnce sync.Once
	rsaKey     *rsa.PrivateKey
	rsaKeyErr  error
)

// testRSAKey returns one 2048-bit key for all tests.
func testRSAKey(t testing.TB) *rsa.PrivateKey {
	t.Helper()
	rsaKeyOnce.Do(func() { rsaKey, rsaKeyErr = rsa.GenerateKey(rand.Reader, 2048) })
	if rsaKeyErr != nil {
		t.Fatalf("rsa.GenerateKey: %v", rsaKeyErr)
	}
	return rsaKey
}

// testConference is the Conference function of the tests.
func testConference(roomID id.RoomID) string {
	return strings.TrimRight(base64.RawURLEncoding.EncodeToString([]byte(roomID)), "=")
}

// jitsiClaims are the private claims of a Jitsi JWT.
type jitsiClaims struct {
	Room    string `json:"room"`
	Context struct {
		User struct {
			ID   string `json:"id"`
			Name string `json:"name"`
		} `json:"user"`
	} `json:"context"`
}

func TestTokenJWT(t *testing.T) {
	secret := []byte("a shared app secret of 32 bytes!")
	key := testRSAKey(t)
	tests := []struct {
		name     string
		jwt      JWTConfig
		alg      jose.SignatureAlgorithm
		verifier any
		wantKID  string
	}{
		{name: "HS256", jwt: JWTConfig{Issuer: "switchboard", Secret: secret}, alg: jose.HS256, verifier: secret},
		{name: "RS256", jwt: JWTConfig{Issuer: "switchboard", Audience: "meet", Subject: "meet.example.org",
			PrivateKey: key, KeyID: "switchboard/key1", TTL: 5 * time.Minute},
			alg: jose.RS256, verifier: &key.PublicKey, wantKID: "switchboard/key1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h, _, clock := newTestHandler(t, func(c *Config) {
				j := tt.jwt
				c.JWT = &j
				c.Conference = testConference
				c.MeetURL = "https://meet.example.org/"
			})
			w := call{path: "/token", body: `{"token":"tok-alice","room_id":"!room:example.org","matrix_server_name":"example.org"}`}.do(h)
			if w.Code != http.StatusOK {
				t.Fatalf("status %d: %s", w.Code, w.Body)
			}
			if got := w.Header().Get("Access-Control-Allow-Origin"); got != "*" {
				t.Errorf("Access-Control-Allow-Origin %q", got)
			}
			var ans struct {
				JWT        string `json:"jwt"`
				Conference string `json:"conference"`
				URL        string `json:"url"`
				ExpiresAt  int64  `json:"expires_at"`
			}
			if err := json.Unmarshal(w.Body.Bytes(), &ans); err != nil {
				t.Fatalf("answer: %v", err)
			}
			conf := testConference(testRoom)
			if ans.Conference != conf {
				t.Errorf("conference %q, want %q", ans.Conference, conf)
			}
			if want := "https://meet.example.org/" + conf + "?jwt=" + ans.JWT; ans.URL != want {
				t.Errorf("url %q, want %q", ans.URL, want)
			}

			// Independent check with go-jose.
			tok, err := josejwt.ParseSigned(ans.JWT, []jose.SignatureAlgorithm{tt.alg})
			if err != nil {
				t.Fatalf("ParseSigned: %v", err)
			}
			if kid := tok.Headers[0].KeyID; kid != tt.wantKID {
				t.Errorf("kid %q, want %q", kid, tt.wantKID)
			}
			var std josejwt.Claims
			var jc jitsiClaims
			if err := tok.Claims(tt.verifier, &std, &jc); err != nil {
				t.Fatalf("signature: %v", err)
			}
			now := clock.Now()
			aud, sub := tt.jwt.Audience, tt.jwt.Subject
			if aud == "" {
				aud = DefaultAudience
			}
			if sub == "" {
				sub = DefaultSubject
			}
			if err := std.ValidateWithLeeway(josejwt.Expected{Issuer: "switchboard", Subject: sub,
				AnyAudience: josejwt.Audience{aud}, Time: now}, 0); err != nil {
				t.Errorf("claims: %v", err)
			}
			ttl := tt.jwt.TTL
			if ttl == 0 {
				ttl = DefaultJWTTTL
			}
			if got, want := std.Expiry.Time(), now.Add(ttl); !got.Equal(want) || ans.ExpiresAt != want.Unix() {
				t.Errorf("exp %v (answer %d), want %v", got, ans.ExpiresAt, want)
			}
			if got, want := std.NotBefore.Time(), now.Add(-10*time.Second); !got.Equal(want) {
				t.Errorf("nbf %v, want %v", got, want)
			}
			if got := std.IssuedAt.Time(); !got.Equal(now) {
				t.Errorf("iat %v, want %v", got, now)
			}
			if jc.Room != conf || jc.Context.User.ID != "@alice:example.org" || jc.Context.User.Name != "Alice" {
				t.Errorf("private claims %+v", jc)
			}
			// aud is a plain string, as Jitsi's token checks want it.
			payload, _ := base64.RawURLEncoding.DecodeString(strings.Split(ans.JWT, ".")[1])
			var raw map[string]any
			_ = json.Unmarshal(payload, &raw)
			if _, ok := raw["aud"].(string); !ok {
				t.Errorf("aud is %T, want a string", raw["aud"])
			}
			// Another key does not verify it.
			var wrong any = []byte("another secret")
			if tt.alg == jose.RS256 {
				other, err := rsa.GenerateKey(rand.Reader, 2048)
				if err != nil {
					t.Fatal(err)
				}
				wrong = &other.PublicKey
			}
			if err := tok.Claims(wrong, &std); err == nil {
				t.Error("the JWT verified with another key")
			}
		})
	}
}

func TestTokenRefusals(t *testing.T) {
	h, hs, _ := newTestHandler(t, func(c *Config) {
		c.JWT = &JWTConfig{Issuer: "switchboard", Secret: []byte("secret")}
		c.Conference = testConference
		c.MeetURL = "https://meet.example.org"
	})
	tests := []struct {
		name       string
		method     string
		body       string
		wantStatus int
		wantBody   string
	}{
		{name: "preflight", method: http.MethodOptions, wantStatus: 204},
		{name: "get", method: http.MethodGet, wantStatus: 405,
			wantBody: `{"errcode":"M_UNRECOGNIZED","error":"method GET is not allowed on /token; use POST"}`},
		{name: "missing room", body: `{"token":"tok-alice"}`, wantStatus: 400,
			wantBody: `{"errcode":"M_MISSING_PARAM","error":"Invalid request: room_id not found or with empty value in the JSON payload."}`},
		{name: "forged token", body: `{"token":"forged","room_id":"!room:example.org"}`, wantStatus: 401,
			wantBody: `{"errcode":"M_UNKNOWN_TOKEN","error":"the OpenID token is invalid or has expired"}`},
		{name: "banned", body: `{"token":"tok-bob","room_id":"!room:example.org"}`, wantStatus: 403,
			wantBody: `{"errcode":"M_FORBIDDEN","error":"you are banned from this room"}`},
		{name: "left", body: `{"token":"tok-carol","room_id":"!room:example.org"}`, wantStatus: 403,
			wantBody: `{"errcode":"M_FORBIDDEN","error":"you are not a member of this room"}`},
		{name: "bot not in room", body: `{"token":"tok-alice","room_id":"!out:example.org"}`, wantStatus: 403,
			wantBody: `{"errcode":"M_FORBIDDEN","error":"Switchboard is not in this room"}`},
		{name: "foreign server", body: `{"token":"tok-alice","room_id":"!room:example.org","matrix_server_name":"evil.example"}`,
			wantStatus: 403, wantBody: `{"errcode":"M_FORBIDDEN","error":"OpenID tokens of evil.example are not accepted here"}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := call{method: tt.method, path: "/token", body: tt.body}.do(h)
			if w.Code != tt.wantStatus {
				t.Fatalf("status %d, want %d: %s", w.Code, tt.wantStatus, w.Body)
			}
			if got := w.Header().Get("Access-Control-Allow-Origin"); got != "*" {
				t.Errorf("Access-Control-Allow-Origin %q", got)
			}
			if tt.wantBody != "" {
				assertJSON(t, w.Body.Bytes(), tt.wantBody)
			}
		})
	}
	if got := hs.calls.Load(); got != 4 { // forged, banned, left, bot not in room
		t.Errorf("homeserver saw %d requests, want 4", got)
	}
}
