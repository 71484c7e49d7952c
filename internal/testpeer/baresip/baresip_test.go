package baresip_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"

	"github.com/switchboard-matrix/switchboard/internal/testpeer/baresip"
)

const (
	alice = "sip:alice@sip.test"
	bob   = "sip:bob@sip.test"
	carol = "sip:carol@sip.test"
)

// TestMessagingAndPresence registers baresip through the fake proxy, sends and receives
// MESSAGEs, subscribes to a contact's presence and publishes its own.
func TestMessagingAndPresence(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	proxy := startFakeProxy(t, "s3cret")
	ua := baresip.StartTest(t, baresip.Options{
		AOR:              alice,
		Password:         "s3cret",
		Proxy:            "sip:" + proxy.Addr + ";transport=tcp",
		RegisterInterval: time.Hour,
		PublishInterval:  10 * time.Minute,
		Contacts:         []string{bob},
		Peers:            []string{carol},
	})
	if err := ua.WaitRegistered(ctx); err != nil {
		t.Fatal(err)
	}
	contact, ok := proxy.contact("alice")
	if !ok {
		t.Fatal("the proxy has no Contact for alice")
	}

	t.Run("receives a MESSAGE", func(t *testing.T) {
		code, err := proxy.sendMessage(ctx, contact, bob, alice, "text/plain", `hello "alice" é`)
		if err != nil || code != 200 {
			t.Fatalf("MESSAGE to baresip: %d, %v", code, err)
		}
		m, err := ua.WaitMessage(ctx, func(m baresip.Message) bool { return m.From == bob })
		if err != nil {
			t.Fatal(err)
		}
		if m.Body != `hello "alice" é` || m.ContentType != "text/plain" {
			t.Errorf("received %+v", m)
		}
	})

	t.Run("refuses isComposing", func(t *testing.T) {
		code, err := proxy.sendMessage(ctx, contact, bob, alice, "application/im-iscomposing+xml", "<isComposing/>")
		if err != nil || code != 415 {
			t.Fatalf("isComposing to baresip: %d, %v; want 415", code, err)
		}
	})

	t.Run("sends MESSAGEs to contacts", func(t *testing.T) {
		for _, to := range []string{carol, bob} {
			if err := ua.SendMessage(ctx, to, "hi "+to); err != nil {
				t.Fatal(err)
			}
			r, err := proxy.wait(ctx, func(r received) bool { return r.Method == "MESSAGE" && r.To == to })
			if err != nil {
				t.Fatal(err)
			}
			if r.Body != "hi "+to || r.From != alice || !strings.HasPrefix(r.ContentType, "text/plain") {
				t.Errorf("proxy got %+v", r)
			}
		}
	})

	t.Run("refuses a non-contact", func(t *testing.T) {
		if err := ua.SendMessage(ctx, "sip:dave@sip.test", "x"); !errors.Is(err, baresip.ErrNotContact) {
			t.Errorf("SendMessage to a non-contact: %v, want ErrNotContact", err)
		}
	})

	t.Run("sees a contact's presence", func(t *testing.T) {
		if err := ua.WaitPresence(ctx, bob, baresip.PresenceOnline); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("publishes its presence", func(t *testing.T) {
		if err := ua.SetPresence(ctx, baresip.PresenceOffline); err != nil {
			t.Fatal(err)
		}
		r, err := proxy.wait(ctx, func(r received) bool {
			return r.Method == "PUBLISH" && strings.Contains(r.Body, "<basic>closed</basic>")
		})
		if err != nil {
			t.Fatal(err)
		}
		if r.ContentType != "application/pidf+xml" || r.To != alice {
			t.Errorf("PUBLISH %+v", r)
		}
	})
}

// TestDirectWithoutRegistrar runs baresip without REGISTER: a MESSAGE sent straight to its
// port arrives.
func TestDirectWithoutRegistrar(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	proxy := startFakeProxy(t, "")
	ua := baresip.StartTest(t, baresip.Options{AOR: alice, Transport: "udp"})
	if ok, err := ua.Registered(ctx); err != nil || ok {
		t.Fatalf("Registered() = %v, %v without a registrar", ok, err)
	}
	var target sip.Uri
	if err := sip.ParseUri("sip:alice@"+ua.SIPAddr+";transport=tcp", &target); err != nil {
		t.Fatal(err)
	}
	code, err := proxy.sendMessage(ctx, target, bob, alice, "text/plain", "direct")
	if err != nil || code != 200 {
		t.Fatalf("MESSAGE: %d, %v", code, err)
	}
	if _, err := ua.WaitMessage(ctx, func(m baresip.Message) bool { return m.Body == "direct" }); err != nil {
		t.Fatal(err)
	}
}
