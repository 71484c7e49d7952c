package linphone

import (
	"context"
	"net"
	"strings"
	"testing"
	"time"
)

// TestStartSendsCPIM starts linphonec with a "proxy" that only reads what it gets, and
// checks that a chat message goes out as CPIM with the IMDN headers.
func TestStartSendsCPIM(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	got := make(chan string, 1)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				var all strings.Builder
				buf := make([]byte, 4096)
				for {
					n, err := c.Read(buf)
					all.Write(buf[:n])
					if s := all.String(); strings.Contains(s, "hello cpim") {
						got <- s
						return
					}
					if err != nil {
						return
					}
				}
			}()
		}
	}()
	ua := StartTest(t, Options{AOR: "sip:alice@sip.test", Password: "pw",
		Proxy: "sip:" + ln.Addr().String() + ";transport=tcp"})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := ua.SendMessage(ctx, "sip:bob@sip.test", "hello cpim"); err != nil {
		t.Fatal(err)
	}
	select {
	case wire := <-got:
		for _, want := range []string{"Content-Type: message/cpim", "imdn.Message-ID: ", "imdn.Disposition-Notification: positive-delivery"} {
			if !strings.Contains(wire, want) {
				t.Errorf("liblinphone sent no %q:\n%s", want, wire)
			}
		}
	case <-ctx.Done():
		t.Fatal("no MESSAGE from liblinphone")
	}
}

func TestOptionsValidate(t *testing.T) {
	for _, tc := range []struct {
		name string
		opts Options
		ok   bool
	}{
		{"ok", Options{AOR: "sip:a@b", Proxy: "sip:127.0.0.1:5060"}, true},
		{"no proxy", Options{AOR: "sip:a@b"}, false},
		{"bad AOR", Options{AOR: "a@b", Proxy: "sip:127.0.0.1"}, false},
		{"space in proxy", Options{AOR: "sip:a@b", Proxy: "sip:127.0.0.1 x"}, false},
		{"newline in password", Options{AOR: "sip:a@b", Proxy: "sip:127.0.0.1", Password: "a\nb"}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := tc.opts.validate(); (err == nil) != tc.ok {
				t.Errorf("validate() = %v, want ok %v", err, tc.ok)
			}
		})
	}
}
