package appservice

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strings"

	"github.com/rs/zerolog"
	"maunium.net/go/mautrix"
)

// Message bodies, patient data and tokens appear in the log only at trace level. Two places
// could leak them below trace, and both are closed here for every Matrix request the core
// and the modules make:
//
//   - mautrix's client logs each request, with its JSON body under "req_body", at debug
//     level (at error level when the request fails in transport). Every context handed to
//     mautrix carries a logger that drops the body fields unless the log is at trace
//     ([requestContext]); the appservice's fallback logger does the same.
//   - mautrix's errors print the homeserver's answer, which may echo the request. Errors of
//     Matrix requests are wrapped in [RequestError], which prints the method, the path, the
//     HTTP status and the Matrix error code only.

// bodyFields are the log fields that carry a request's or a message's body.
var bodyFields = []string{"req_body", "resp_body", "body", "formatted_body", "content", "html", "text", "payload"}

// omittedBody replaces a body field below trace.
const omittedBody = "<omitted below trace>"

// tracing reports whether log writes trace lines (its own level and the global level).
func tracing(log *zerolog.Logger) bool {
	return log.GetLevel() <= zerolog.TraceLevel && zerolog.GlobalLevel() <= zerolog.TraceLevel
}

// bodyless returns a logger that writes through log, with the body fields of every line
// replaced unless log is at trace level.
func bodyless(log zerolog.Logger) zerolog.Logger {
	if tracing(&log) {
		return log
	}
	return zerolog.New(bodylessWriter{to: log}).Level(log.GetLevel())
}

// requestContext returns ctx for a mautrix request: its logger writes no bodies below trace.
// A context without a logger is left alone: mautrix then uses the client's logger, which
// the core sets to a bodyless one.
func requestContext(ctx context.Context) context.Context {
	log := zerolog.Ctx(ctx)
	if log == zerolog.DefaultContextLogger || log.GetLevel() == zerolog.Disabled || tracing(log) {
		return ctx
	}
	if done, _ := ctx.Value(bodylessKey{}).(*zerolog.Logger); done == log {
		return ctx // already wrapped
	}
	ctx = bodyless(*log).WithContext(ctx)
	return context.WithValue(ctx, bodylessKey{}, zerolog.Ctx(ctx))
}

// bodylessKey marks a context whose logger requestContext made.
type bodylessKey struct{}

// bodylessWriter receives the JSON lines of a logger, replaces their body fields and writes
// them again through the logger to.
type bodylessWriter struct {
	to zerolog.Logger
}

func (w bodylessWriter) Write(p []byte) (int, error) {
	var fields map[string]any
	dec := json.NewDecoder(bytes.NewReader(p))
	dec.UseNumber()
	if err := dec.Decode(&fields); err != nil {
		w.to.Warn().Msg("Dropped a log line of the Matrix client that was not JSON")
		return len(p), nil
	}
	level, _ := zerolog.ParseLevel(fmt.Sprint(fields[zerolog.LevelFieldName]))
	msg, _ := fields[zerolog.MessageFieldName].(string)
	delete(fields, zerolog.LevelFieldName)
	delete(fields, zerolog.MessageFieldName)
	for _, f := range bodyFields {
		if _, ok := fields[f]; ok {
			fields[f] = omittedBody
		}
	}
	w.to.WithLevel(level).Fields(fields).Msg(msg)
	return len(p), nil
}

// RequestError is a failed Matrix request. Its text names the method, the path, the HTTP
// status and the Matrix error code, never a body (the homeserver's answer may quote the
// request). errors.Is and errors.As reach the client's error through Unwrap.
type RequestError struct {
	Method  string
	Path    string
	Status  int    // 0 when the homeserver did not answer
	ErrCode string // such as M_FORBIDDEN; empty when the answer had none
	Err     error  // the client's error
}

func (e *RequestError) Error() string {
	var sb strings.Builder
	sb.WriteString("matrix request")
	if e.Method != "" {
		sb.WriteString(" " + e.Method + " " + e.Path)
	}
	switch {
	case e.Status != 0:
		fmt.Fprintf(&sb, ": HTTP %d", e.Status)
		if e.ErrCode != "" {
			sb.WriteString(" " + e.ErrCode)
		}
	default:
		sb.WriteString(" failed: " + transportCause(e.Err))
	}
	return sb.String()
}

// Unwrap returns the client's error.
func (e *RequestError) Unwrap() error { return e.Err }

// transportCause is the text of a request error without the URL or a body: the network
// error (such as "connection refused" or "context deadline exceeded").
func transportCause(err error) string {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err.Error()
	}
	var he mautrix.HTTPError
	if errors.As(err, &he) {
		if he.Message != "" {
			return he.Message
		}
		return "no answer"
	}
	if err == nil {
		return "unknown error"
	}
	return err.Error()
}

// requestError wraps an error of a mautrix call in a [RequestError]; nil stays nil, and an
// error that is not a request error (a context error, for example) is returned as is.
func requestError(err error) error {
	if err == nil {
		return nil
	}
	var re *RequestError
	if errors.As(err, &re) {
		return err
	}
	var he mautrix.HTTPError
	if !errors.As(err, &he) {
		return err
	}
	out := &RequestError{Err: err}
	if he.Request != nil {
		out.Method, out.Path = he.Request.Method, he.Request.URL.Path
	}
	if he.Response != nil {
		out.Status = he.Response.StatusCode
	}
	if he.RespError != nil {
		out.ErrCode = he.RespError.ErrCode
	}
	return out
}
