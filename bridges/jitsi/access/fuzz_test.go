package access

import (
	"encoding/json"
	"net/http"
	"testing"
)

// FuzzVerifyRequest feeds arbitrary bodies to every POST endpoint: ServeHTTP must not panic
// and must answer one of the documented statuses with a JSON body.
func FuzzVerifyRequest(f *testing.F) {
	for _, seed := range []string{
		`{"token":"tok-alice","room_id":"!room:example.org","matrix_server_name":"example.org"}`,
		`{"token":"tok-bob","room_id":"!room:example.org"}`,
		`{"token":"forged","room_id":"!out:example.org"}`,
		`{"token":12}`, `[]`, `null`, ``, `{"token":"tok-alice"} x`, `{"room_id":"!\u0000"}`,
		`{"token":"tok-eve","matrix_server_name":"evil.example"}`,
	} {
		f.Add(seed)
	}
	h, _, _ := newTestHandler(f, func(c *Config) {
		c.JWT = &JWTConfig{Issuer: "switchboard", Secret: []byte("secret")}
		c.Conference = testConference
		c.MeetURL = "https://meet.example.org"
		c.MaxBodyBytes = 512
	})
	known := map[int]bool{200: true, 400: true, 401: true, 403: true, 413: true, 429: true, 500: true, 502: true}
	f.Fuzz(func(t *testing.T, body string) {
		for _, path := range []string{"/verify/user", "/verify/user_in_room", "/token"} {
			w := call{path: path, body: body, bearer: testBearer}.do(h)
			if !known[w.Code] {
				t.Fatalf("%s: status %d: %s", path, w.Code, w.Body)
			}
			if w.Code == http.StatusInternalServerError {
				t.Fatalf("%s: internal error: %s", path, w.Body)
			}
			if !json.Valid(w.Body.Bytes()) {
				t.Fatalf("%s: answer is not JSON: %q", path, w.Body)
			}
		}
	})
}
