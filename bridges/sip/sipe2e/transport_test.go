package sipe2e

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"
	"maunium.net/go/mautrix"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"

	"github.com/switchboard-matrix/switchboard/appservice"
	bridge "github.com/switchboard-matrix/switchboard/bridges/sip"
	"github.com/switchboard-matrix/switchboard/config"
	"github.com/switchboard-matrix/switchboard/internal/testpeer/matrixtest"
	"github.com/switchboard-matrix/switchboard/internal/testpeer/sipphone"
)

// TestTLSToProxy runs the bridge with Kamailio's TLS listener as its proxy (Kamailio still
// forwards to the bridge over TCP): with Kamailio's CA a conversation works both ways;
// without it the certificate is unknown, the bridge's MESSAGE never leaves, and the Matrix
// sender is told after the retries. Certificate verification is never switched off.
func TestTLSToProxy(t *testing.T) {
	t.Run("conversation", func(t *testing.T) {
		cfg := bridgeConfig()
		cfg.Proxy, cfg.CAFile = kam.ProxyURI("tls"), kam.CAFile
		startBridgeTuned(t, cfg, tuning{})
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		alice := newMatrixUser(t, "tlsalice")
		phone := newPhone(t, "tls")
		room := openDMFromPhone(ctx, t, phone, "tls", alice)
		reply := unique("over TLS from Matrix ")
		if _, err := alice.SendText(ctx, room, reply); err != nil {
			t.Fatal(err)
		}
		got, err := phone.Wait(ctx, "alice's reply", func(r *sip.Request) bool {
			return r.Method == sip.MESSAGE && strings.Contains(string(r.Body()), reply)
		})
		if err != nil {
			t.Fatal(err)
		}
		var vias []string
		for _, h := range got.GetHeaders("Via") {
			vias = append(vias, h.Value())
		}
		if !strings.Contains(strings.Join(vias, ", "), "SIP/2.0/TLS") {
			t.Errorf("the reply came through %v, want a TLS hop from the bridge", vias)
		}
	})

	t.Run("unknown certificate", func(t *testing.T) {
		cfg := bridgeConfig()
		cfg.Proxy = kam.ProxyURI("tls") // no CAFile: Kamailio's CA is not among the system's roots
		cfg.SendTimeout = config.Duration(3 * time.Second)
		logs := &logSink{}
		startBridgeTuned(t, cfg, tuning{log: logs, retry: appservice.Retry{Attempts: 2, Initial: 200 * time.Millisecond, Max: 500 * time.Millisecond}})
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		alice := newMatrixUser(t, "tlsalice")
		phone := newPhone(t, "tls")
		dm := openDMFromPhone(ctx, t, phone, "tls", alice)
		text := unique("never over TLS ")
		sent, err := alice.SendText(ctx, dm, text)
		if err != nil {
			t.Fatal(err)
		}
		notice := matrixtest.WaitEvent(t, alice, dm, "the failure notice", func(e *event.Event) bool {
			return e.Type == event.EventMessage && e.Content.AsMessage().MsgType == event.MsgNotice
		})
		c := notice.Content.AsMessage()
		if c.RelatesTo == nil || c.RelatesTo.InReplyTo == nil || c.RelatesTo.InReplyTo.EventID != sent.EventID ||
			!strings.Contains(c.Body, "cannot be reached") {
			t.Errorf("notice %q in reply to %+v, want a reply to %s saying the proxy cannot be reached", c.Body, c.RelatesTo, sent.EventID)
		}
		matrixtest.WaitEvent(t, alice, dm, "the failure status", func(e *event.Event) bool {
			return e.Type == event.BeeperMessageStatus && e.Content.Raw["status"] == "FAIL_PERMANENT"
		})
		for _, r := range phone.Received("MESSAGE") {
			if strings.Contains(string(r.Body()), text) {
				t.Errorf("the phone got the message that should have failed")
			}
		}
		if why := "certificate signed by unknown authority"; !strings.Contains(logs.String(), why) {
			t.Errorf("the core's log does not say why TLS failed (no %q)", why)
		}
	})
}

// TestRegisterAsTrunk registers the bridge at Kamailio as a gateway with digest
// credentials: the module's status says registered; with a wrong password it says not
// registered and why.
func TestRegisterAsTrunk(t *testing.T) {
	for _, tt := range []struct {
		name       string
		password   string
		registered bool
	}{
		{"right password", users["gateway"], true},
		{"wrong password", "not-" + users["gateway"], false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			cfg := bridgeConfig()
			cfg.Register = &bridge.RegisterConfig{AOR: "sip:gateway@" + sipDomain, Username: "gateway", Password: tt.password}
			r := startBridgeTuned(t, cfg, tuning{})
			ctx := context.Background()
			var st appservice.ModuleStatus
			matrixtest.WaitFor(t, 30*time.Second, "the registration's outcome", func() (bool, error) {
				st = r.bridge.Status(ctx)
				if tt.registered {
					return st.Connected && strings.Contains(st.State, "registered as sip:gateway@"+sipDomain), nil
				}
				return st.LastError != "", nil
			})
			if tt.registered {
				return
			}
			if st.Connected || !strings.Contains(st.State, "not registered") {
				t.Errorf("status %+v, want not connected and not registered", st)
			}
			if strings.Contains(st.LastError, tt.password) || strings.Contains(st.State, tt.password) {
				t.Errorf("the status shows the password: %+v", st)
			}
			t.Logf("status with a wrong password: %s; last error: %s", st.State, st.LastError)
		})
	}
}

// openDMFromPhone has phone (the Kamailio user user) write to cli's user, who accepts
// the DM's invite, and waits for the message there.
func openDMFromPhone(ctx context.Context, t *testing.T, phone *sipphone.Phone, user string, cli *mautrix.Client) id.RoomID {
	t.Helper()
	first := unique("hello from " + user + " ")
	to := sipURIOf(t, cli.UserID)
	if code, reason, err := phone.Send(ctx, sipphone.Request{To: to, ContentType: "text/plain", Body: []byte(first)}); err != nil || code != 202 {
		t.Fatalf("MESSAGE to %s: %d %s %v, want 202", to, code, reason, err)
	}
	room := matrixtest.AcceptInvite(t, cli)
	matrixtest.WaitEvent(t, cli, room, user+"'s first message", bodyIs(ghostOf(t, user), first))
	return room
}
