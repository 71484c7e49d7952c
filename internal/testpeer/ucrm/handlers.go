package ucrm

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/santhosh-tekuri/jsonschema/v6"
)

// UCRI2 error codes (api/crm/2.0.0/ucriErrorCodes.json).
const (
	CodeInvalidRequest     = 460 // REQUEST_INVALID_PER_CLIENT_TRANSPORT_SPEC
	CodeUnknownAppID       = 461 // REQUEST_PAYLOAD_UNKNOWN_APPID
	CodeUnknownAppVersion  = 462 // REQUEST_PAYLOAD_UNKNOWN_APPVERSION
	CodeUnknownSchemaID    = 463 // REQUEST_PAYLOAD_UNKNOWN_SCHEMAID
	CodeInvalidPayload     = 464 // REQUEST_PAYLOAD_INVALID_PER_APP_SPEC
	CodeInvalidJSON        = 465 // REQUEST_PAYLOAD_INVALID_JSON
	CodeForbiddenAppID     = 467 // REQUEST_PAYLOAD_FORBIDDEN_APPID
	CodeUnknownDestination = 470 // REQUEST_UNKNOWN_DESTINATION_ID
	CodeUnauthorized       = 475 // REQUEST_UNAUTHORIZED
	CodeOIDForbidden       = 478 // REQUEST_OID_FORBIDDEN
	CodeWrongSignature     = 479 // REQUEST_WRONG_SIGNATURE
	CodeInternal           = 491 // REQUEST_INTERNAL_ERROR
)

var reasons = map[int]string{
	CodeInvalidRequest:     "request invalid per client transport spec",
	CodeUnknownAppID:       "unknown appId",
	CodeUnknownAppVersion:  "unknown appVersion",
	CodeUnknownSchemaID:    "unknown schemaId",
	CodeInvalidPayload:     "payload invalid per app spec",
	CodeInvalidJSON:        "payload data is not valid JSON",
	CodeForbiddenAppID:     "forbidden appId",
	CodeUnknownDestination: "unknown destination id",
	CodeUnauthorized:       "unauthorized",
	CodeOIDForbidden:       "OID forbidden",
	CodeWrongSignature:     "wrong signature",
	CodeInternal:           "internal error",
}

const (
	maxBody         = 16 << 20
	defaultMaxMsgs  = 10
	defaultMaxDelay = 30
)

// handler returns the HTTP handler of one run: it counts requests, applies FailNext
// faults, keeps track of handlers in flight for Stop and routes to the endpoints.
func (s *Server) handler(r *run) http.Handler {
	b := s.opts.BasePath
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+b+"/token", s.handleToken)
	mux.Handle("POST "+b+"/messaging/send", s.auth(s.handleSend))
	mux.Handle("POST "+b+"/messaging/receive", s.auth(func(w http.ResponseWriter, req *http.Request, p *Participant) {
		s.handleReceive(w, req, p, r.stop)
	}))
	mux.Handle("POST "+b+"/messaging/commit", s.auth(s.handleCommit))
	mux.Handle("GET "+b+"/registry", s.auth(s.handleRegistry))
	mux.Handle("GET "+b+"/registry/{id}", s.auth(s.handleRegistryEntry))
	mux.Handle("GET "+b+"/info", s.auth(s.handleInfo))
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		r.mu.Lock()
		if r.closing {
			r.mu.Unlock()
			s.writeError(w, http.StatusServiceUnavailable, CodeInternal, "the UCRM is stopping")
			return
		}
		r.active.Add(1)
		r.mu.Unlock()
		defer r.active.Done()
		if rel, ok := strings.CutPrefix(req.URL.Path, b); ok && rel != "" {
			s.mu.Lock()
			s.requests[rel]++
			f, fail := s.failures[rel]
			if fail {
				if f.n--; f.n <= 0 {
					delete(s.failures, rel)
				} else {
					s.failures[rel] = f
				}
			}
			s.mu.Unlock()
			if fail {
				s.writeError(w, f.status, CodeInternal, "fault injected by the test (FailNext)")
				return
			}
			if h := s.take(rel); h != nil && !h.held(r.stop) {
				dropConnection()
			}
		}
		mux.ServeHTTP(w, req)
	})
}

// writeError answers with a UCRI2 error {code, reason, message}.
func (s *Server) writeError(w http.ResponseWriter, status, code int, message string) {
	if s.opts.Logf != nil {
		s.opts.Logf("ucrm: answering %d, code %d: %s", status, code, message)
	}
	writeJSON(w, status, map[string]any{"code": code, "reason": reasons[code], "message": message})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	writeBody(w, status, b)
}

