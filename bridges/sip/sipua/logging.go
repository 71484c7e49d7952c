package sipua

import (
	"context"
	"log/slog"
	"strings"
	"sync/atomic"

	"github.com/emiago/sipgo/sip"
	"github.com/rs/zerolog"
)

// processLog is where sipgo's process-wide records (sip.DefaultLogger: connection
// reference counting warnings, with addresses only) go: the logger of the UA that ran
// last; nothing before one runs. The default logger is set once, at init, before any
// use of sipgo (sipgo reads it without synchronisation); Run only swaps the pointer.
var processLog atomic.Pointer[zerolog.Logger]

func init() {
	sip.SetDefaultLogger(slog.New(processHandler{}))
}

// processHandler forwards to the filtering handler of processLog.
type processHandler struct{}

func (processHandler) Enabled(_ context.Context, l slog.Level) bool { return l >= slog.LevelWarn }

func (processHandler) Handle(ctx context.Context, r slog.Record) error {
	if l := processLog.Load(); l != nil {
		return SlogHandler(l).Handle(ctx, r)
	}
	return nil
}

func (h processHandler) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h processHandler) WithGroup(string) slog.Handler      { return h }

// sipgo logs through log/slog. Its debug records carry whole SIP messages
// (bodies included), and even its error records do: the UDP and TCP
// transports log "failed to parse" with a "data" attribute holding the raw
// bytes. The handler below therefore forwards only warnings and errors,
// and of a record only its message text plus a few attributes known to
// carry addresses, never content (see safeAttrs). sip.SIPDebug, which
// prints every message to stderr, is never set by this package;
// Run refuses to start while it is set.

// safeAttrs are the sipgo attribute keys forwarded (values truncated).
var safeAttrs = map[string]bool{
	"caller": true, "network": true, "laddr": true, "raddr": true, "addr": true,
	"ip": true, "dst": true, "src": true, "ref": true, "tx": true, "method": true,
}

// maxAttrLen bounds a forwarded attribute value.
const maxAttrLen = 120

// slogHandler forwards sipgo's warnings and errors to a zerolog logger.
type slogHandler struct {
	log    *zerolog.Logger // immutable
	attrs  []slog.Attr     // immutable; from WithAttrs
	groups bool            // a group was opened: nested attributes are dropped
}

func newSlogLogger(log *zerolog.Logger) *slog.Logger {
	return slog.New(SlogHandler(log))
}

// SlogHandler returns the filtering slog.Handler the UA gives sipgo. sipgo's
// process-wide records go through the same filter to the logger of the UA that runs
// (see processLog).
func SlogHandler(log *zerolog.Logger) slog.Handler {
	return &slogHandler{log: log}
}

func (h *slogHandler) Enabled(_ context.Context, l slog.Level) bool {
	return l >= slog.LevelWarn
}

// remoteCaused are sipgo's error records that any sender can cause with bad input: they
// go to debug, so that nobody can fill the error log from outside (the sender gets its
// answer, 400 or none).
var remoteCaused = map[string]bool{
	"failed to parse": true, "Server tx failed to handle request": true, "unsupported message, skip it": true,
	"Failed to send stateless 400 for malformed request": true, "Read filter error": true,
}

func (h *slogHandler) Handle(_ context.Context, r slog.Record) error {
	if r.Level < slog.LevelWarn {
		return nil
	}
	ev := h.log.Warn()
	switch {
	case remoteCaused[r.Message]:
		ev = h.log.Debug()
	case r.Level >= slog.LevelError:
		ev = h.log.Error()
	}
	ev = ev.Str("source", "sipgo")
	add := func(a slog.Attr) bool {
		if safeAttrs[a.Key] {
			v := a.Value.String()
			if len(v) > maxAttrLen {
				v = v[:maxAttrLen]
			}
			ev = ev.Str("sipgo_"+a.Key, v)
		}
		return true
	}
	for _, a := range h.attrs {
		add(a)
	}
	if !h.groups {
		r.Attrs(add)
	}
	msg := r.Message
	if len(msg) > 200 || strings.ContainsAny(msg, "\r\n") {
		// sipgo's messages are constant strings; anything else is not forwarded.
		msg = "(sipgo message withheld)"
	}
	ev.Msg(msg)
	return nil
}

func (h *slogHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	if h.groups {
		return h
	}
	n := *h
	n.attrs = append(append([]slog.Attr(nil), h.attrs...), attrs...)
	return &n
}

func (h *slogHandler) WithGroup(name string) slog.Handler {
	if name == "" {
		return h
	}
	n := *h
	n.groups = true
	return &n
}
