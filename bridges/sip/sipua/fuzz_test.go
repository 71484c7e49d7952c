package sipua

import (
	"errors"
	"strings"
	"testing"
)

func FuzzInbound(f *testing.F) {
	seeds := []string{
		"MESSAGE sip:_sip_a@bridge.test SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bK-1\r\nFrom: <sip:a@example.org>;tag=1\r\nTo: <sip:_sip_a@bridge.test>\r\nCall-ID: c1\r\nCSeq: 1 MESSAGE\r\nMax-Forwards: 70\r\nContent-Type: text/plain\r\nContent-Length: 5\r\n\r\nhello",
		"NOTIFY sip:x@10.0.0.1 SIP/2.0\r\nv: SIP/2.0/TCP h;branch=z9hG4bK-2\r\nf: \"A\" <sip:a@e.org>;tag=9\r\nt: <sip:x@bridge.test>;tag=7\r\ni: c2\r\nCSeq: 4 NOTIFY\r\nEvent: presence\r\nl: 0\r\n\r\n",
		"OPTIONS sip:bridge.test SIP/2.0\r\nVia: SIP/2.0/UDP h\r\nFrom: <sip:a@e>;tag=1\r\nTo: <sip:bridge.test>\r\nCall-ID: o\r\nCSeq: 1 OPTIONS\r\n\r\n",
		"INVITE sip:a@bridge.test SIP/2.0\r\nContent-Length: 99999999\r\n\r\n",
		"SIP/2.0 200 OK\r\n\r\n",
		"MESSAGE tel:+123 SIP/2.0\r\nFrom: x\r\n\r\n",
	}
	for _, s := range seeds {
		f.Add([]byte(s))
	}
	cfg := validConfig()
	cfg.Domain = "bridge.test"
	cfg.MaxBodyBytes = 512
	u, err := New(cfg, &okHandler{})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		req, err := u.parseInbound(raw)
		if err != nil {
			var r *refusal
			if errors.As(err, &r) && (r.code < 400 || r.code > 599 || r.reason == "") {
				t.Fatalf("refusal %d %q", r.code, r.reason)
			}
			return
		}
		if len(req.Body) > cfg.MaxBodyBytes {
			t.Fatalf("accepted a %d byte body", len(req.Body))
		}
		if req.From.Tag == "" || strings.TrimSpace(req.CallID) == "" {
			t.Fatalf("accepted without From tag or Call-ID: %+v", req)
		}
		switch req.Method {
		case "MESSAGE", "SUBSCRIBE", "NOTIFY", "OPTIONS":
		default:
			t.Fatalf("accepted method %q", req.Method)
		}
		if req.To.Tag == "" && req.Method != "OPTIONS" && !strings.Contains(strings.ToLower(req.RequestURI), "bridge.test") {
			t.Fatalf("accepted out-of-dialog request for %q", req.RequestURI)
		}
	})
}