func writeBody(w http.ResponseWriter, status int, b []byte) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

// handleToken issues a token for HTTP Basic credentials.
func (s *Server) handleToken(w http.ResponseWriter, req *http.Request) {
	user, pass, ok := req.BasicAuth()
	if !ok {
		s.writeError(w, http.StatusUnauthorized, CodeUnauthorized, "HTTP Basic credentials required")
		return
	}
	s.mu.Lock()
	var p *Participant
	for _, q := range s.participants {
		if q.Username == user && q.Password == pass {
			p = q
			break
		}
	}
	secret := s.secret
	s.mu.Unlock()
	if p == nil {
		s.writeError(w, http.StatusUnauthorized, CodeUnauthorized, "wrong user name or password")
		return
	}
	now := s.opts.Now()
	claims := jwt.RegisteredClaims{
		Subject:   p.OID,
		IssuedAt:  jwt.NewNumericDate(now),
		ExpiresAt: jwt.NewNumericDate(now.Add(s.opts.TokenTTL)),
	}
	tok, err := jwt.NewWithClaims(jwt.SigningMethodHS256, claims).SignedString(secret)
	if err != nil {
		s.writeError(w, http.StatusInternalServerError, CodeInternal, "failed to sign the token")
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"token": tok})
}

// auth checks the bearer token and passes the participant it names.
func (s *Server) auth(h func(http.ResponseWriter, *http.Request, *Participant)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		raw, ok := strings.CutPrefix(req.Header.Get("Authorization"), "Bearer ")
		if !ok || raw == "" {
			s.writeError(w, http.StatusUnauthorized, CodeUnauthorized, "a bearer token from /token is required")
			return
		}
		s.mu.Lock()
		secret := s.secret
		s.mu.Unlock()
		var claims jwt.RegisteredClaims
		_, err := jwt.ParseWithClaims(raw, &claims, func(*jwt.Token) (any, error) { return secret, nil },
			jwt.WithValidMethods([]string{"HS256"}), jwt.WithExpirationRequired(), jwt.WithTimeFunc(s.opts.Now))
		if err != nil {
			s.writeError(w, http.StatusUnauthorized, CodeUnauthorized, "invalid or expired token: "+err.Error())
			return
		}
		s.mu.Lock()
		p := s.participant(claims.Subject)
		var cp Participant
		if p != nil {
			cp = *p
		}
		s.mu.Unlock()
		if p == nil {
			s.writeError(w, http.StatusUnauthorized, CodeUnauthorized, "the token names no registered participant")
			return
		}
		h(w, req, &cp)
	})
}

// readBody decodes the request body and validates it against sch; on failure it answers
// 460 and returns nil.
func (s *Server) readBody(w http.ResponseWriter, req *http.Request, sch *jsonschema.Schema, name string) map[string]any {
	b, err := io.ReadAll(http.MaxBytesReader(w, req.Body, maxBody))
	if err != nil {
		s.writeError(w, http.StatusBadRequest, CodeInvalidRequest, "failed to read the body: "+err.Error())
		return nil
	}
	doc, err := decodeJSON(b)
	if err != nil {
		s.writeError(w, http.StatusBadRequest, CodeInvalidRequest, "the body is not JSON: "+err.Error())
		return nil
	}
	if err := sch.Validate(doc); err != nil {
		s.writeError(w, http.StatusBadRequest, CodeInvalidRequest, "the body is not a valid "+name+": "+describe(err))
		return nil
	}
	return doc.(map[string]any) // the schemas require an object
}

// handleSend accepts a message and queues it for its destination.
func (s *Server) handleSend(w http.ResponseWriter, req *http.Request, caller *Participant) {
	sch, _ := loadSchemas() // Start failed if this failed
	env := s.readBody(w, req, sch.senderRequest, "SenderRequest")
	if env == nil {
		return
	}
	source, _ := env["source"].(string)
	if source != caller.OID {
		s.writeError(w, http.StatusBadRequest, CodeOIDForbidden,
			fmt.Sprintf("source %s is not the OID of the authenticated participant (%s)", source, caller.OID))
		return
	}
	dest, _ := env["destinations"].([]any)[0].(string)
	s.mu.Lock()
	known := s.participant(dest) != nil
	s.mu.Unlock()
	if !known {
		s.writeError(w, http.StatusBadRequest, CodeUnknownDestination, "destination "+dest+" is not registered")
		return
	}
	if code, msg := checkPayload(sch, env["payload"].(map[string]any)); code != 0 {
		s.writeError(w, http.StatusBadRequest, code, msg)
		return
	}
	_, signed := env["signature"]
	if caller.Key != nil && (signed || !caller.TransmitsUnsigned) {
		if _, ok := env["messageId"]; !ok {
			s.writeError(w, http.StatusBadRequest, CodeWrongSignature,
				"a signed message needs a messageId: the signature covers it")
			return
		}
		if err := VerifySignature(env, dest, caller.Key); err != nil {
			s.writeError(w, http.StatusBadRequest, CodeWrongSignature, strings.TrimPrefix(err.Error(), "ucrm: "))
			return
		}
	}
	writeBody(w, http.StatusOK, s.accept(env, source, dest))
}

