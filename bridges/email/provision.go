package email

import (
	"context"
	"errors"
	"net/http"
	"time"

	"github.com/switchboard-matrix/switchboard/appservice"
)

// The provisioning API's email routes (docs/provisioning.openapi.yaml): the mailboxes and
// their state, and pause and resume, which do what "email pause" and "email resume" do.
// The core has checked the caller, the module's permission list and the admin-only routes
// before a handler runs. Credentials are never part of an answer; the reader's errors go
// to admins only.

var _ appservice.Provisioner = (*Bridge)(nil)

// ProvisioningRoutes implements appservice.Provisioner.
func (b *Bridge) ProvisioningRoutes() []appservice.ProvisioningRoute {
	return []appservice.ProvisioningRoute{
		{Method: http.MethodGet, Path: "/mailboxes", Handle: b.provisionList},
		{Method: http.MethodGet, Path: "/mailboxes/{name}", Handle: b.provisionMailbox},
		{Method: http.MethodPost, Path: "/mailboxes/{name}/pause", Admin: true, Handle: b.provisionPause},
		{Method: http.MethodPost, Path: "/mailboxes/{name}/resume", Admin: true, Handle: b.provisionResume},
	}
}

// mailboxJSON is the OpenAPI document's Mailbox.
type mailboxJSON struct {
	Name      string     `json:"name"`
	Address   string     `json:"address"`
	State     string     `json:"state"` // connecting, connected, paused or error
	HasError  bool       `json:"has_error"`
	LastError string     `json:"last_error,omitempty"` // admins only
	LastCheck *time.Time `json:"last_check"`           // null before the first check
	Pending   int        `json:"pending"`
	// Only in the answer about one mailbox:
	Folder      string `json:"folder,omitempty"`
	IMAPAddress string `json:"imap_address,omitempty"`
	SMTPAddress string `json:"smtp_address,omitempty"`
}

// mailboxChangeJSON is the OpenAPI document's MailboxChange.
type mailboxChangeJSON struct {
	Name    string `json:"name"`
	State   string `json:"state"`
	Changed bool   `json:"changed"`
}

// mailboxAnswer is cfg's current state for a caller who is admin or not; detail adds the
// folder and the servers.
func (b *Bridge) mailboxAnswer(cfg *MailboxConfig, admin, detail bool) mailboxJSON {
	v := b.view(cfg)
	out := mailboxJSON{Name: v.Name, Address: v.Address, State: v.State, HasError: v.State == "error", Pending: v.Pending}
	if admin {
		out.LastError = v.LastError
	}
	if !v.LastCheck.IsZero() {
		at := v.LastCheck.UTC()
		out.LastCheck = &at
	}
	if detail {
		out.Folder, out.IMAPAddress, out.SMTPAddress = cfg.Folder, cfg.IMAP.Address, cfg.SMTP.Address
	}
	return out
}

func (b *Bridge) provisionList(_ context.Context, req *appservice.ProvisioningRequest) (any, error) {
	boxes := make([]mailboxJSON, 0, len(b.cfg.Mailboxes))
	for i := range b.cfg.Mailboxes {
		boxes = append(boxes, b.mailboxAnswer(&b.cfg.Mailboxes[i], req.Admin, false))
	}
	return struct {
		Mailboxes []mailboxJSON `json:"mailboxes"`
	}{boxes}, nil
}

// provisionedMailbox is the mailbox named by the request's path, or a 404 naming it.
func (b *Bridge) provisionedMailbox(req *appservice.ProvisioningRequest) (*MailboxConfig, error) {
	name := req.PathValue("name")
	if cfg := b.mailboxConfig(name); cfg != nil {
		return cfg, nil
	}
	return nil, noMailbox(name)
}

func noMailbox(name string) *appservice.ProvisioningError {
	return appservice.ProvisioningNotFound("there is no mailbox %q; GET /modules/email/mailboxes lists them", name)
}

func (b *Bridge) provisionMailbox(_ context.Context, req *appservice.ProvisioningRequest) (any, error) {
	cfg, err := b.provisionedMailbox(req)
	if err != nil {
		return nil, err
	}
	return b.mailboxAnswer(cfg, req.Admin, true), nil
}

func (b *Bridge) provisionPause(ctx context.Context, req *appservice.ProvisioningRequest) (any, error) {
	return b.provisionSetPaused(ctx, req, true)
}

func (b *Bridge) provisionResume(ctx context.Context, req *appservice.ProvisioningRequest) (any, error) {
	return b.provisionSetPaused(ctx, req, false)
}

// provisionSetPaused pauses or resumes the mailbox as the chat command does (setPaused).
func (b *Bridge) provisionSetPaused(ctx context.Context, req *appservice.ProvisioningRequest, paused bool) (any, error) {
	cfg, err := b.provisionedMailbox(req)
	if err != nil {
		return nil, err
	}
	changed, err := b.setPaused(ctx, cfg.Name, paused)
	switch {
	case errors.Is(err, ErrNoMailbox):
		return nil, noMailbox(cfg.Name)
	case err != nil:
		return nil, err
	}
	return mailboxChangeJSON{Name: cfg.Name, State: b.view(cfg).State, Changed: changed}, nil
}
