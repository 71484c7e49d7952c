package access

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"unicode/utf8"

	"maunium.net/go/mautrix/id"
)

// request is the body of every POST endpoint. Unknown fields are allowed (the Prosody
// module or a newer client may add some); a JSON null counts as missing, like in UVS.
type request struct {
	Token      string `json:"token"`
	RoomID     string `json:"room_id"`
	ServerName string `json:"matrix_server_name"`
}

// maxRoomIDBytes is the Matrix limit on identifiers.
const maxRoomIDBytes = 255

// decodeRequest reads r's body (at most max bytes) and checks that the fields named in
// required are present and not empty. room_id, when required, must look like a room ID.
func decodeRequest(w http.ResponseWriter, r *http.Request, max int64, required ...string) (*request, *refusal) {
	body := http.MaxBytesReader(w, r.Body, max)
	dec := json.NewDecoder(body)
	var req request
	if err := dec.Decode(&req); err != nil {
		return nil, decodeRefusal(err, max)
	}
	// Only whitespace may follow the object.
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			return nil, decodeRefusal(err, max)
		}
		return nil, &refusal{status: http.StatusBadRequest, errcode: codeBadJSON,
			msg: "the body has more after its JSON object"}
	}
	for _, field := range required {
		var v string
		switch field {
		case "token":
			v = req.Token
		case "room_id":
			v = req.RoomID
		case "matrix_server_name":
			v = req.ServerName
		}
		if v == "" {
			return nil, &refusal{status: http.StatusBadRequest, errcode: codeMissingParam,
				msg: "Invalid request: " + field + " not found or with empty value in the JSON payload."}
		}
	}
	if req.RoomID != "" {
		if msg := checkRoomID(req.RoomID); msg != "" {
			return nil, &refusal{status: http.StatusBadRequest, errcode: codeInvalidParam, msg: msg}
		}
	}
	return &req, nil
}

// decodeRefusal explains a decoding error precisely.
func decodeRefusal(err error, max int64) *refusal {
	var (
		tooLarge  *http.MaxBytesError
		typeErr   *json.UnmarshalTypeError
		syntaxErr *json.SyntaxError
	)
	bad := func(code, msg string) *refusal {
		return &refusal{status: http.StatusBadRequest, errcode: code, msg: msg}
	}
	switch {
	case errors.As(err, &tooLarge):
		return &refusal{status: http.StatusRequestEntityTooLarge, errcode: codeTooLarge,
			msg: fmt.Sprintf("the body is larger than %d bytes", max)}
	case errors.Is(err, io.EOF):
		return bad(codeNotJSON, "Invalid request: no JSON content found in body.")
	case errors.Is(err, io.ErrUnexpectedEOF):
		return bad(codeBadJSON, "the body is not valid JSON: it ends too early")
	case errors.As(err, &typeErr):
		if typeErr.Field == "" {
			return bad(codeBadJSON, fmt.Sprintf("the body must be a JSON object, not %s", article(typeErr.Value)))
		}
		return bad(codeBadJSON, fmt.Sprintf("%s must be a string, not %s", typeErr.Field, article(typeErr.Value)))
	case errors.As(err, &syntaxErr):
		return bad(codeBadJSON, fmt.Sprintf("the body is not valid JSON at byte %d: %s", syntaxErr.Offset,
			strings.TrimPrefix(syntaxErr.Error(), "json: ")))
	default:
		return bad(codeBadJSON, "the body could not be read as JSON")
	}
}

// article names a JSON type with its article ("a number", "an object").
func article(jsonType string) string {
	switch jsonType {
	case "array", "object":
		return "an " + jsonType
	case "":
		return "this value"
	default:
		if strings.HasPrefix(jsonType, "number") {
			return "a number"
		}
		return "a " + jsonType
	}
}

// checkRoomID returns why s is not a room ID, or "". Both "!opaque:server" and the
// server-less IDs of room version 12 are accepted.
func checkRoomID(s string) string {
	switch {
	case len(s) > maxRoomIDBytes:
		return fmt.Sprintf("room_id is longer than %d bytes", maxRoomIDBytes)
	case !strings.HasPrefix(s, "!") || len(s) < 2:
		return "room_id must be a Matrix room ID starting with \"!\""
	case !utf8.ValidString(s):
		return "room_id is not valid UTF-8"
	}
	for _, c := range s {
		if c <= ' ' || c == 0x7f {
			return "room_id must not contain spaces or control characters"
		}
	}
	return ""
}

// roomID returns the request's room ID (checked by decodeRequest).
func (req *request) roomID() id.RoomID { return id.RoomID(req.RoomID) }
