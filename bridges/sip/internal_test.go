package sip

import (
	"testing"
	"time"

	"maunium.net/go/mautrix/id"

	"github.com/switchboard-matrix/switchboard/bridges/sip/sipmsg"
	"github.com/switchboard-matrix/switchboard/bridges/sip/sipua"
	"github.com/switchboard-matrix/switchboard/bridges/sip/sipuri"
)

func TestInboundKey(t *testing.T) {
	req := &sipua.Request{CallID: "abc@host", From: sipua.Addr{Tag: "t1"}, CSeq: 7}
	tests := []struct {
		name string
		req  *sipua.Request
		c    *sipmsg.Content
		want string
	}{
		{"call-id, tag and cseq", req, &sipmsg.Content{}, "dm:x|in:abc%40host|t1|7"},
		{"imdn message-id wins", req, &sipmsg.Content{MessageID: "m 1"}, "dm:x|imdn:m+1"},
		{"another cseq is another message", &sipua.Request{CallID: "abc@host", From: sipua.Addr{Tag: "t1"}, CSeq: 8}, &sipmsg.Content{}, "dm:x|in:abc%40host|t1|8"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := inboundKey("dm:x", tt.req, tt.c); got != tt.want {
				t.Errorf("inboundKey = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestDMChatRoundTrip(t *testing.T) {
	peer := sipuri.AOR{User: "Bob.Smith", Host: "example.org"}
	user := id.UserID("@alice:example.org")
	u, p, ok := parseDMChat(dmChat(user, peer))
	if !ok || u != user || p != peer {
		t.Fatalf("parseDMChat(dmChat) = %s %v %v", u, p, ok)
	}
	for _, bad := range []string{"", "muc:x", "dm:@alice:example.org", "dm:@alice:example.org|not an address"} {
		if _, _, ok := parseDMChat(bad); ok {
			t.Errorf("parseDMChat(%q) ok", bad)
		}
	}
}

func TestStripReplyFallback(t *testing.T) {
	tests := []struct{ name, in, want string }{
		{"no reply", "hello", "hello"},
		{"reply", "> <@a:b> quoted\n> more\n\nanswer", "answer"},
		{"quote only", "> just a quote", ""},
		{"quote not at start", "text\n> quote", "text\n> quote"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := stripReplyFallback(tt.in); got != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}

func TestRetryable(t *testing.T) {
	for code, want := range map[int]bool{408: true, 480: true, 500: true, 503: true, 504: true, 404: false, 486: false, 603: false, 415: false, 413: false} {
		if retryable(code) != want {
			t.Errorf("retryable(%d) = %v", code, !want)
		}
	}
}

func TestDerivedIsStable(t *testing.T) {
	a, b := derived("$evt1", "call", 16), derived("$evt1", "call", 16)
	if a != b || a == derived("$evt2", "call", 16) || a == derived("$evt1", "tag", 16) || len(a) != 32 {
		t.Errorf("derived: %q %q", a, b)
	}
}

func TestEventTime(t *testing.T) {
	now := time.Now()
	tests := []struct {
		name string
		in   time.Time
		keep bool
	}{
		{"none", time.Time{}, false},
		{"a minute ago", now.Add(-time.Minute), true},
		{"two days ago", now.Add(-48 * time.Hour), false},
		{"in an hour", now.Add(time.Hour), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := eventTime(tt.in); (tt.keep && !got.Equal(tt.in)) || (!tt.keep && !got.IsZero()) {
				t.Errorf("eventTime(%v) = %v", tt.in, got)
			}
		})
	}
}
