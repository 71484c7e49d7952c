package appservice

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/rs/zerolog"
	"maunium.net/go/mautrix/id"
)

// The provisioning API is an HTTP API on the operator listener for what the management bot
// does in chat: the core's and each module's status and the modules' own operations (see
// docs/provisioning.md and docs/provisioning.openapi.yaml). It is off unless
// Options.Provisioning is set. Requests carry "Authorization: Bearer <shared secret>" or
// "Authorization: Bearer openid:<Matrix OpenID token>" (the form mautrix bridges accept);
// provisionauth.go checks them. A user known by an OpenID token gets what the module's
// permission list and management.admins give them in chat.

// ProvisioningPrefix is the path below which the provisioning API answers.
const ProvisioningPrefix = "/_switchboard/provision/v1"

// provisionMaxBody bounds a request body; provisionTimeout bounds one request's handling.
const (
	provisionMaxBody = 64 << 10
	provisionTimeout = 30 * time.Second
)

// Provisioner is implemented by modules that offer operations on the provisioning API. The
// core serves each route at ProvisioningPrefix + "/modules/<module ID>" + Path, after it has
// checked the caller and the module's permission list.
type Provisioner interface {
	ProvisioningRoutes() []ProvisioningRoute
}

// ProvisioningRoute is one operation of a module's provisioning API.
type ProvisioningRoute struct {
	// Method is GET, POST, PUT or DELETE.
	Method string
	// Path is below the module's prefix and starts with "/"; a segment "{name}" is a path
	// parameter, as in net/http's patterns ("/mailboxes/{name}/pause").
	Path string
	// Admin restricts the route to Switchboard's admins (management.admins, or the shared
	// secret without user_id).
	Admin bool
	// Handle answers the request: its result is sent as JSON with status 200 (nil: {}). A
	// *ProvisioningError is answered as it says; any other error is a 500 whose text only
	// admins see.
	Handle func(ctx context.Context, req *ProvisioningRequest) (any, error)
}

// ProvisioningRequest is a checked provisioning request, as a module's handler sees it.
type ProvisioningRequest struct {
	// User is the Matrix user the request acts for; "" when it came with the shared secret
	// and no user_id (an operator's tool, with admin rights).
	User id.UserID
	// Admin is true for Switchboard's admins (management.admins) and for the shared secret
	// without user_id.
	Admin bool
	// Query holds the URL's query parameters (user_id removed).
	Query url.Values
	// Body is the JSON request body; nil when there is none.
	Body json.RawMessage

	path func(string) string
}

// PathValue returns the path parameter name of the route's Path.
func (r *ProvisioningRequest) PathValue(name string) string { return r.path(name) }

// Decode decodes the body into v, refusing unknown fields, trailing data and a missing
// body; its errors are *ProvisioningError (400 M_BAD_JSON or M_NOT_JSON) with a message
// naming the field and the problem.
func (r *ProvisioningRequest) Decode(v any) error {
	if len(r.Body) == 0 {
		return &ProvisioningError{Status: http.StatusBadRequest, Code: "M_NOT_JSON", Message: "the request needs a JSON object as its body"}
	}
	dec := json.NewDecoder(strings.NewReader(string(r.Body)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return &ProvisioningError{Status: http.StatusBadRequest, Code: "M_BAD_JSON", Message: describeBodyError(err)}
	}
	if dec.More() {
		return &ProvisioningError{Status: http.StatusBadRequest, Code: "M_BAD_JSON", Message: "the body has data after its JSON object"}
	}
	return nil
}

// ProvisioningError is an answer other than 200: Status is the HTTP status, Code a Matrix
// style errcode (M_NOT_FOUND, M_FORBIDDEN, M_BAD_JSON, M_INVALID_PARAM, …), Message the
// text shown to the caller. It must not hold secrets.
type ProvisioningError struct {
	Status  int
	Code    string
	Message string
}

func (e *ProvisioningError) Error() string { return e.Message }

// ProvisioningNotFound is a 404 M_NOT_FOUND with message.
func ProvisioningNotFound(format string, args ...any) *ProvisioningError {
	return &ProvisioningError{Status: http.StatusNotFound, Code: "M_NOT_FOUND", Message: fmt.Sprintf(format, args...)}
}

// ProvisioningBadRequest is a 400 M_INVALID_PARAM with message.
func ProvisioningBadRequest(format string, args ...any) *ProvisioningError {
	return &ProvisioningError{Status: http.StatusBadRequest, Code: "M_INVALID_PARAM", Message: fmt.Sprintf(format, args...)}
}

// ProvisioningForbidden is a 403 M_FORBIDDEN with message.
func ProvisioningForbidden(format string, args ...any) *ProvisioningError {
	return &ProvisioningError{Status: http.StatusForbidden, Code: "M_FORBIDDEN", Message: fmt.Sprintf(format, args...)}
}

// ProvisioningConflict is a 409 M_CONFLICT with message (the thing exists already, or is
// linked elsewhere).
func ProvisioningConflict(format string, args ...any) *ProvisioningError {
	return &ProvisioningError{Status: http.StatusConflict, Code: "M_CONFLICT", Message: fmt.Sprintf(format, args...)}
}

// describeBodyError is a body decoding error as the caller should read it (the field and
// the type expected, or where the syntax broke), without echoing the body.
func describeBodyError(err error) string {
	switch {
	case errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF):
		return "the body ends in the middle of its JSON"
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		return "unknown field " + truncateField(strings.TrimPrefix(err.Error(), "json: unknown field "), 80)
	}
	return describeJSONError(err) // txn.go
}

