package sipe2e

import (
	"context"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"maunium.net/go/mautrix/id"

	"github.com/switchboard-matrix/switchboard/internal/testpeer/homeserver"
	"github.com/switchboard-matrix/switchboard/internal/testpeer/linphone"
	"github.com/switchboard-matrix/switchboard/internal/testpeer/matrixtest"
)

// TestLinphoneInterop is linphonec 5.1 (liblinphone, an implementation of CPIM, IMDN and
// isComposing independent of bridges/sip/sipmsg) registered at Kamailio as pres1, talking
// to a Matrix user with CPIM on: its CPIM message with IMDN headers reaches Matrix; the
// bridge's IMDN "delivered" makes liblinphone mark the message DeliveredToUser; the Matrix
// user's reply (CPIM-wrapped by the bridge) is shown by linphonec; the Matrix user's
// typing reaches liblinphone as isComposing that it accepts. linphonec has no command to
// type or to mark a message read, so isComposing and IMDN "displayed" from liblinphone
// are not tested.
func TestLinphoneInterop(t *testing.T) {
	startBridge(t, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	alice := newMatrixUser(t, "lin")
	aliceURI := sipURIOf(t, alice.UserID)
	ghost := ghostOf(t, "pres1")

	lp := linphone.StartTest(t, linphone.Options{
		AOR: "sip:pres1@" + sipDomain, Password: users["pres1"], Proxy: kam.ProxyURI("tcp"),
	})
	if err := lp.WaitRegistered(ctx); err != nil {
		t.Fatal(err)
	}

	// (a) liblinphone's CPIM message reaches Matrix.
	first := unique("hello from linphone ")
	if err := lp.SendMessage(ctx, aliceURI, first); err != nil {
		t.Fatal(err)
	}
	room := matrixtest.AcceptInvite(t, alice)
	matrixtest.WaitEvent(t, alice, room, "linphone's message", bodyIs(ghost, first))
	sent := sipMessages(lp.LiblinphoneLog(), "MESSAGE "+aliceURI)
	if len(sent) == 0 {
		t.Fatalf("no MESSAGE to %s in liblinphone's log", aliceURI)
	}
	t.Logf("liblinphone sent:\n%s", sent[0])
	if ct := headerOf(sent[0], "Content-Type"); !strings.HasPrefix(ct, "message/cpim") {
		t.Errorf("liblinphone sent Content-Type %q, want message/cpim (is CPIM enabled in its config?)", ct)
	}

	// (b) The bridge's IMDN "delivered" is accepted: the message becomes DeliveredToUser.
	if _, err := lp.WaitLog(ctx, "the message state DeliveredToUser", func(log string) bool {
		return slices.Contains(linphone.MessageStates(log, aliceURI), "DeliveredToUser")
	}); err != nil {
		log := lp.LiblinphoneLog()
		t.Logf("message states: %v; IMDN received:\n%s", linphone.MessageStates(log, aliceURI),
			strings.Join(sipMessages(log, "MESSAGE sip:pres1@"), "\n----\n"))
		t.Fatal(err)
	}

	// (c) The Matrix user's reply is shown by linphonec.
	reply := unique("hello from Matrix ")
	if _, err := alice.SendText(ctx, room, reply); err != nil {
		t.Fatal(err)
	}
	got, err := lp.WaitMessage(ctx, func(m linphone.Message) bool { return m.Text == reply })
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(got.From, aliceURI) {
		t.Errorf("linphonec shows the reply from %s, want %s", got.From, aliceURI)
	}
	for _, m := range sipMessages(lp.LiblinphoneLog(), "MESSAGE sip:pres1@") {
		if strings.Contains(m, reply) {
			t.Logf("the bridge sent liblinphone the reply as %q", headerOf(m, "Content-Type"))
		}
	}

	// (d) The Matrix user's typing reaches liblinphone as isComposing, answered 200 and
	// parsed without error.
	if _, err := alice.UserTyping(ctx, room, true, 30*time.Second); err != nil {
		t.Fatal(err)
	}
	if onHS.Kind == homeserver.Dendrite { // Dendrite pushes no ephemeral events
		matrixtest.PushEphemeral(t, onHS.ASPort, onHS.Reg.ServerToken,
			map[string]any{"type": "m.typing", "room_id": room, "content": map[string]any{"user_ids": []id.UserID{alice.UserID}}})
	}
	log, err := lp.WaitLog(ctx, "an isComposing MESSAGE", func(log string) bool {
		for _, m := range sipMessages(log, "MESSAGE sip:pres1@") {
			if strings.Contains(m, "im-iscomposing+xml") {
				return true
			}
		}
		return false
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range sipMessages(log, "MESSAGE sip:pres1@") {
		if strings.Contains(m, "im-iscomposing+xml") {
			t.Logf("the bridge sent liblinphone:\n%s", m)
			break
		}
	}
	if bad := parseErrors.FindAllString(log, -1); len(bad) > 0 {
		t.Errorf("liblinphone logged parse errors: %q", bad)
	}
	if ok := strings.Count(log, "[CPIM] Sender authentication successful"); ok < 2 {
		t.Errorf("liblinphone authenticated the sender of %d CPIM messages of the bridge, want 2 (IMDN and reply)", ok)
	}
	t.Logf("liblinphone's states of its message: %v", linphone.MessageStates(log, aliceURI))
	for _, m := range sipMessages(log, "MESSAGE sip:pres1@") {
		if strings.Contains(m, "imdn+xml") {
			t.Logf("the bridge's IMDN as liblinphone got it:\n%s", m)
			break
		}
	}
	// liblinphone answers what it cannot take with 4xx/5xx (e.g. 415 for a body it does not
	// understand); the answers to the bridge's requests are those From the Matrix user.
	for _, m := range sipMessages(log, "SIP/2.0 ") {
		if code := strings.Fields(m)[1]; code[0] >= '4' && strings.Contains(headerOf(m, "From"), aliceURI) {
			t.Errorf("liblinphone refused a MESSAGE:\n%s", m)
		}
	}
}

// parseErrors are the lines liblinphone 5.1 logs when it cannot use a CPIM, IMDN or
// isComposing body it got (cpim-parser.cpp, cpim-chat-message-modifier.cpp, imdn.cpp,
// is-composing.cpp).
var parseErrors = regexp.MustCompile(`(?m)^.*liblinphone-(?:warning|error)-.*(?:\[CPIM\]|Unable to parse message|Unable to cast belr|Bad headers lists|` +
	`Unknown Disposition-Notification|parsing exception|Received IMDN for unknown message).*$`)

// sipMessages returns the SIP messages in liblinphone's log whose start line begins with
// start, each up to the blank line that ends its headers plus the body's first lines.
func sipMessages(log, start string) []string {
	var out []string
	for {
		i := strings.Index(log, "\n"+start)
		if i < 0 {
			return out
		}
		log = log[i+1:]
		end := len(log)
		// belle-sip logs a message as one block; the next log line starts with a date.
		if j := regexp.MustCompile(`\n\d{4}-\d\d-\d\d \d\d:`).FindStringIndex(log); j != nil {
			end = j[0]
		}
		out = append(out, log[:end])
		log = log[end:]
	}
}

// headerOf returns the value of the named header in a logged SIP message.
func headerOf(msg, name string) string {
	for _, line := range strings.Split(msg, "\n") {
		line = strings.TrimRight(line, "\r")
		if line == "" {
			break
		}
		if k, v, ok := strings.Cut(line, ":"); ok && strings.EqualFold(strings.TrimSpace(k), name) {
			return strings.TrimSpace(v)
		}
	}
	return ""
}
