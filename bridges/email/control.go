package email

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/switchboard-matrix/switchboard/appservice"
)

// A mailbox's connection states (Bridge.status). A reader that failed is
// stateReconnecting followed by the error.
const (
	stateConnected    = "connected"
	statePaused       = "paused"
	stateReconnecting = "reconnecting: "
)

// ErrNoMailbox is returned for a mailbox name that is not configured.
var ErrNoMailbox = errors.New("email: no such mailbox")

// pausedKey marks a mailbox an admin paused; it stays paused across restarts.
func pausedKey(name string) string { return "paused:" + name }

// mailboxRun is a mailbox's reader as the bridge controls it, and what the reader last
// saw. Every field is guarded by Bridge.mu.
type mailboxRun struct {
	cancel    context.CancelFunc // ends the reader; nil when it is not running
	done      chan struct{}      // closed when the reader has ended
	lastCheck time.Time          // the last complete look into the folder; zero before
	pending   int                // mails found at the last look that are not yet in Matrix
}

// startMailbox starts cfg's reader. b.mu is held.
func (b *Bridge) startMailbox(cfg *MailboxConfig) {
	if b.stopped {
		return
	}
	ctx, cancel := context.WithCancel(b.loops.Context())
	r := b.runs[cfg.Name]
	r.cancel, r.done = cancel, make(chan struct{})
	done := r.done
	mb := &mailbox{b: b, cfg: *cfg}
	read := b.reader
	if read == nil {
		read = func(ctx context.Context, mb *mailbox) { mb.run(ctx) }
	}
	b.loops.Go(func(context.Context) {
		defer close(done)
		defer cancel()
		read(ctx, mb)
	})
}

func (b *Bridge) isPaused(ctx context.Context, name string) (bool, error) {
	_, err := b.host.Store().GetKV(ctx, pausedKey(name))
	switch {
	case errors.Is(err, appservice.ErrNotFound):
		return false, nil
	case err != nil:
		return false, fmt.Errorf("email: read whether %s is paused: %w", name, err)
	}
	return true, nil
}

// setPaused pauses (paused true) or resumes the mailbox name: what "email pause" and
// "email resume" and the provisioning API's pause and resume do. changed is false when it
// was so already; the error is ErrNoMailbox for a name that is not configured.
func (b *Bridge) setPaused(ctx context.Context, name string, paused bool) (changed bool, err error) {
	if paused {
		return b.pause(ctx, name)
	}
	return b.resume(ctx, name)
}

// pause stops the mailbox's reader and records that it is paused; changed is false when
// it was paused already.
func (b *Bridge) pause(ctx context.Context, name string) (changed bool, err error) {
	if b.mailboxConfig(name) == nil {
		return false, fmt.Errorf("%w: %s", ErrNoMailbox, name)
	}
	b.ctl.Lock()
	defer b.ctl.Unlock()
	if err := b.host.Store().PutKV(ctx, pausedKey(name), time.Now().UTC().Format(time.RFC3339)); err != nil {
		return false, fmt.Errorf("email: pause %s: %w", name, err)
	}
	b.mu.Lock()
	r := b.runs[name]
	cancel, done := r.cancel, r.done
	r.cancel, r.pending = nil, 0
	b.mu.Unlock()
	if cancel == nil {
		return false, nil
	}
	cancel()
	select {
	case <-done:
	case <-ctx.Done():
		return true, fmt.Errorf("email: pause %s: wait for the reader: %w", name, ctx.Err())
	}
	b.setStatus(name, statePaused)
	return true, nil
}

// resume starts the mailbox's reader again; changed is false when it was running.
func (b *Bridge) resume(ctx context.Context, name string) (changed bool, err error) {
	cfg := b.mailboxConfig(name)
	if cfg == nil {
		return false, fmt.Errorf("%w: %s", ErrNoMailbox, name)
	}
	b.ctl.Lock()
	defer b.ctl.Unlock()
	if err := b.host.Store().DeleteKV(ctx, pausedKey(name)); err != nil {
		return false, fmt.Errorf("email: resume %s: %w", name, err)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.runs[name].cancel != nil {
		return false, nil
	}
	if b.stopped {
		return false, fmt.Errorf("email: resume %s: the bridge is stopping", name)
	}
	b.status[name] = "connecting"
	b.startMailbox(cfg)
	return true, nil
}

func (b *Bridge) mailboxConfig(name string) *MailboxConfig {
	for i := range b.cfg.Mailboxes {
		if b.cfg.Mailboxes[i].Name == name {
			return &b.cfg.Mailboxes[i]
		}
	}
	return nil
}

// checked records a complete look into the folder.
func (b *Bridge) checked(name string, at time.Time) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if r := b.runs[name]; r != nil {
		r.lastCheck = at
	}
}

func (b *Bridge) setPending(name string, n int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if r := b.runs[name]; r != nil {
		r.pending = n
	}
}

func (b *Bridge) addPending(name string, n int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if r := b.runs[name]; r != nil {
		r.pending = max(0, r.pending+n)
	}
}

// mailboxView is what the commands show of a mailbox: no credentials.
type mailboxView struct {
	Name, Address, State string
	LastError            string // the reader's last error; shown to admins only
	LastCheck            time.Time
	Pending              int
}

// view is the mailbox's current state: connected, paused, error or connecting.
func (b *Bridge) view(cfg *MailboxConfig) mailboxView {
	b.mu.Lock()
	defer b.mu.Unlock()
	v := mailboxView{Name: cfg.Name, Address: cfg.Address, State: "connecting"}
	switch s := b.status[cfg.Name]; {
	case s == stateConnected || s == statePaused:
		v.State = s
	case strings.HasPrefix(s, stateReconnecting):
		v.State, v.LastError = "error", strings.TrimPrefix(s, stateReconnecting)
	}
	if r := b.runs[cfg.Name]; r != nil {
		v.LastCheck, v.Pending = r.lastCheck, r.pending
	}
	return v
}
