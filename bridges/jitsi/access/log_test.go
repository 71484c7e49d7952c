package access

import (
	"bytes"
	"context"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/rs/zerolog"
)

// TestLogsNeverHoldTokens sends OpenID tokens down every path that logs, with the logger at
// trace level, and looks for them in the output.
func TestLogsNeverHoldTokens(t *testing.T) {
	const secret = "s3cr3t-openid-token-Zq9"
	down := httptest.NewServer(nil)
	downURL := down.URL
	down.Close()
	tests := []struct {
		name   string
		hsDown bool
		path   string
		body   string
		bearer string
	}{
		{name: "forged token", path: "/verify/user", body: `{"token":"` + secret + `"}`, bearer: testBearer},
		{name: "homeserver down", hsDown: true, path: "/verify/user_in_room", body: `{"token":"` + secret + `","room_id":"!room:example.org"}`, bearer: testBearer},
		{name: "foreign server", path: "/verify/user", body: `{"token":"` + secret + `","matrix_server_name":"evil.example"}`, bearer: testBearer},
		{name: "wrong bearer", path: "/verify/user", body: `{"token":"` + secret + `"}`, bearer: "wrong-" + secret},
		{name: "bad json", path: "/verify/user", body: `{"token":"` + secret + `",`, bearer: testBearer},
		{name: "success", path: "/verify/user_in_room", body: `{"token":"tok-alice","room_id":"!room:example.org"}`, bearer: testBearer},
		{name: "token endpoint", path: "/token", body: `{"token":"tok-alice","room_id":"!room:example.org"}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var buf bytes.Buffer
			log := zerolog.New(&buf).Level(zerolog.TraceLevel)
			h, _, _ := newTestHandler(t, func(c *Config) {
				if tt.hsDown {
					c.HomeserverURL = downURL
				}
				c.JWT = &JWTConfig{Issuer: "switchboard", Secret: []byte("jwt-" + secret)}
				c.Conference = testConference
				c.MeetURL = "https://meet.example.org"
			})
			ctx := log.WithContext(context.Background())
			w := call{path: tt.path, body: tt.body, bearer: tt.bearer, ctx: ctx}.do(h)
			t.Logf("log:\n%s", buf.String())
			for _, s := range []string{secret, "tok-alice", testBearer} {
				if strings.Contains(buf.String(), s) {
					t.Errorf("log holds %q:\n%s", s, buf.String())
				}
				if s != "tok-alice" && strings.Contains(w.Body.String(), s) {
					t.Errorf("answer holds %q: %s", s, w.Body.String())
				}
			}
			if tt.hsDown && !strings.Contains(buf.String(), "Failed to check an OpenID token") {
				t.Errorf("the failure was not logged:\n%s", buf.String())
			}
		})
	}
}
