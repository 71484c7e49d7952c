package linphone

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/switchboard-matrix/switchboard/internal/testpeer/peerproc"
)

// registeredMark is what liblinphone 5.1 logs when the account's REGISTER succeeded.
const registeredMark = "to [LinphoneRegistrationOk]"

// SendMessage sends text to the SIP URI to with linphonec's chat command. It returns once
// the command is written: the message's fate is in liblinphone's log (see MessageStates).
// text must be one line.
func (u *UA) SendMessage(ctx context.Context, to, text string) error {
	if !strings.HasPrefix(to, "sip:") || strings.ContainsAny(to, " \t\r\n") {
		return fmt.Errorf("linphone: %q is not a sip: URI", to)
	}
	if strings.ContainsAny(text, "\r\n") || strings.TrimSpace(text) == "" {
		return fmt.Errorf("linphone: a chat message must be one line of text")
	}
	return u.command(ctx, "chat "+to+" "+text)
}

// command writes one line to linphonec's stdin.
func (u *UA) command(ctx context.Context, line string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	u.cmdMu.Lock()
	defer u.cmdMu.Unlock()
	if u.stdin == nil {
		return fmt.Errorf("linphone: stopped")
	}
	if _, err := io.WriteString(u.stdin, line+"\n"); err != nil {
		return fmt.Errorf("linphone: failed to write a command: %w", err)
	}
	return nil
}

// Messages returns the messages linphonec reported as received so far.
func (u *UA) Messages() []Message {
	msgs, _ := u.out.snapshot()
	return msgs
}

// WaitMessage waits for a received message that match accepts (also among those already
// received).
func (u *UA) WaitMessage(ctx context.Context, match func(Message) bool) (Message, error) {
	for {
		msgs, changed := u.out.snapshot()
		for _, m := range msgs {
			if match(m) {
				return m, nil
			}
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return Message{}, fmt.Errorf("linphone: waiting for a message: %w", ctx.Err())
		}
	}
}

// WaitRegistered waits until liblinphone logs the account as registered.
func (u *UA) WaitRegistered(ctx context.Context) error {
	_, err := u.WaitLog(ctx, "registration", func(log string) bool { return strings.Contains(log, registeredMark) })
	return err
}

// LiblinphoneLog returns liblinphone's log so far (it logs every SIP message in full).
func (u *UA) LiblinphoneLog() string {
	b, _ := os.ReadFile(filepath.Join(u.Dir, logFile))
	return string(b)
}

// LiblinphoneLogTail returns the last n lines of liblinphone's log.
func (u *UA) LiblinphoneLogTail(n int) string {
	return peerproc.Tail([]byte(u.LiblinphoneLog()), n)
}

// WaitLog waits until match accepts liblinphone's log, which it gets whole, and returns
// that log. what names the awaited thing in the error.
func (u *UA) WaitLog(ctx context.Context, what string, match func(log string) bool) (string, error) {
	for {
		log := u.LiblinphoneLog()
		if match(log) {
			return log, nil
		}
		select {
		case <-ctx.Done():
			return "", fmt.Errorf("linphone: waiting for %s in liblinphone's log: %w", what, ctx.Err())
		case <-time.After(pollInterval):
		}
	}
}

// MessageStates returns the states liblinphone logged for the chat messages, sent and
// received, of its chat room with peer (a SIP URI), in order, e.g. ["InProgress",
// "Delivered", "DeliveredToUser"] for one sent message. liblinphone 5.1 logs "Chat message <ptr> of chat room
// ConferenceId(peer=..., local=...) : moving from <old> to <new>".
func MessageStates(log, peer string) []string {
	var states []string
	for _, line := range strings.Split(log, "\n") {
		if !strings.Contains(line, "Chat message ") || !strings.Contains(line, peer) {
			continue
		}
		i := strings.Index(line, " : moving from ")
		if i < 0 {
			continue
		}
		rest := line[i+len(" : moving from "):]
		if j := strings.Index(rest, " to "); j >= 0 {
			states = append(states, strings.TrimSpace(rest[j+len(" to "):]))
		}
	}
	return states
}

// outParser collects "Message received from <address>: <text>" lines of linphonec's
// output. It is an io.Writer, safe for concurrent use.
type outParser struct {
	mu      sync.Mutex
	partial []byte        // guarded by mu; an unfinished line
	msgs    []Message     // guarded by mu
	changed chan struct{} // guarded by mu; closed and replaced on every message
}

func newOutParser() *outParser { return &outParser{changed: make(chan struct{})} }

const receivedPrefix = "Message received from "

// Write implements io.Writer.
func (p *outParser) Write(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.partial = append(p.partial, b...)
	var found bool
	for {
		i := strings.IndexByte(string(p.partial), '\n')
		if i < 0 {
			break
		}
		line := string(p.partial[:i])
		p.partial = p.partial[i+1:]
		if m, ok := parseReceived(line); ok {
			p.msgs = append(p.msgs, m)
			found = true
		}
	}
	if found {
		close(p.changed)
		p.changed = make(chan struct{})
	}
	return len(b), nil
}

// parseReceived reads one output line; the prompt may precede the report.
func parseReceived(line string) (Message, bool) {
	line = strings.TrimRight(line, "\r")
	i := strings.Index(line, receivedPrefix)
	if i < 0 {
		return Message{}, false
	}
	rest := line[i+len(receivedPrefix):]
	// The address ends at the first ": " after its closing '>' if it has one.
	start := 0
	if j := strings.Index(rest, ">: "); j >= 0 && strings.Contains(rest[:j+1], "<") {
		start = j + 1
	} else if j := strings.Index(rest, ": "); j >= 0 {
		start = j
	} else {
		return Message{}, false
	}
	return Message{From: rest[:start], Text: rest[start+2:]}, true
}

func (p *outParser) snapshot() ([]Message, <-chan struct{}) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]Message(nil), p.msgs...), p.changed
}
