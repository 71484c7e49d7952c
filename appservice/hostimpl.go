package appservice

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"maunium.net/go/mautrix/id"

	"github.com/switchboard-matrix/switchboard/internal/store"
)

// host is the Host one module sees: its ghosts, its outbox rows, its slice of the store.
type host struct {
	core   *Core
	module string // immutable
}

var (
	_ Host             = (*host)(nil)
	_ PermissionHolder = (*host)(nil)
)

// PermissionHolder is implemented by the Host: whether a Matrix user may use the module
// (its permission list), for modules that admit traffic from their network only to
// permitted users.
type PermissionHolder interface {
	Permits(user id.UserID) bool
}

// Permits implements PermissionHolder.
func (h *host) Permits(user id.UserID) bool { return h.core.permits(h.module, user) }

func (h *host) Domain() string       { return h.core.opts.Domain }
func (h *host) BotUserID() id.UserID { return h.core.as.BotMXID() }
func (h *host) Bot() *Intent {
	return &Intent{api: h.core.as.BotIntent(), core: h.core, module: h.module}
}
func (h *host) Store() ModuleStore { return &moduleStore{core: h.core, module: h.module} }
func (h *host) Report(ctx context.Context) Report {
	return h.core.Report(ctx)
}

func (h *host) ReportFailure(ctx context.Context, roomID id.RoomID, eventID id.EventID, reason string) error {
	return h.core.reportFailure(ctx, h.module, h.core.failureSender(ctx, h.core.modules[h.module], roomID), roomID, eventID, reason)
}

func (h *host) Ghost(localpart string) (*Intent, error) {
	userID := id.NewUserID(localpart, h.core.opts.Domain)
	if m := h.core.router.moduleForUser(userID); m == nil || m.ID() != h.module {
		return nil, ErrNotInNamespace
	}
	return &Intent{api: h.core.as.Intent(userID), core: h.core, module: h.module}, nil
}

func (h *host) ScanFile(ctx context.Context, dir Direction, name string, data []byte) error {
	return h.core.scan.scanFile(ctx, h.module, dir, name, data)
}

func (h *host) checkSender(sender id.UserID) error {
	if sender == h.core.as.BotMXID() {
		return nil
	}
	if m := h.core.router.moduleForUser(sender); m == nil || m.ID() != h.module {
		return ErrNotInNamespace
	}
	return nil
}

func (h *host) Send(ctx context.Context, msg Message) (id.EventID, error) {
	if err := h.checkSender(msg.Sender); err != nil {
		return "", err
	}
	return h.core.sendAndWait(ctx, h.module, msg)
}

func (h *host) Enqueue(ctx context.Context, msg Message) error {
	if err := h.checkSender(msg.Sender); err != nil {
		return err
	}
	return h.core.enqueue(ctx, h.module, msg)
}

// moduleStore scopes the shared store to one module.
type moduleStore struct {
	core   *Core
	module string
}

// ErrNotFound is returned by ModuleStore lookups that find nothing.
var ErrNotFound = store.ErrNotFound

func (s *moduleStore) PutPortal(ctx context.Context, remoteKey string, roomID id.RoomID) error {
	if err := s.core.store.PutPortal(ctx, s.module, remoteKey, roomID.String()); err != nil {
		return err
	}
	s.core.router.portalGen.Add(1) // before the delete: a lookup racing this one is not cached
	s.core.router.forget(roomID)
	return nil
}

func (s *moduleStore) ClaimPortal(ctx context.Context, remoteKey string, roomID id.RoomID) error {
	if err := s.core.store.ClaimPortal(ctx, s.module, remoteKey, roomID.String()); err != nil {
		return err
	}
	s.core.router.portalGen.Add(1)
	s.core.router.forget(roomID)
	return nil
}

func (s *moduleStore) DeletePortal(ctx context.Context, remoteKey string) error {
	roomID, err := s.core.store.DeletePortal(ctx, s.module, remoteKey)
	if errors.Is(err, store.ErrNotFound) {
		return nil
	} else if err != nil {
		return err
	}
	s.core.router.portalGen.Add(1) // before the delete: a lookup racing this one is not cached
	s.core.router.forget(id.RoomID(roomID))
	return nil
}

func (s *moduleStore) PortalByKey(ctx context.Context, remoteKey string) (id.RoomID, error) {
	r, err := s.core.store.PortalByKey(ctx, s.module, remoteKey)
	return id.RoomID(r), err
}

func (s *moduleStore) PortalByRoom(ctx context.Context, roomID id.RoomID) (string, error) {
	mid, key, err := s.core.store.PortalByRoom(ctx, roomID.String())
	if err != nil {
		return "", err
	}
	if mid != s.module {
		return "", ErrNotFound
	}
	return key, nil
}

func (s *moduleStore) PutMessage(ctx context.Context, remoteID string, roomID id.RoomID, eventID id.EventID) error {
	return s.core.store.PutMessage(ctx, s.module, remoteID, roomID.String(), eventID.String())
}

