package appservice

import (
	"errors"
	"fmt"
	"net/http"

	"maunium.net/go/mautrix"
)

// pingProblem turns the homeserver's answer to a failed appservice ping (spec v1.7, POST
// /_matrix/client/v1/appservice/{appserviceId}/ping) into what the operator should check.
// The homeserver says why it failed: it could not connect to the registration's url
// (M_CONNECTION_FAILED, M_CONNECTION_TIMEOUT), Switchboard answered with an error
// (M_BAD_STATUS with the status: 401 or 403 means the two sides hold different hs_token),
// its registration has no url (M_URL_NOT_SET), or it does not take our as_token for this
// registration (M_FORBIDDEN). Synapse gives these codes; Dendrite v0.13.8 has no ping.
func pingProblem(err error) string {
	const generic = "The homeserver could not reach Switchboard: check that the registration's url is reachable from the homeserver and that the homeserver loaded this registration"
	var httpErr mautrix.HTTPError
	if !errors.As(err, &httpErr) || httpErr.RespError == nil {
		return generic
	}
	switch httpErr.RespError.ErrCode {
	case mautrix.MConnectionFailed.ErrCode, "M_CONNECTION_TIMEOUT":
		return "The homeserver could not reach Switchboard: check that the registration's url is reachable from the homeserver"
	case mautrix.MBadStatus.ErrCode:
		status, _ := httpErr.RespError.ExtraData["status"].(float64)
		switch int(status) {
		case http.StatusUnauthorized, http.StatusForbidden:
			return "The homeserver reached Switchboard, which refused its token: the homeserver and Switchboard hold different hs_token; give both the same registration file"
		case 0:
			return "The homeserver reached Switchboard, which answered the ping with an error"
		default:
			return fmt.Sprintf("The homeserver reached Switchboard, which answered the ping with HTTP %d", int(status))
		}
	case mautrix.MURLNotSet.ErrCode:
		return "The homeserver's copy of the registration has no url: give the homeserver the registration file Switchboard uses"
	case mautrix.MForbidden.ErrCode:
		return "The homeserver did not accept Switchboard's as_token for this registration id: give the homeserver the registration file Switchboard uses"
	default:
		return generic
	}
}