// provisionCaller is who a request acts for.
type provisionCaller struct {
	user  id.UserID // "" for the shared secret without user_id
	admin bool
	auth  string // "shared_secret" or "openid", for the audit log
}

// may reports whether the caller may use module mid.
func (c *Core) provisionMay(caller provisionCaller, mid string) bool {
	return caller.user == "" || c.permits(mid, caller.user)
}

// provisionHandler serves the provisioning API below ProvisioningPrefix.
func (c *Core) provisionHandler() http.Handler {
	mux := http.NewServeMux()
	p := ProvisioningPrefix
	mux.HandleFunc("GET "+p+"/whoami", c.provisioned(func(w http.ResponseWriter, r *http.Request, caller provisionCaller) {
		mods := []string{}
		for _, m := range c.order {
			if c.provisionMay(caller, m.ID()) {
				mods = append(mods, m.ID())
			}
		}
		writeJSON(w, http.StatusOK, map[string]any{"user_id": caller.user, "admin": caller.admin, "auth": caller.auth, "modules": mods})
	}))
	mux.HandleFunc("GET "+p+"/status", c.provisioned(func(w http.ResponseWriter, r *http.Request, caller provisionCaller) {
		snap := c.statusSnapshot(r.Context(), caller.admin)
		snap.Modules = slices.DeleteFunc(snap.Modules, func(l statusLine) bool { return !c.provisionMay(caller, l.ID) })
		writeJSON(w, http.StatusOK, snap)
	}))
	mux.HandleFunc("GET "+p+"/modules/{module}/status", c.provisioned(func(w http.ResponseWriter, r *http.Request, caller provisionCaller) {
		mid := r.PathValue("module")
		if !c.provisionModule(w, caller, mid) {
			return
		}
		snap := c.statusSnapshot(r.Context(), caller.admin)
		for _, l := range snap.Modules {
			if l.ID == mid {
				writeJSON(w, http.StatusOK, l)
				return
			}
		}
		writeProvisionError(w, ProvisioningNotFound("there is no module %q", mid))
	}))
	for _, m := range c.order {
		pv, ok := m.(Provisioner)
		if !ok {
			continue
		}
		for _, route := range pv.ProvisioningRoutes() {
			pattern := route.Method + " " + p + "/modules/" + m.ID() + route.Path
			mux.HandleFunc(pattern, c.provisioned(c.moduleRoute(m.ID(), pattern, route)))
		}
	}
	mux.HandleFunc(p+"/", func(w http.ResponseWriter, r *http.Request) {
		writeProvisionError(w, &ProvisioningError{Status: http.StatusNotFound, Code: "M_UNRECOGNIZED",
			Message: "unknown provisioning endpoint " + r.Method + " " + r.URL.Path + "; see docs/provisioning.openapi.yaml"})
	})
	return mux
}