// checkPayload checks the app, version and schema of a payload and validates its data; it
// returns the UCRI2 error code and a message, or 0.
func checkPayload(sch *schemas, payload map[string]any) (int, string) {
	appID, _ := payload["appId"].(string)
	version, _ := payload["appVersion"].(string)
	schemaID, _ := payload["schemaId"].(string)
	if appID == AppTransport {
		return CodeForbiddenAppID, "clients must not send " + AppTransport + " messages; only UCRMs create them"
	}
	versions, ok := sch.apps[appID]
	if !ok {
		return CodeUnknownAppID, "unknown appId " + appID
	}
	ids, ok := versions[version]
	if !ok {
		return CodeUnknownAppVersion, fmt.Sprintf("unknown appVersion %s of %s", version, appID)
	}
	appSchema, ok := ids[schemaID]
	if !ok {
		return CodeUnknownSchemaID, fmt.Sprintf("unknown schemaId %s of %s %s", schemaID, appID, version)
	}
	if payload["contentType"] != "application/json" {
		return 0, "" // application/jose: encrypted, cannot be checked
	}
	data, err := decodeJSON([]byte(payload["data"].(string)))
	if err != nil {
		return CodeInvalidJSON, "payload data is not JSON: " + err.Error()
	}
	if err := appSchema.Validate(data); err != nil {
		return CodeInvalidPayload, fmt.Sprintf("payload data is not a valid %s: %s", schemaID, describe(err))
	}
	return 0, ""
}

// accept fills in the defaults, records the send request and queues the message, or
// returns the first answer again if source already sent this messageId.
func (s *Server) accept(env map[string]any, source, dest string) []byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	id, hasID := env["messageId"].(string)
	if hasID {
		if prev, ok := s.accepted[source+"\x00"+id]; ok {
			return prev
		}
	} else {
		id = newMessageID()
		env["messageId"] = id
	}
	now := s.opts.Now()
	if _, ok := env["sentDate"]; !ok {
		env["sentDate"] = now.UTC().Format(time.RFC3339)
	}
	timeout := intValue(env["timeout"], defaultTimeout) // the schema allows [10, 86400]
	if _, ok := env["timeout"]; !ok {
		env["timeout"] = timeout
	}
	ack, ok := env["ack"].(string)
	if !ok {
		ack = defaultAck
		env["ack"] = ack
	}
	resp, err := json.Marshal(env)
	if err != nil {
		panic(fmt.Sprintf("ucrm: failed to encode a send response: %v", err)) // decoded JSON always encodes
	}
	s.accepted[source+"\x00"+id] = resp
	s.sent[source] = append(s.sent[source], resp)
	queued := make(map[string]any, len(env))
	for k, v := range env {
		if k != "destinations" {
			queued[k] = v
		}
	}
	s.enqueue(dest, queued, &item{
		sender:    source,
		messageID: id,
		ack:       ack,
		timeout:   timeout,
		deadline:  now.Add(time.Duration(timeout) * time.Second),
	})
	return resp
}

