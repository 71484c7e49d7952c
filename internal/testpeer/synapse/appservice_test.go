package synapse

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"maunium.net/go/mautrix"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"

	"github.com/switchboard-matrix/switchboard/internal/testpeer/dendrite"
	"github.com/switchboard-matrix/switchboard/internal/testpeer/peerproc"
	"github.com/switchboard-matrix/switchboard/registration"
)

// fakeAS is the appservice side of the feature tests: it records every transaction and
// ping Synapse sends to the registration's port.
type fakeAS struct {
	hsToken string

	mu     sync.Mutex
	txns   []map[string]any
	pings  []string
	wake   chan struct{}
	badReq []string
}

func newFakeAS(hsToken string) *fakeAS {
	return &fakeAS{hsToken: hsToken, wake: make(chan struct{}, 1)}
}

func (f *fakeAS) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Header.Get("Authorization") != "Bearer "+f.hsToken {
		f.mu.Lock()
		f.badReq = append(f.badReq, r.Method+" "+r.URL.Path+": wrong or no hs_token")
		f.mu.Unlock()
		http.Error(w, `{"errcode":"M_FORBIDDEN"}`, http.StatusForbidden)
		return
	}
	body, _ := io.ReadAll(r.Body)
	switch {
	case r.Method == http.MethodPut && strings.HasPrefix(r.URL.Path, "/_matrix/app/v1/transactions/"):
		var txn map[string]any
		if err := json.Unmarshal(body, &txn); err != nil {
			http.Error(w, "bad json", http.StatusBadRequest)
			return
		}
		f.mu.Lock()
		f.txns = append(f.txns, txn)
		f.mu.Unlock()
	case r.Method == http.MethodPost && r.URL.Path == "/_matrix/app/v1/ping":
		var ping struct {
			TransactionID string `json:"transaction_id"`
		}
		_ = json.Unmarshal(body, &ping)
		f.mu.Lock()
		f.pings = append(f.pings, ping.TransactionID)
		f.mu.Unlock()
	default:
		// User and alias queries: nothing exists beyond what the test registers.
		http.Error(w, `{"errcode":"M_NOT_FOUND"}`, http.StatusNotFound)
		return
	}
	select {
	case f.wake <- struct{}{}:
	default:
	}
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write([]byte("{}"))
}

// waitTxn waits until a recorded transaction satisfies ok and returns it.
func (f *fakeAS) waitTxn(t *testing.T, what string, ok func(txn map[string]any) bool) map[string]any {
	t.Helper()
	deadline := time.After(30 * time.Second)
	for {
		f.mu.Lock()
		for _, txn := range f.txns {
			if ok(txn) {
				f.mu.Unlock()
				return txn
			}
		}
		n := len(f.txns)
		f.mu.Unlock()
		select {
		case <-f.wake:
		case <-time.After(200 * time.Millisecond):
		case <-deadline:
			t.Fatalf("no transaction with %s among %d received", what, n)
		}
	}
}

// asClient calls the client-server API with the appservice token, as user_id (and
// device_id) when given.
type asClient struct {
	base, token string
}

func (c asClient) do(ctx context.Context, method, path string, q url.Values, in, out any) (int, error) {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return 0, err
		}
		body = bytes.NewReader(b)
	}
	u := c.base + path
	if len(q) > 0 {
		u += "?" + q.Encode()
	}
	req, err := http.NewRequestWithContext(ctx, method, u, body)
	if err != nil {
		return 0, err
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode/100 != 2 {
		return resp.StatusCode, fmt.Errorf("%s %s: HTTP %d: %s", method, path, resp.StatusCode, b)
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			return resp.StatusCode, fmt.Errorf("%s %s: %w", method, path, err)
		}
	}
	return resp.StatusCode, nil
}

// get walks a decoded JSON value along keys; nil when a step is missing.
func get(v any, keys ...string) any {
	for _, k := range keys {
		m, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		v = m[k]
	}
	return v
}

