package xmpp

import (
	"fmt"
	"strings"
	"testing"

	"github.com/switchboard-matrix/switchboard/bridges/xmpp/fetch"
	"github.com/switchboard-matrix/switchboard/bridges/xmpp/xmsg"
)

func TestNeedsWorker(t *testing.T) {
	link := []xmsg.OOB{{URL: "https://files.example/a.png"}}
	for _, tc := range []struct {
		name string
		msg  xmsg.Message
		want bool
	}{
		{"text only", xmsg.Message{Body: "hi"}, false},
		{"a link", xmsg.Message{Body: "look", OOB: link}, true},
		{"a retraction with a stray link", xmsg.Message{Retract: "x", OOB: link}, false},
		{"reactions with a stray link", xmsg.Message{Reactions: &xmsg.Reactions{ID: "x"}, OOB: link}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := needsWorker(&tc.msg); got != tc.want {
				t.Errorf("needsWorker = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestPublicReason(t *testing.T) {
	for _, tc := range []struct {
		name string
		err  error
		want string
	}{
		{"too many links", errTooManyLinks, "more links than the bridge downloads"},
		{"message timeout", fmt.Errorf("%w: %w", errLinksTimeout, fmt.Errorf("fetch: GET from internal.example: deadline")), "took too long"},
		{"backlog", errBacklog, "too many files from this conversation are waiting"},
		{"too large", fmt.Errorf("%w: 5 bytes", fetch.ErrTooLarge), "larger than the bridge's limit"},
		{"status", &fetch.StatusError{StatusCode: 404, Host: "files.example"}, "HTTP 404"},
		{"other", fmt.Errorf("dial internal.example: refused"), "could not be downloaded"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := publicReason(tc.err)
			if !strings.Contains(got, tc.want) || strings.Contains(got, "example") {
				t.Errorf("publicReason = %q, want it to say %q and name no host", got, tc.want)
			}
		})
	}
}
