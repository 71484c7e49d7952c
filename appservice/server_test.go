package appservice

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
)

func msgEvent(eventID, room, body string) string {
	return fmt.Sprintf(`{"event_id":%q,"room_id":%q,"type":"m.room.message","sender":"@alice:test","origin_server_ts":1,"content":{"msgtype":"m.text","body":%q}}`, eventID, room, body)
}

func txnBody(events ...string) string {
	return `{"events":[` + strings.Join(events, ",") + `]}`
}

// TestConformance checks every endpoint of the Application Service API and its error codes
// against the running server.
func TestConformance(t *testing.T) {
	env := startCore(t, sqliteStore(t))
	tok := testHSToken
	tests := []struct {
		name, method, path, token, body string
		status                          int
		errcode                         string
	}{
		{"txn ok", "PUT", "/_matrix/app/v1/transactions/1", tok, txnBody(msgEvent("$a", "!r:test", "hi")), 200, ""},
		{"txn legacy path", "PUT", "/transactions/2", tok, txnBody(msgEvent("$b", "!r:test", "hi")), 200, ""},
		{"txn legacy access_token", "PUT", "/_matrix/app/v1/transactions/3?access_token=" + tok, "", txnBody(), 200, ""},
		{"txn missing token", "PUT", "/_matrix/app/v1/transactions/4", "", txnBody(), 401, "M_UNAUTHORIZED"},
		{"txn wrong token", "PUT", "/_matrix/app/v1/transactions/5", "wrong", txnBody(), 403, "M_FORBIDDEN"},
		{"txn wrong legacy token", "PUT", "/_matrix/app/v1/transactions/5?access_token=wrong", "", txnBody(), 403, "M_FORBIDDEN"},
		{"txn not json", "PUT", "/_matrix/app/v1/transactions/6", tok, `{"events":[`, 400, "M_NOT_JSON"},
		{"txn not an object", "PUT", "/_matrix/app/v1/transactions/6", tok, `[]`, 400, "M_BAD_JSON"},
		{"txn events not array", "PUT", "/_matrix/app/v1/transactions/7", tok, `{"events":{}}`, 400, "M_BAD_JSON"},
		{"txn event without id", "PUT", "/_matrix/app/v1/transactions/8", tok, `{"events":[{"room_id":"!r:test","type":"m.room.message","sender":"@a:test"}]}`, 400, "M_BAD_JSON"},
		{"txn wrong method", "GET", "/_matrix/app/v1/transactions/9", tok, "", 405, "M_UNRECOGNIZED"},
		{"user exists", "GET", "/_matrix/app/v1/users/@_rec_exists:test", tok, "", 200, ""},
		{"user legacy path", "GET", "/users/@_rec_exists:test", tok, "", 200, ""},
		{"user unknown in namespace", "GET", "/_matrix/app/v1/users/@_rec_nobody:test", tok, "", 404, "M_NOT_FOUND"},
		{"user outside namespaces", "GET", "/_matrix/app/v1/users/@alice:test", tok, "", 404, "M_NOT_FOUND"},
		{"user wrong token", "GET", "/_matrix/app/v1/users/@_rec_exists:test", "wrong", "", 403, "M_FORBIDDEN"},
		{"alias exists", "GET", "/_matrix/app/v1/rooms/%23_rec_exists:test", tok, "", 200, ""},
		{"alias legacy path", "GET", "/rooms/%23_rec_exists:test", tok, "", 200, ""},
		{"alias unknown", "GET", "/_matrix/app/v1/rooms/%23_rec_nope:test", tok, "", 404, "M_NOT_FOUND"},
		{"alias missing token", "GET", "/_matrix/app/v1/rooms/%23_rec_exists:test", "", "", 401, "M_UNAUTHORIZED"},
		{"protocol", "GET", "/_matrix/app/v1/thirdparty/protocol/recproto", tok, "", 200, ""},
		{"protocol unknown", "GET", "/_matrix/app/v1/thirdparty/protocol/nope", tok, "", 404, "M_NOT_FOUND"},
		{"protocol unstable path", "GET", "/_matrix/app/unstable/thirdparty/protocol/recproto", tok, "", 200, ""},
		{"location by fields", "GET", "/_matrix/app/v1/thirdparty/location/recproto?room=lobby", tok, "", 200, ""},
		{"location none", "GET", "/_matrix/app/v1/thirdparty/location/recproto", tok, "", 404, "M_NOT_FOUND"},
		{"location by alias", "GET", "/_matrix/app/v1/thirdparty/location?alias=%23_rec_x:test", tok, "", 200, ""},
		{"location alias missing", "GET", "/_matrix/app/v1/thirdparty/location", tok, "", 400, "M_MISSING_PARAM"},
		{"user by fields", "GET", "/_matrix/app/v1/thirdparty/user/recproto?name=bob", tok, "", 200, ""},
		{"user by id", "GET", "/_matrix/app/v1/thirdparty/user?userid=@_rec_bob:test", tok, "", 200, ""},
		{"user by id missing", "GET", "/_matrix/app/v1/thirdparty/user", tok, "", 400, "M_MISSING_PARAM"},
		{"thirdparty wrong token", "GET", "/_matrix/app/v1/thirdparty/protocol/recproto", "nope", "", 403, "M_FORBIDDEN"},
		{"ping", "POST", "/_matrix/app/v1/ping", tok, `{"transaction_id":"t1"}`, 200, ""},
		{"ping empty body", "POST", "/_matrix/app/v1/ping", tok, ``, 200, ""},
		{"ping bad json", "POST", "/_matrix/app/v1/ping", tok, `{`, 400, "M_NOT_JSON"},
		{"ping missing token", "POST", "/_matrix/app/v1/ping", "", `{}`, 401, "M_UNAUTHORIZED"},
		{"ping wrong method", "GET", "/_matrix/app/v1/ping", tok, "", 405, "M_UNRECOGNIZED"},
		{"unknown route", "GET", "/_matrix/app/v1/nothing", tok, "", 404, "M_UNRECOGNIZED"},
		{"unknown root", "GET", "/", "", "", 404, "M_UNRECOGNIZED"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, body := env.do(t, tt.method, tt.path, tt.token, tt.body)
			if status != tt.status {
				t.Fatalf("status = %d, want %d (body %s)", status, tt.status, body)
			}
			var resp map[string]any
			if err := json.Unmarshal([]byte(body), &resp); err != nil && tt.errcode != "" {
				t.Fatalf("body is not JSON: %q", body)
			}
			if got, _ := resp["errcode"].(string); got != tt.errcode {
				t.Fatalf("errcode = %q, want %q (body %s)", got, tt.errcode, body)
			}
		})
	}
}