// TestAppserviceFeatures proves, against a real Synapse with the harness's config and
// registration, that each experimental appservice feature Switchboard relies on is on:
// /ping (appservice API v1.7), MSC4190 device creation, MSC3202 device masquerading,
// MSC2409 ephemeral (typing) and to-device pushes, and the MSC3202 transaction extensions
// (one-time key counts, device list changes).
func TestAppserviceFeatures(t *testing.T) {
	peerproc.RequireOrSkip(t, "synapse", Available())
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	hs, err := StartWithAppservice(ctx, t.TempDir(), dendrite.Appservice{
		ID: "switchboard", Ephemeral: true,
		Namespaces: map[string]registration.Namespaces{
			"test": {Users: []registration.Pattern{{Localpart: "_test_.+", Exclusive: true}}},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := hs.Stop(); err != nil {
			t.Errorf("stop: %v", err)
		}
		if t.Failed() {
			t.Logf("synapse log tail:\n%s", hs.LogTail(60))
		}
	})
	t.Logf("synapse %s with appservice started in %v", Version(), hs.StartupTime)

	as := newFakeAS(hs.Registration.ServerToken)
	ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", hs.ASPort))
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: as, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	bot := asClient{base: hs.URL, token: hs.Registration.AppToken}

	t.Run("Ping", func(t *testing.T) {
		var resp struct {
			DurationMS *int `json:"duration_ms"`
		}
		if _, err := bot.do(ctx, http.MethodPost, "/_matrix/client/v1/appservice/switchboard/ping", nil,
			map[string]any{"transaction_id": "ping-1"}, &resp); err != nil {
			t.Fatal(err)
		}
		as.mu.Lock()
		pings := append([]string(nil), as.pings...)
		as.mu.Unlock()
		if resp.DurationMS == nil || len(pings) != 1 || pings[0] != "ping-1" {
			t.Fatalf("ping: duration %v, appservice saw %q", resp.DurationMS, pings)
		}
	})

	ghost := "@_test_ghost:localhost"
	const ghostDevice = "GHOSTDEV"
	asGhost := url.Values{"user_id": {ghost}}
	if _, err := bot.do(ctx, http.MethodPost, "/_matrix/client/v3/register", nil, map[string]any{
		"type": "m.login.application_service", "username": "_test_ghost", "inhibit_login": true,
	}, nil); err != nil {
		t.Fatal(err)
	}

	t.Run("MSC4190DeviceCreation", func(t *testing.T) {
		// The registration key is read: appservice users are registered without a login
		// (Synapse 1.163 lets every appservice create devices, with or without the key).
		status, err := bot.do(ctx, http.MethodPost, "/_matrix/client/v3/register", nil, map[string]any{
			"type": "m.login.application_service", "username": "_test_withlogin",
		}, nil)
		if status != http.StatusBadRequest || err == nil || !strings.Contains(err.Error(), "M_APPSERVICE_LOGIN_UNSUPPORTED") {
			t.Errorf("register with a login: HTTP %d, %v; want 400 M_APPSERVICE_LOGIN_UNSUPPORTED (io.element.msc4190 off?)", status, err)
		}
		if _, err := bot.do(ctx, http.MethodPut, "/_matrix/client/v3/devices/"+ghostDevice, asGhost,
			map[string]any{"display_name": "ghost device"}, nil); err != nil {
			t.Fatalf("appservice could not create a device (MSC4190 off?): %v", err)
		}
		var devs struct {
			Devices []struct {
				DeviceID string `json:"device_id"`
			} `json:"devices"`
		}
		if _, err := bot.do(ctx, http.MethodGet, "/_matrix/client/v3/devices", asGhost, nil, &devs); err != nil {
			t.Fatal(err)
		}
		if len(devs.Devices) != 1 || devs.Devices[0].DeviceID != ghostDevice {
			t.Fatalf("ghost devices = %+v", devs.Devices)
		}
	})

	t.Run("MSC3202DeviceMasquerading", func(t *testing.T) {
		var who struct {
			UserID   string `json:"user_id"`
			DeviceID string `json:"device_id"`
		}
		q := url.Values{"user_id": {ghost}, "device_id": {ghostDevice}}
		if _, err := bot.do(ctx, http.MethodGet, "/_matrix/client/v3/account/whoami", q, nil, &who); err != nil {
			t.Fatal(err)
		}
		if who.UserID != ghost || who.DeviceID != ghostDevice {
			t.Fatalf("whoami = %+v", who)
		}
		// One-time keys uploaded as the ghost's device, for the count test below.
		if _, err := bot.do(ctx, http.MethodPost, "/_matrix/client/v3/keys/upload", q, map[string]any{
			"one_time_keys": map[string]any{"curve25519:AAAAAQ": "dGVzdGtleTE", "curve25519:AAAAAg": "dGVzdGtleTI"},
		}, nil); err != nil {
			t.Fatal(err)
		}
	})

	alice := hs.NewUser(t, "alice")
	room, err := alice.CreateRoom(ctx, &mautrix.ReqCreateRoom{Preset: "private_chat"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := alice.InviteUser(ctx, room.RoomID, &mautrix.ReqInviteUser{UserID: id.UserID(ghost)}); err != nil {
		t.Fatal(err)
	}
	if _, err := bot.do(ctx, http.MethodPost, "/_matrix/client/v3/rooms/"+url.PathEscape(room.RoomID.String())+"/join", asGhost, map[string]any{}, nil); err != nil {
		t.Fatal(err)
	}

	t.Run("MSC2409Typing", func(t *testing.T) {
		if _, err := alice.UserTyping(ctx, room.RoomID, true, 10*time.Second); err != nil {
			t.Fatal(err)
		}
		txn := as.waitTxn(t, "an m.typing ephemeral event", func(txn map[string]any) bool {
			for _, key := range []string{"ephemeral", "de.sorunome.msc2409.ephemeral"} {
				evs, _ := txn[key].([]any)
				for _, ev := range evs {
					if get(ev, "type") == "m.typing" && get(ev, "room_id") == room.RoomID.String() {
						return true
					}
				}
			}
			return false
		})
		// Synapse sends the same list under the stable and the unstable key when the
		// registration has both receive_ephemeral and de.sorunome.msc2409.push_ephemeral.
		t.Logf("typing transaction keys: %v", keys(txn))
	})

	t.Run("MSC2409ToDevice", func(t *testing.T) {
		if _, err := alice.SendToDevice(ctx, event.Type{Type: "org.example.test", Class: event.ToDeviceEventType}, &mautrix.ReqSendToDevice{
			Messages: map[id.UserID]map[id.DeviceID]*event.Content{
				id.UserID(ghost): {ghostDevice: {Raw: map[string]any{"hello": "ghost"}}},
			},
		}); err != nil {
			t.Fatal(err)
		}
		as.waitTxn(t, "the to-device message", func(txn map[string]any) bool {
			msgs, _ := txn["de.sorunome.msc2409.to_device"].([]any)
			for _, m := range msgs {
				if get(m, "type") == "org.example.test" && get(m, "to_user_id") == ghost &&
					get(m, "to_device_id") == ghostDevice && get(m, "content", "hello") == "ghost" &&
					get(m, "sender") == alice.UserID.String() {
					return true
				}
			}
			return false
		})
	})

	t.Run("MSC3202OneTimeKeyCounts", func(t *testing.T) {
		// Any transaction about the ghost's room carries the counts of its devices.
		if _, err := alice.SendText(ctx, room.RoomID, "hello"); err != nil {
			t.Fatal(err)
		}
		as.waitTxn(t, "the ghost's one-time key count", func(txn map[string]any) bool {
			n, _ := get(txn, "org.matrix.msc3202.device_one_time_keys_count", ghost, ghostDevice, "curve25519").(float64)
			return n == 2
		})
	})

	t.Run("MSC3202DeviceLists", func(t *testing.T) {
		// A new device of alice, who shares a room with the ghost, changes her device list.
		second, err := mautrix.NewClient(hs.URL, "", "")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := second.Login(ctx, &mautrix.ReqLogin{
			Type:       mautrix.AuthTypePassword,
			Identifier: mautrix.UserIdentifier{Type: mautrix.IdentifierTypeUser, User: alice.UserID.Localpart()},
			Password:   "password-" + alice.UserID.Localpart(),
		}); err != nil {
			t.Fatal(err)
		}
		as.waitTxn(t, "alice in device_lists.changed", func(txn map[string]any) bool {
			changed, _ := get(txn, "org.matrix.msc3202.device_lists", "changed").([]any)
			for _, u := range changed {
				if u == alice.UserID.String() {
					return true
				}
			}
			return false
		})
	})

	as.mu.Lock()
	defer as.mu.Unlock()
	if len(as.badReq) > 0 {
		t.Errorf("requests without the hs_token: %q", as.badReq)
	}
}

func keys(m map[string]any) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}
