package appservice

import (
	"errors"
	"net/http"
	"strings"
	"testing"

	"maunium.net/go/mautrix"
)

func TestPingProblem(t *testing.T) {
	respErr := func(code string, extra map[string]any) error {
		return mautrix.HTTPError{
			Response:  &http.Response{StatusCode: http.StatusBadGateway},
			RespError: &mautrix.RespError{ErrCode: code, ExtraData: extra},
		}
	}
	for _, tt := range []struct {
		name string
		err  error
		want string
	}{
		{"connection failed", respErr("M_CONNECTION_FAILED", nil), "reachable from the homeserver"},
		{"connection timeout", respErr("M_CONNECTION_TIMEOUT", nil), "reachable from the homeserver"},
		{"wrong hs_token (403)", respErr("M_BAD_STATUS", map[string]any{"status": float64(403)}), "different hs_token"},
		{"missing hs_token (401)", respErr("M_BAD_STATUS", map[string]any{"status": float64(401)}), "different hs_token"},
		{"other status", respErr("M_BAD_STATUS", map[string]any{"status": float64(500)}), "HTTP 500"},
		{"status missing", respErr("M_BAD_STATUS", nil), "answered the ping with an error"},
		{"no url", respErr("M_URL_NOT_SET", nil), "has no url"},
		{"as_token refused", respErr("M_FORBIDDEN", nil), "did not accept Switchboard's as_token"},
		{"unknown code", respErr("M_UNKNOWN", nil), "loaded this registration"},
		{"no Matrix error", errors.New("connection refused"), "loaded this registration"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if got := pingProblem(tt.err); !strings.Contains(got, tt.want) {
				t.Errorf("pingProblem = %q, want it to contain %q", got, tt.want)
			}
		})
	}
}