func TestTransactionTooLarge(t *testing.T) {
	env := startCore(t, sqliteStore(t))
	env.core.opts.MaxBodyBytes = 1024
	big := txnBody(msgEvent("$big", "!r:test", strings.Repeat("x", 2048)))
	status, body := env.do(t, http.MethodPut, "/_matrix/app/v1/transactions/big", testHSToken, big)
	if status != http.StatusRequestEntityTooLarge || !strings.Contains(body, "M_TOO_LARGE") {
		t.Fatalf("got %d %s, want 413 M_TOO_LARGE", status, body)
	}
	if n, _ := env.st.InboxDepth(context.Background()); n != 0 {
		t.Fatalf("oversize transaction journaled %d events", n)
	}
}

// TestRejectedTransactionChangesNothing: a malformed transaction is not journaled, and its
// id is not burnt: the corrected retry with the same id is accepted.
func TestRejectedTransactionChangesNothing(t *testing.T) {
	env := startCore(t, sqliteStore(t))
	bad := `{"events":[` + msgEvent("$x1", "!r:test", "ok") + `,{"type":"m.room.message"}]}`
	if status, _ := env.do(t, "PUT", "/_matrix/app/v1/transactions/t1", testHSToken, bad); status != 400 {
		t.Fatalf("status %d, want 400", status)
	}
	if n, _ := env.st.InboxDepth(context.Background()); n != 0 {
		t.Fatalf("rejected transaction journaled %d events", n)
	}
	if status, _ := env.do(t, "PUT", "/_matrix/app/v1/transactions/t1", testHSToken, txnBody(msgEvent("$x1", "!r:test", "ok"))); status != 200 {
		t.Fatalf("retry status %d, want 200", status)
	}
}
