package baresip

import (
	"context"
	"fmt"
	"regexp"
	"strings"
	"time"
)

// pollInterval paces the checks of state baresip reports no event for (presence of
// contacts, registration before the control connection was up).
const pollInterval = 100 * time.Millisecond

// Presence states of a contact as baresip 1.0.0 knows them.
const (
	PresenceUnknown = "unknown"
	PresenceOnline  = "online"
	PresenceOffline = "offline"
	PresenceBusy    = "busy"
)

// ansi matches the colour escapes in baresip's output.
var ansi = regexp.MustCompile("\x1b\\[[0-9;]*m")

// contactLine matches a line of the "contacts" command: current marker, presence state
// (when the presence module is loaded), display name and <uri>.
var contactLine = regexp.MustCompile(`^([> ]) +(?:(Unknown|Online|Offline|Busy) +)?.*<([^>]+)>$`)

// contactState is a contact as the "contacts" command lists it.
type contactState struct {
	uri      string
	current  bool
	presence string // one of the Presence constants
}

// parseContacts reads the output of the "contacts" command.
func parseContacts(out string) []contactState {
	var cs []contactState
	for _, line := range strings.Split(ansi.ReplaceAllString(out, ""), "\n") {
		m := contactLine.FindStringSubmatch(strings.TrimRight(line, " \r"))
		if m == nil {
			continue
		}
		st := strings.ToLower(m[2])
		if st == "" {
			st = PresenceUnknown
		}
		cs = append(cs, contactState{uri: m[3], current: m[1] == ">", presence: st})
	}
	return cs
}

// contactsNow lists the contacts with their presence.
func (u *UA) contactsNow(ctx context.Context) ([]contactState, error) {
	out, err := u.ctrl.command(ctx, "contacts", "")
	if err != nil {
		return nil, err
	}
	return parseContacts(out), nil
}

// selectContact makes uri baresip's current contact. The caller holds cmdMu.
func (u *UA) selectContact(ctx context.Context, uri string) error {
	for range len(u.contacts) + 2 {
		cs, err := u.contactsNow(ctx)
		if err != nil {
			return err
		}
		cur, want := -1, -1
		for i, c := range cs {
			if c.current {
				cur = i
			}
			if c.uri == uri {
				want = i
			}
		}
		switch {
		case want < 0:
			return fmt.Errorf("%w: %s (baresip lists %d contacts)", ErrNotContact, uri, len(cs))
		case cur == want:
			return nil
		case cur < 0 || cur < want:
			_, err = u.ctrl.command(ctx, "contact_next", "")
		default:
			_, err = u.ctrl.command(ctx, "contact_prev", "")
		}
		if err != nil {
			return err
		}
	}
	return fmt.Errorf("baresip: could not select contact %s", uri)
}

func (u *UA) isContact(uri string) bool {
	for _, c := range u.contacts {
		if c.uri == uri {
			return true
		}
	}
	return false
}

// SendMessage sends text as a text/plain MESSAGE to toURI, which must be one of
// Options.Contacts or Options.Peers (ErrNotContact otherwise). It returns once baresip has
// sent the request: baresip 1.0.0 reports no answer (it logs answers >= 300 only), so the
// test checks the receiving side. text must not contain a newline (ctrl_tcp passes one
// line of parameters).
func (u *UA) SendMessage(ctx context.Context, toURI, text string) error {
	if !u.isContact(toURI) {
		return fmt.Errorf("%w: %s", ErrNotContact, toURI)
	}
	if strings.ContainsAny(text, "\r\n") || text == "" {
		return fmt.Errorf("baresip: a message must be one non-empty line")
	}
	u.cmdMu.Lock()
	defer u.cmdMu.Unlock()
	if err := u.selectContact(ctx, toURI); err != nil {
		return err
	}
	out, err := u.ctrl.command(ctx, "message", text)
	if err != nil {
		return fmt.Errorf("baresip: failed to send a MESSAGE to %s: %w", toURI, err)
	}
	if strings.Contains(out, "failed") || strings.Contains(out, "not set") {
		return fmt.Errorf("baresip: failed to send a MESSAGE to %s: %s", toURI, strings.TrimSpace(out))
	}
	return nil
}