func (s *moduleStore) MessageByRemote(ctx context.Context, remoteID string) (id.RoomID, id.EventID, error) {
	r, e, err := s.core.store.MessageByRemote(ctx, s.module, remoteID)
	return id.RoomID(r), id.EventID(e), err
}

// MessageByEvent looks eventID up in the message map. A miss may be a message of the module
// whose send is still in doubt after a restart: then the core settles it from the event
// itself (see settleMiss) and looks again. When that check fails, the error is still
// ErrNotFound (callers retry a miss) and names the failure.
func (s *moduleStore) MessageByEvent(ctx context.Context, eventID id.EventID) (string, error) {
	remoteID, err := s.core.store.MessageByEvent(ctx, s.module, eventID.String())
	if !errors.Is(err, ErrNotFound) {
		return remoteID, err
	}
	settled, serr := s.core.settleMiss(ctx, s.module, eventID)
	if serr != nil {
		return "", fmt.Errorf("%w (and checking the messages in doubt failed: %w)", err, serr)
	}
	if !settled {
		return "", err
	}
	return s.core.store.MessageByEvent(ctx, s.module, eventID.String())
}

func (s *moduleStore) GetKV(ctx context.Context, key string) (string, error) {
	return s.core.store.GetKV(ctx, "module/"+s.module+"/"+key)
}

func (s *moduleStore) PutKV(ctx context.Context, key, value string) error {
	return s.core.store.PutKV(ctx, "module/"+s.module+"/"+key, value)
}

func (s *moduleStore) ListKV(ctx context.Context, prefix string, limit int) ([]KV, error) {
	base := "module/" + s.module + "/"
	rows, err := s.core.store.ListKV(ctx, base+prefix, limit)
	if err != nil {
		return nil, err
	}
	out := make([]KV, len(rows))
	for i, r := range rows {
		out[i] = KV{Key: strings.TrimPrefix(r.Key, base), Value: r.Value}
	}
	return out, nil
}

func (s *moduleStore) DeleteKV(ctx context.Context, key string) error {
	return s.core.store.DeleteKV(ctx, "module/"+s.module+"/"+key)
}

// Report is the state of the whole process, for the management bot and /health.
type Report struct {
	Version     string
	InboxDepth  int // journaled events not yet handled
	OutboxDepth int // messages waiting to be sent to Matrix
	Modules     []ModuleReport
	// DatabaseError is empty when the database answers.
	DatabaseError string
	// Encryption is "on", "off" or "unsupported" (enabled, but the homeserver cannot).
	Encryption string
	// Scanner is the virus scanner's state: "off", "ok (version)" or "unreachable", with
	// the files it holds; ScannerError the last failure to reach it (it may name hosts).
	Scanner, ScannerError string
}

// ModuleReport is one module's line of a Report.
type ModuleReport struct {
	ID string
	// Status is the module's own report; Reported is false when the module does not
	// implement StatusReporter.
	Status   ModuleStatus
	Reported bool
	// Outbox counts the module's messages waiting to be sent to Matrix.
	Outbox int
	// LastHandlerError is the last error of the module's event handler, if any.
	LastHandlerError string
}

// Report collects the state of the core and every module.
func (c *Core) Report(ctx context.Context) Report {
	r := Report{Version: c.opts.Version, Encryption: "off"}
	r.Scanner, r.ScannerError = c.scan.state()
	switch {
	case c.EncryptionActive():
		r.Encryption = "on"
	case c.encryptionOff.Load():
		r.Encryption = "unsupported"
	}
	var err1, err2 error
	r.InboxDepth, err1 = c.store.InboxDepth(ctx)
	r.OutboxDepth, err2 = c.store.OutboxDepth(ctx)
	if err := errors.Join(err1, err2); err != nil {
		r.DatabaseError = err.Error()
	}
	outbox := c.outbox.depthByModule()
	c.disp.mu.Lock()
	lastErr := make(map[string]string, len(c.disp.lastError))
	for k, v := range c.disp.lastError {
		lastErr[k] = v
	}
	c.disp.mu.Unlock()
	for _, m := range c.order {
		mr := ModuleReport{ID: m.ID(), Outbox: outbox[m.ID()], LastHandlerError: lastErr[m.ID()]}
		if sr, ok := m.(StatusReporter); ok {
			mr.Status, mr.Reported = sr.Status(ctx), true
		}
		r.Modules = append(r.Modules, mr)
	}
	return r
}

// ErrUnknownCommand is returned by Host.RunCommand when no module by that ID adds commands.
var ErrUnknownCommand = errors.New("appservice: unknown command")

func (h *host) RunCommand(ctx context.Context, module string, cmd Command) (string, error) {
	m, ok := h.core.modules[module].(CommandHandler)
	if !ok {
		return "", ErrUnknownCommand
	}
	if !h.core.permits(module, cmd.Sender) {
		return "", fmt.Errorf("%w: %s may not use %s", ErrNotPermitted, cmd.Sender, module)
	}
	return m.HandleCommand(ctx, cmd)
}
