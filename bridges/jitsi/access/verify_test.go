package access

import (
	"context"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"sync/atomic"
	"testing"

	"maunium.net/go/mautrix/id"
)

func TestVerify(t *testing.T) {
	const (
		userFalse = `"results":{"user":false},"user_id":null`
		roomFalse = `"results":{"user":false,"room_membership":null},"user_id":null,"power_levels":null`
	)
	tests := []struct {
		name       string
		path       string
		body       string
		bearer     string // default testBearer; "-" = none
		wantStatus int
		wantBody   string
		wantCalls  int64 // requests the fake homeserver saw
	}{
		{name: "user ok", path: "/verify/user", body: `{"token":"tok-alice","matrix_server_name":"example.org"}`,
			wantStatus: 200, wantBody: `{"results":{"user":true},"user_id":"@alice:example.org"}`, wantCalls: 1},
		{name: "user ok without server name and with unknown fields", path: "/verify/user",
			body: `{"token":"tok-alice","extra":{"a":[1,2]},"n":null}`, wantStatus: 200,
			wantBody: `{"results":{"user":true},"user_id":"@alice:example.org"}`, wantCalls: 1},
		{name: "room ok with power levels", path: "/verify/user_in_room",
			body: `{"token":"tok-alice","room_id":"!room:example.org","matrix_server_name":"example.org"}`, wantStatus: 200,
			wantBody: `{"results":{"user":true,"room_membership":true},"user_id":"@alice:example.org",
				"power_levels":{"room":{"ban":50,"events":{"m.room.name":50},"state_default":50,"users_default":0},"user":100}}`,
			wantCalls: 1},
		{name: "room ok without power levels", path: "/verify/user_in_room",
			body: `{"token":"tok-bob","room_id":"!nopl:example.org"}`, wantStatus: 200,
			wantBody:  `{"results":{"user":true,"room_membership":true},"user_id":"@bob:example.org","power_levels":null}`,
			wantCalls: 1},
		{name: "forged or expired token", path: "/verify/user", body: `{"token":"forged","matrix_server_name":"example.org"}`,
			wantStatus: 401, wantBody: `{` + userFalse + `,"errcode":"M_UNKNOWN_TOKEN","error":"the OpenID token is invalid or has expired"}`,
			wantCalls: 1},
		{name: "forged token in room", path: "/verify/user_in_room", body: `{"token":"forged","room_id":"!room:example.org"}`,
			wantStatus: 401, wantBody: `{` + roomFalse + `,"errcode":"M_UNKNOWN_TOKEN","error":"the OpenID token is invalid or has expired"}`,
			wantCalls: 1},
		{name: "sub on another server", path: "/verify/user", body: `{"token":"tok-eve"}`,
			wantStatus: 401, wantBody: `{` + userFalse + `,"errcode":"M_UNKNOWN_TOKEN","error":"the OpenID token is invalid or has expired"}`,
			wantCalls: 1},
		{name: "sub on a server ending like ours", path: "/verify/user", body: `{"token":"tok-tail"}`,
			wantStatus: 401, wantBody: `{` + userFalse + `,"errcode":"M_UNKNOWN_TOKEN","error":"the OpenID token is invalid or has expired"}`,
			wantCalls: 1},
		{name: "foreign matrix_server_name", path: "/verify/user_in_room",
			body:       `{"token":"tok-alice","room_id":"!room:example.org","matrix_server_name":"evil.example"}`,
			wantStatus: 403, wantBody: `{` + roomFalse + `,"errcode":"M_FORBIDDEN","error":"OpenID tokens of evil.example are not accepted here"}`},
		{name: "non-member (invited)", path: "/verify/user_in_room", body: `{"token":"tok-dave","room_id":"!room:example.org"}`,
			wantStatus: 403, wantBody: `{"results":{"user":true,"room_membership":false},"user_id":"@dave:example.org","power_levels":null,
				"errcode":"M_FORBIDDEN","error":"you are not a member of this room"}`, wantCalls: 1},
		{name: "never in the room", path: "/verify/user_in_room", body: `{"token":"tok-dave","room_id":"!nopl:example.org"}`,
			wantStatus: 403, wantBody: `{"results":{"user":true,"room_membership":false},"user_id":"@dave:example.org","power_levels":null,
				"errcode":"M_FORBIDDEN","error":"you are not a member of this room"}`, wantCalls: 1},
		{name: "left", path: "/verify/user_in_room", body: `{"token":"tok-carol","room_id":"!room:example.org"}`,
			wantStatus: 403, wantBody: `{"results":{"user":true,"room_membership":false},"user_id":"@carol:example.org","power_levels":null,
				"errcode":"M_FORBIDDEN","error":"you are not a member of this room"}`, wantCalls: 1},
		{name: "banned", path: "/verify/user_in_room", body: `{"token":"tok-bob","room_id":"!room:example.org"}`,
			wantStatus: 403, wantBody: `{"results":{"user":true,"room_membership":false},"user_id":"@bob:example.org","power_levels":null,
				"errcode":"M_FORBIDDEN","error":"you are banned from this room"}`, wantCalls: 1},
		{name: "bot not in room", path: "/verify/user_in_room", body: `{"token":"tok-alice","room_id":"!out:example.org"}`,
			wantStatus: 403, wantBody: `{"results":{"user":true,"room_membership":false},"user_id":"@alice:example.org","power_levels":null,
				"errcode":"M_FORBIDDEN","error":"Switchboard is not in this room"}`, wantCalls: 1},
		{name: "room state unreadable", path: "/verify/user_in_room", body: `{"token":"tok-alice","room_id":"!broken:example.org"}`,
			wantStatus: 502, wantBody: `{"results":{"user":true,"room_membership":false},"user_id":"@alice:example.org","power_levels":null,
				"errcode":"M_UNKNOWN","error":"the homeserver could not be asked"}`, wantCalls: 1},
		{name: "homeserver 500", path: "/verify/user", body: `{"token":"tok-500"}`,
			wantStatus: 502, wantBody: `{` + userFalse + `,"errcode":"M_UNKNOWN","error":"the homeserver could not be asked"}`, wantCalls: 1},
		{name: "homeserver 429", path: "/verify/user", body: `{"token":"tok-429"}`,
			wantStatus: 502, wantBody: `{` + userFalse + `,"errcode":"M_UNKNOWN","error":"the homeserver could not be asked"}`, wantCalls: 1},
		{name: "homeserver answer without sub", path: "/verify/user", body: `{"token":"tok-nosub"}`,
			wantStatus: 502, wantBody: `{` + userFalse + `,"errcode":"M_UNKNOWN","error":"the homeserver could not be asked"}`, wantCalls: 1},
		{name: "missing bearer", path: "/verify/user", bearer: "-", body: `{"token":"tok-alice"}`,
			wantStatus: 403, wantBody: `{"errcode":"M_FORBIDDEN","error":"the bearer token is missing or wrong"}`},
		{name: "wrong bearer", path: "/verify/user_in_room", bearer: "uvs-secreT", body: `{"token":"tok-alice","room_id":"!room:example.org"}`,
			wantStatus: 403, wantBody: `{"errcode":"M_FORBIDDEN","error":"the bearer token is missing or wrong"}`},
		{name: "malformed JSON", path: "/verify/user", body: `{"token":"tok-alice",}`,
			wantStatus: 400, wantBody: `{"errcode":"M_BAD_JSON","error":"the body is not valid JSON at byte 22: invalid character '}' looking for beginning of object key string"}`},
		{name: "truncated JSON", path: "/verify/user", body: `{"token":"tok-al`,
			wantStatus: 400, wantBody: `{"errcode":"M_BAD_JSON","error":"the body is not valid JSON: it ends too early"}`},
		{name: "empty body", path: "/verify/user", body: ``,
			wantStatus: 400, wantBody: `{"errcode":"M_NOT_JSON","error":"Invalid request: no JSON content found in body."}`},
		{name: "two objects", path: "/verify/user", body: `{"token":"tok-alice"} {}`,
			wantStatus: 400, wantBody: `{"errcode":"M_BAD_JSON","error":"the body has more after its JSON object"}`},
		{name: "not an object", path: "/verify/user", body: `["tok-alice"]`,
			wantStatus: 400, wantBody: `{"errcode":"M_BAD_JSON","error":"the body must be a JSON object, not an array"}`},
		{name: "token is a number", path: "/verify/user", body: `{"token":12}`,
			wantStatus: 400, wantBody: `{"errcode":"M_BAD_JSON","error":"token must be a string, not a number"}`},
		{name: "room_id is an object", path: "/verify/user_in_room", body: `{"token":"tok-alice","room_id":{"id":"!room:example.org"}}`,
			wantStatus: 400, wantBody: `{"errcode":"M_BAD_JSON","error":"room_id must be a string, not an object"}`},
		{name: "server name is a bool", path: "/verify/user", body: `{"token":"tok-alice","matrix_server_name":true}`,
			wantStatus: 400, wantBody: `{"errcode":"M_BAD_JSON","error":"matrix_server_name must be a string, not a bool"}`},
		{name: "missing token", path: "/verify/user", body: `{"matrix_server_name":"example.org"}`,
			wantStatus: 400, wantBody: `{"errcode":"M_MISSING_PARAM","error":"Invalid request: token not found or with empty value in the JSON payload."}`},
		{name: "null token", path: "/verify/user", body: `{"token":null}`,
			wantStatus: 400, wantBody: `{"errcode":"M_MISSING_PARAM","error":"Invalid request: token not found or with empty value in the JSON payload."}`},
		{name: "empty room_id", path: "/verify/user_in_room", body: `{"token":"tok-alice","room_id":""}`,
			wantStatus: 400, wantBody: `{"errcode":"M_MISSING_PARAM","error":"Invalid request: room_id not found or with empty value in the JSON payload."}`},
		{name: "room_id not a room ID", path: "/verify/user_in_room", body: `{"token":"tok-alice","room_id":"#alias:example.org"}`,
			wantStatus: 400, wantBody: `{"errcode":"M_INVALID_PARAM","error":"room_id must be a Matrix room ID starting with \"!\""}`},
		{name: "room_id with a space", path: "/verify/user_in_room", body: `{"token":"tok-alice","room_id":"!a b:example.org"}`,
			wantStatus: 400, wantBody: `{"errcode":"M_INVALID_PARAM","error":"room_id must not contain spaces or control characters"}`},
		{name: "body too large", path: "/verify/user", body: `{"token":"` + strings.Repeat("a", 9000) + `"}`,
			wantStatus: 413, wantBody: `{"errcode":"M_TOO_LARGE","error":"the body is larger than 8192 bytes"}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h, hs, _ := newTestHandler(t, nil)
			bearer := testBearer
			if tt.bearer == "-" {
				bearer = ""
			} else if tt.bearer != "" {
				bearer = tt.bearer
			}
			w := call{path: tt.path, body: tt.body, bearer: bearer}.do(h)
			if w.Code != tt.wantStatus {
				t.Errorf("status %d, want %d", w.Code, tt.wantStatus)
			}
			if ct := w.Header().Get("Content-Type"); ct != "application/json" {
				t.Errorf("Content-Type %q", ct)
			}
			assertJSON(t, w.Body.Bytes(), tt.wantBody)
			if got := hs.calls.Load(); got != tt.wantCalls {
				t.Errorf("homeserver saw %d requests, want %d", got, tt.wantCalls)
			}
		})
	}
}

// TestVerifyWithoutBearerConfigured: without a bearer token the UVS endpoints are off.
func TestVerifyWithoutBearerConfigured(t *testing.T) {
	h, hs, _ := newTestHandler(t, func(c *Config) { c.AuthToken = "" })
	for _, path := range []string{"/verify/user", "/verify/user_in_room"} {
		w := call{path: path, body: `{"token":"tok-alice","room_id":"!r:example.org"}`}.do(h)
		if w.Code != 404 || hs.calls.Load() != 0 {
			t.Fatalf("%s: status %d, %d homeserver calls: %s", path, w.Code, hs.calls.Load(), w.Body)
		}
	}
}

func TestHomeserverDown(t *testing.T) {
	down := httptest.NewServer(nil)
	url := down.URL
	down.Close()
	h, _, _ := newTestHandler(t, func(c *Config) { c.HomeserverURL = url })
	w := call{path: "/verify/user_in_room", body: `{"token":"tok-alice","room_id":"!room:example.org"}`, bearer: testBearer}.do(h)
	if w.Code != 502 {
		t.Fatalf("status %d, want 502", w.Code)
	}
	assertJSON(t, w.Body.Bytes(), `{"results":{"user":false,"room_membership":null},"user_id":null,"power_levels":null,
		"errcode":"M_UNKNOWN","error":"the homeserver could not be asked"}`)
}

func TestOnVerified(t *testing.T) {
	type seen struct{ room, user, name string }
	var got []seen
	h, _, _ := newTestHandler(t, func(c *Config) {
		c.OnVerified = func(_ context.Context, roomID id.RoomID, userID id.UserID, displayName string) {
			got = append(got, seen{roomID.String(), userID.String(), displayName})
		}
	})
	call{path: "/verify/user", body: `{"token":"tok-alice"}`, bearer: testBearer}.do(h)
	call{path: "/verify/user_in_room", body: `{"token":"tok-bob","room_id":"!room:example.org"}`, bearer: testBearer}.do(h)
	call{path: "/verify/user_in_room", body: `{"token":"tok-alice","room_id":"!room:example.org"}`, bearer: testBearer}.do(h)
	want := []seen{{"!room:example.org", "@alice:example.org", "Alice"}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("OnVerified calls %v, want %v", got, want)
	}
}

// TestNoRedirects: the userinfo URL carries the token, so a redirect is never followed.
func TestNoRedirects(t *testing.T) {
	var elsewhere atomic.Int64
	target := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		elsewhere.Add(1)
		_, _ = w.Write([]byte(`{"sub":"@alice:example.org"}`))
	}))
	defer target.Close()
	redirector := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, target.URL+r.URL.RequestURI(), http.StatusFound)
	}))
	defer redirector.Close()
	h, _, _ := newTestHandler(t, func(c *Config) { c.HomeserverURL = redirector.URL; c.HTTPClient = &http.Client{} })
	w := call{path: "/verify/user", body: `{"token":"tok-alice"}`, bearer: testBearer}.do(h)
	if w.Code != http.StatusBadGateway {
		t.Errorf("status %d, want 502", w.Code)
	}
	if n := elsewhere.Load(); n != 0 {
		t.Errorf("the redirect was followed (%d requests)", n)
	}
}