// provisionModule answers 404 or 403 and returns false unless module mid exists and the
// caller may use it.
func (c *Core) provisionModule(w http.ResponseWriter, caller provisionCaller, mid string) bool {
	if c.modules[mid] == nil {
		writeProvisionError(w, ProvisioningNotFound("there is no module %q", mid))
		return false
	}
	if !c.provisionMay(caller, mid) {
		writeProvisionError(w, ProvisioningForbidden("%s may not use the module %s (its permissions list)", caller.user, mid))
		return false
	}
	return true
}

// moduleRoute wraps a module's route: permission and admin checks, the body, the answer.
func (c *Core) moduleRoute(mid, pattern string, route ProvisioningRoute) func(http.ResponseWriter, *http.Request, provisionCaller) {
	return func(w http.ResponseWriter, r *http.Request, caller provisionCaller) {
		if !c.provisionModule(w, caller, mid) {
			return
		}
		if route.Admin && !caller.admin {
			writeProvisionError(w, ProvisioningForbidden("only Switchboard's admins (management.admins) may do this"))
			return
		}
		body, perr := readProvisionBody(r)
		if perr != nil {
			writeProvisionError(w, perr)
			return
		}
		q := r.URL.Query()
		q.Del("user_id")
		req := &ProvisioningRequest{User: caller.user, Admin: caller.admin, Query: q, Body: body, path: r.PathValue}
		ctx := zerolog.Ctx(r.Context()).With().Str("module", mid).Logger().WithContext(r.Context())
		res, err := route.Handle(ctx, req)
		var pe *ProvisioningError
		switch {
		case errors.As(err, &pe):
			writeProvisionError(w, pe)
		case err != nil:
			zerolog.Ctx(ctx).Error().Err(err).Str("route", pattern).Msg("Provisioning request failed")
			msg := "internal error; the log has the details"
			if caller.admin {
				msg = "internal error: " + err.Error()
			}
			writeProvisionError(w, &ProvisioningError{Status: http.StatusInternalServerError, Code: "M_UNKNOWN", Message: msg})
		case res == nil:
			writeJSON(w, http.StatusOK, struct{}{})
		default:
			writeJSON(w, http.StatusOK, res)
		}
	}
}

// readProvisionBody reads a JSON body of at most provisionMaxBody bytes; none is fine.
func readProvisionBody(r *http.Request) (json.RawMessage, *ProvisioningError) {
	if r.ContentLength == 0 && r.Method != http.MethodPost && r.Method != http.MethodPut {
		return nil, nil
	}
	data, err := io.ReadAll(http.MaxBytesReader(nil, r.Body, provisionMaxBody))
	var tooBig *http.MaxBytesError
	switch {
	case errors.As(err, &tooBig):
		return nil, &ProvisioningError{Status: http.StatusRequestEntityTooLarge, Code: "M_TOO_LARGE",
			Message: fmt.Sprintf("the body is larger than %d bytes", provisionMaxBody)}
	case err != nil:
		return nil, &ProvisioningError{Status: http.StatusBadRequest, Code: "M_BAD_JSON", Message: "failed to read the body"}
	case len(strings.TrimSpace(string(data))) == 0:
		return nil, nil
	}
	if ct := r.Header.Get("Content-Type"); ct != "" && !strings.HasPrefix(strings.ToLower(ct), "application/json") {
		return nil, &ProvisioningError{Status: http.StatusUnsupportedMediaType, Code: "M_NOT_JSON",
			Message: "the body must be application/json, not " + truncateField(ct, 80)}
	}
	if !json.Valid(data) {
		var v any
		err := json.Unmarshal(data, &v)
		return nil, &ProvisioningError{Status: http.StatusBadRequest, Code: "M_NOT_JSON", Message: describeBodyError(err)}
	}
	return data, nil
}

// writeProvisionError answers e as {"errcode": …, "error": …}.
func writeProvisionError(w http.ResponseWriter, e *ProvisioningError) {
	writeError(w, e.Status, e.Code, e.Message)
}

// truncateField bounds s for a message or a log field.
func truncateField(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
