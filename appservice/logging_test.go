package appservice

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/switchboard-matrix/switchboard/internal/syncbuf"

	"github.com/rs/zerolog"
	"maunium.net/go/mautrix"
	mas "maunium.net/go/mautrix/appservice"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"
)

// patientMarker stands for patient data in a message body.
const patientMarker = "Erika-Mustermann-1964-03-12-A123456789"

type syncBuffer = syncbuf.Buffer

// ctxModule is a recModule that keeps the context of its Start, whose logger a module
// uses for its own lines.
type ctxModule struct {
	recModule
	startCtx context.Context
}

func (m *ctxModule) Start(ctx context.Context, h Host) error {
	m.startCtx = ctx
	return m.recModule.Start(ctx, h)
}

// startLoggedCore starts a core against the fake homeserver with its log at level in sink.
func startLoggedCore(t *testing.T, level zerolog.Level, sink *syncBuffer) (*ctxModule, *fakeHomeserver) {
	t.Helper()
	hs := newFakeHomeserver(t)
	mod := &ctxModule{recModule: recModule{id: "rec", fail: map[id.EventID]int{}}}
	reg := &mas.Registration{ID: "sbtest", URL: "http://127.0.0.1:1", AppToken: "as-token", ServerToken: testHSToken, SenderLocalpart: "bot"}
	c, err := New(Options{
		Registration: reg, HomeserverURL: hs.URL, Domain: "test", Store: sqliteStore(t), Modules: []Module{mod},
		Listen: "127.0.0.1:0", Retry: Retry{Attempts: 2, Initial: 5 * time.Millisecond, Max: 20 * time.Millisecond},
		InDoubtSettle: 10 * time.Millisecond, Version: "test",
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx := zerolog.New(sink).Level(level).WithContext(context.Background())
	if err := c.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = c.Stop(sctx)
	})
	return mod, hs
}

// TestNoBodyInLogBelowTrace sends a message with patient data through the outbox and a
// module's intent, successfully and failing in every way a homeserver can fail, and
// checks that the log holds no body below trace level, and the body at trace.
func TestNoBodyInLogBelowTrace(t *testing.T) {
	outcomes := []struct {
		name  string
		setup func(hs *fakeHomeserver)
	}{
		{"success", func(*fakeHomeserver) {}},
		{"400 quoting the body", func(hs *fakeHomeserver) {
			hs.failSend, hs.failStatus = 1, http.StatusBadRequest
			hs.failBody = `{"errcode":"M_BAD_JSON","error":"bad content: ` + patientMarker + `"}`
		}},
		{"500 with a non-JSON body quoting the request", func(hs *fakeHomeserver) {
			hs.failSend, hs.failStatus = 5, http.StatusInternalServerError
			hs.failBody = `<html>proxy error while sending {"body":"` + patientMarker + `"}</html>`
		}},
		{"connection dropped", func(hs *fakeHomeserver) { hs.dropSend = 5 }},
	}
	levels := []struct {
		level    zerolog.Level
		wantBody bool
	}{
		{zerolog.InfoLevel, false},
		{zerolog.DebugLevel, false},
		{zerolog.TraceLevel, true},
	}
	for _, lv := range levels {
		for _, oc := range outcomes {
			t.Run(lv.level.String()+"/"+oc.name, func(t *testing.T) {
				sink := &syncBuffer{}
				mod, hs := startLoggedCore(t, lv.level, sink)
				hs.mu.Lock()
				oc.setup(hs)
				hs.mu.Unlock()
				ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
				defer cancel()
				_, sendErr := mod.host.Send(ctx, Message{RoomID: "!p:test", Sender: "@_rec_ghost:test", RemoteID: "r1",
					Content: &event.MessageEventContent{MsgType: event.MsgText, Body: "Patient: " + patientMarker}})
				if sendErr != nil && strings.Contains(sendErr.Error(), patientMarker) {
					t.Errorf("the error returned to the module carries the body: %v", sendErr)
				}
				// A module's own requests and log lines.
				ghost, err := mod.host.Ghost("_rec_ghost")
				if err != nil {
					t.Fatal(err)
				}
				mctx := mod.startCtx
				if _, err := ghost.SendState(mctx, "!p:test", event.StateTopic, "", map[string]string{"topic": patientMarker}); err != nil {
					t.Fatal(err)
				}
				zerolog.Ctx(mctx).Debug().Str("body", patientMarker).Msg("A module logs a body")
				zerolog.Ctx(mctx).Error().Str("body", patientMarker).Msg("A module logs a body at error")

				out := sink.String()
				if got := strings.Contains(out, patientMarker); got != lv.wantBody {
					t.Errorf("log at %s contains the body: %v, want %v; log:\n%s", lv.level, got, lv.wantBody, out)
				}
				if !lv.wantBody && lv.level == zerolog.DebugLevel && !strings.Contains(out, omittedBody) {
					t.Errorf("log at debug does not show that a body was omitted; log:\n%s", out)
				}
			})
		}
	}
}

func TestRequestErrorPrintsNoBody(t *testing.T) {
	req, _ := http.NewRequest(http.MethodPut, "http://hs/_matrix/client/v3/rooms/!r:test/send/m.room.message/t1?user_id=@a:test", nil)
	tests := []struct {
		name string
		err  error
		want string
	}{
		{"matrix error", mautrix.HTTPError{Request: req, Response: &http.Response{StatusCode: 400},
			RespError: &mautrix.RespError{ErrCode: "M_BAD_JSON", Err: "bad " + patientMarker}},
			"matrix request PUT /_matrix/client/v3/rooms/!r:test/send/m.room.message/t1: HTTP 400 M_BAD_JSON"},
		{"non-JSON answer", mautrix.HTTPError{Request: req, Response: &http.Response{StatusCode: 502}, ResponseBody: patientMarker},
			"matrix request PUT /_matrix/client/v3/rooms/!r:test/send/m.room.message/t1: HTTP 502"},
		{"transport", mautrix.HTTPError{Request: req, Message: "request error", WrappedError: errors.New("EOF")},
			"matrix request PUT /_matrix/client/v3/rooms/!r:test/send/m.room.message/t1 failed: request error"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := requestError(tt.err)
			if err.Error() != tt.want {
				t.Errorf("Error() = %q, want %q", err.Error(), tt.want)
			}
			var he mautrix.HTTPError
			if !errors.As(err, &he) {
				t.Error("the client's error is not reachable through errors.As")
			}
		})
	}
	if requestError(nil) != nil || requestError(context.Canceled) != context.Canceled {
		t.Error("nil or a non-request error changed")
	}
}