// Messages returns the MESSAGEs received so far, oldest first.
func (u *UA) Messages() []Message {
	u.mu.Lock()
	defer u.mu.Unlock()
	return append([]Message(nil), u.messages...)
}

// WaitMessage waits for a received MESSAGE that match accepts (also among those already
// received) and returns it.
func (u *UA) WaitMessage(ctx context.Context, match func(Message) bool) (Message, error) {
	for {
		u.mu.Lock()
		msgs, changed := u.messages, u.changed
		u.mu.Unlock()
		for _, m := range msgs {
			if match(m) {
				return m, nil
			}
		}
		select {
		case <-changed:
		case <-u.consDone:
			return Message{}, fmt.Errorf("baresip: console connection ended while waiting for a MESSAGE")
		case <-ctx.Done():
			return Message{}, fmt.Errorf("baresip: waiting for a MESSAGE (%d received): %w", len(msgs), ctx.Err())
		}
	}
}

// SetPresence sets the account's own presence, PresenceOnline or PresenceOffline (the
// only two baresip 1.0.0 has). With Options.PublishInterval set, baresip sends a PUBLISH
// (application/pidf+xml, basic open/closed); subscribers get a NOTIFY.
func (u *UA) SetPresence(ctx context.Context, state string) error {
	var cmd string
	switch state {
	case PresenceOnline, "open":
		cmd = "presence_online"
	case PresenceOffline, "closed":
		cmd = "presence_offline"
	default:
		return fmt.Errorf("baresip: presence %q not supported (online, offline)", state)
	}
	_, err := u.ctrl.command(ctx, cmd, "")
	return err
}

// Presence returns what baresip knows of contactURI's presence (a Presence constant),
// from NOTIFYs of its subscription.
func (u *UA) Presence(ctx context.Context, contactURI string) (string, error) {
	cs, err := u.contactsNow(ctx)
	if err != nil {
		return "", err
	}
	for _, c := range cs {
		if c.uri == contactURI {
			return c.presence, nil
		}
	}
	return "", fmt.Errorf("%w: %s", ErrNotContact, contactURI)
}

// WaitPresence waits until baresip shows contactURI in state (a Presence constant). baresip
// sends no event for this, so the contacts list is polled.
func (u *UA) WaitPresence(ctx context.Context, contactURI, state string) error {
	last := ""
	for {
		st, err := u.Presence(ctx, contactURI)
		if err != nil {
			return err
		}
		if st == state {
			return nil
		}
		last = st
		select {
		case <-ctx.Done():
			return fmt.Errorf("baresip: waiting for %s to be %s (is %s): %w", contactURI, state, last, ctx.Err())
		case <-time.After(pollInterval):
		}
	}
}

// Registered reports whether the account's registration is current (its last REGISTER got
// a 2xx), from the "reginfo" command.
func (u *UA) Registered(ctx context.Context) (bool, error) {
	out, err := u.ctrl.command(ctx, "reginfo", "")
	if err != nil {
		return false, err
	}
	return registeredIn(out, u.AOR), nil
}

// registeredIn reads the "reginfo" output: "> sip:alice@sip.test  OK  sip:… Expires 3600s".
func registeredIn(out, aor string) bool {
	for _, line := range strings.Split(ansi.ReplaceAllString(out, ""), "\n") {
		f := strings.Fields(strings.TrimPrefix(line, ">"))
		if len(f) >= 2 && f[0] == aor && f[1] == "OK" {
			return true
		}
	}
	return false
}

// WaitRegistered waits until the account is registered; a REGISTER_FAIL event ends the
// wait with an error.
func (u *UA) WaitRegistered(ctx context.Context) error {
	for {
		evs, changed := u.ctrl.snapshot()
		ok, err := u.Registered(ctx)
		if err != nil {
			return err
		}
		if ok {
			return nil
		}
		for i := len(evs) - 1; i >= 0; i-- {
			if evs[i].Class != "register" {
				continue
			}
			if evs[i].Type == "REGISTER_FAIL" {
				return fmt.Errorf("baresip: registration of %s failed: %s", u.AOR, evs[i].Param)
			}
			break
		}
		select {
		case <-changed:
		case <-time.After(pollInterval): // registered before ctrl_tcp was connected
		case <-ctx.Done():
			return fmt.Errorf("baresip: waiting for the registration of %s: %w", u.AOR, ctx.Err())
		}
	}
}