// handleReceive answers with the oldest uncommitted messages of the caller, waiting up to
// maxDelay seconds for one.
func (s *Server) handleReceive(w http.ResponseWriter, req *http.Request, caller *Participant, stop <-chan struct{}) {
	sch, _ := loadSchemas()
	body := s.readBody(w, req, sch.receiverRequest, "ReceiverRequest")
	if body == nil {
		return
	}
	for _, d := range body["destinations"].([]any) {
		if d != caller.OID {
			s.writeError(w, http.StatusBadRequest, CodeOIDForbidden,
				fmt.Sprintf("destination %v is not the OID of the authenticated participant (%s)", d, caller.OID))
			return
		}
	}
	maxMsgs := min(intValue(body["maxMessages"], defaultMaxMsgs), 1000) // the schema requires >= 1
	maxDelay := intValue(body["maxDelay"], defaultMaxDelay)             // the schema requires [0, 30]
	timer := time.NewTimer(time.Duration(maxDelay) * time.Second)
	defer timer.Stop()
	for {
		s.mu.Lock()
		msgs, wake := s.head(caller.OID, int(maxMsgs))
		s.mu.Unlock()
		if len(msgs) > 0 {
			items := make([]json.RawMessage, len(msgs))
			for i, m := range msgs {
				items[i] = m
			}
			writeJSON(w, http.StatusOK, map[string]any{"messages": items, "maxMessages": maxMsgs})
			return
		}
		if maxDelay == 0 {
			w.WriteHeader(http.StatusNoContent)
			return
		}
		select {
		case <-wake:
		case <-timer.C:
			w.WriteHeader(http.StatusNoContent)
			return
		case <-req.Context().Done():
			return // the client went away
		case <-stop:
			return // the connection is being closed
		}
	}
}

// intValue returns a JSON integer the schema has checked (which may be written 5.0), or
// def if v is absent.
func intValue(v any, def int64) int64 {
	n, ok := v.(json.Number)
	if !ok {
		return def
	}
	if i, err := n.Int64(); err == nil {
		return i
	}
	f, _ := n.Float64()
	return int64(f)
}

// handleCommit removes the caller's messages up to a sequenceId.
func (s *Server) handleCommit(w http.ResponseWriter, req *http.Request, caller *Participant) {
	sch, _ := loadSchemas()
	ref := s.readBody(w, req, sch.messageRef, "MessageRef")
	if ref == nil {
		return
	}
	if ref["destination"] != caller.OID {
		s.writeError(w, http.StatusBadRequest, CodeOIDForbidden,
			fmt.Sprintf("destination %v is not the OID of the authenticated participant (%s)", ref["destination"], caller.OID))
		return
	}
	seq := intValue(ref["sequenceId"], 0)
	s.mu.Lock()
	s.commit(caller.OID, seq)
	s.mu.Unlock()
	w.WriteHeader(http.StatusNoContent)
}

// registryEntries returns the registry: every participant, then the UCRM. s.mu must be held.
func (s *Server) registryEntries() []map[string]any {
	apps := []map[string]any{
		{"appId": AppIncident, "appVersion": AppVersion},
		{"appId": AppTransport, "appVersion": AppVersion},
	}
	out := make([]map[string]any, 0, len(s.participants)+1)
	for _, p := range s.participants {
		e := map[string]any{
			"id":                        p.OID,
			"type":                      "client",
			"systemName":                p.SystemName,
			"operatorName":              p.OperatorName,
			"operatorShortName":         p.ShortName,
			"supportedApps":             apps,
			"techSupport":               map[string]any{"phone": "+49 30 1234567", "e-mail": "support@example.org"},
			"status":                    p.Status,
			"transmitsUnsignedMessages": p.TransmitsUnsigned || p.Key == nil,
		}
		if p.Key != nil {
			e["key"] = jwk(p.Key)
		}
		out = append(out, e)
	}
	out = append(out, map[string]any{
		"id":                        s.opts.OID,
		"type":                      "ucrm",
		"systemName":                productName,
		"operatorName":              "Switchboard test suite",
		"operatorShortName":         "SB",
		"supportedApps":             apps[1:],
		"techSupport":               map[string]any{"phone": "+49 30 1234567", "e-mail": "support@example.org"},
		"status":                    "online",
		"transmitsUnsignedMessages": true,
	})
	return out
}

const productName = "switchboard fake UCRM"

func (s *Server) handleRegistry(w http.ResponseWriter, _ *http.Request, _ *Participant) {
	s.mu.Lock()
	entries := s.registryEntries()
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, map[string]any{"commParticipants": entries})
}

func (s *Server) handleRegistryEntry(w http.ResponseWriter, req *http.Request, _ *Participant) {
	id := req.PathValue("id")
	s.mu.Lock()
	entries := s.registryEntries()
	s.mu.Unlock()
	for _, e := range entries {
		if e["id"] == id {
			writeJSON(w, http.StatusOK, e)
			return
		}
	}
	s.writeError(w, http.StatusNotFound, CodeUnknownDestination, "no participant "+id)
}

func (s *Server) handleInfo(w http.ResponseWriter, _ *http.Request, _ *Participant) {
	writeJSON(w, http.StatusOK, map[string]any{
		"apiVersion":      "0.1",
		"ucrmProvider":    "Switchboard",
		"ucrmProductName": productName,
		"ucrmVersion":     "1.0",
		"status":          0,
	})
}
