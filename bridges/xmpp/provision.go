package xmpp

import (
	"context"
	"errors"
	"net/http"

	"github.com/switchboard-matrix/switchboard/appservice"
)

// The provisioning API's routes (docs/provisioning.openapi.yaml): the MUC portals, as the
// chat commands list, link and unlink them, with the same checks and effects.

var _ appservice.Provisioner = (*Bridge)(nil)

// ProvisioningRoutes implements appservice.Provisioner.
func (b *Bridge) ProvisioningRoutes() []appservice.ProvisioningRoute {
	return []appservice.ProvisioningRoute{
		{Method: http.MethodGet, Path: "/portals", Handle: b.provisionList},
		{Method: http.MethodPost, Path: "/portals", Handle: b.provisionLink},
		{Method: http.MethodDelete, Path: "/portals/{jid}", Admin: true, Handle: b.provisionUnlink},
	}
}

// provisionList answers GET /portals: {portals: [{jid, room_id}]}, sorted by JID.
func (b *Bridge) provisionList(ctx context.Context, _ *appservice.ProvisioningRequest) (any, error) {
	links, err := b.mucLinks(ctx)
	if err != nil {
		return nil, err
	}
	return struct {
		Portals []mucLink `json:"portals"`
	}{links}, nil
}

// provisionLink answers POST /portals {jid, room}: the new link.
func (b *Bridge) provisionLink(ctx context.Context, req *appservice.ProvisioningRequest) (any, error) {
	var body struct {
		JID  *string `json:"jid"`
		Room *string `json:"room"`
	}
	if err := req.Decode(&body); err != nil {
		return nil, err
	}
	switch {
	case body.JID == nil:
		return nil, appservice.ProvisioningBadRequest("jid is required: the group chat's address (room@conference.example.org)")
	case body.Room == nil:
		return nil, appservice.ProvisioningBadRequest("room is required: the Matrix room's ID (!…) or alias (#…)")
	}
	room, roomID, err := b.linkPortal(ctx, linkRequest{JID: *body.JID, Room: *body.Room, User: req.User, Admin: req.Admin})
	if err != nil {
		return nil, provisionError(err)
	}
	return mucLink{JID: room.String(), RoomID: roomID}, nil
}

// provisionUnlink answers DELETE /portals/{jid} (admins): the removed link.
func (b *Bridge) provisionUnlink(ctx context.Context, req *appservice.ProvisioningRequest) (any, error) {
	room, roomID, err := b.unlinkPortal(ctx, req.PathValue("jid"), "")
	var r *linkRefusal
	if errors.As(err, &r) && r.status == http.StatusNotFound {
		r.msg += " GET /modules/xmpp/portals lists the links."
	}
	if err != nil {
		return nil, provisionError(err)
	}
	return mucLink{JID: room.String(), RoomID: roomID}, nil
}

// provisionError turns a *linkRefusal into the API's answer; other errors stay (a 500).
func provisionError(err error) error {
	var r *linkRefusal
	if !errors.As(err, &r) {
		return err
	}
	msg := r.msg
	if r.field != "" {
		msg = r.field + ": " + msg
	}
	switch r.status {
	case http.StatusBadRequest:
		return appservice.ProvisioningBadRequest("%s", msg)
	case http.StatusForbidden:
		return appservice.ProvisioningForbidden("%s", msg)
	case http.StatusNotFound:
		return appservice.ProvisioningNotFound("%s", msg)
	case http.StatusConflict:
		return appservice.ProvisioningConflict("%s", msg)
	}
	return &appservice.ProvisioningError{Status: r.status, Code: "M_UNKNOWN", Message: msg}
}
