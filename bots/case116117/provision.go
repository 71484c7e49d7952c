package case116117

import (
	"context"
	"net/http"
	"strconv"
	"time"
	"unicode/utf8"

	"maunium.net/go/mautrix/id"

	"github.com/switchboard-matrix/switchboard/appservice"
)

// The provisioning API of the bot (docs/provisioning.openapi.yaml): the same lists as the
// management bot's "case116117 cases" and "case116117 links", read with the same functions
// (openCases, linkSummaries in manage.go). Case IDs, states and ages only, never titles or
// patient data; a link's error text only for admins.

var _ appservice.Provisioner = (*Bot)(nil)

// Bounds of the cases route's query parameters.
const (
	defaultCaseLimit = 100
	maxCaseLimit     = 1000
	maxCaseSearch    = 200
)

// ProvisioningRoutes implements appservice.Provisioner.
func (b *Bot) ProvisioningRoutes() []appservice.ProvisioningRoute {
	return []appservice.ProvisioningRoute{
		{Method: http.MethodGet, Path: "/cases", Handle: b.provisionCases},
		{Method: http.MethodGet, Path: "/links", Handle: b.provisionLinks},
	}
}

// provisionedCase is a case as the API shows it (schema Case).
type provisionedCase struct {
	CaseID     string    `json:"case_id"`
	Link       string    `json:"link"`
	State      string    `json:"state"`
	Role       string    `json:"role"`
	Peer       string    `json:"peer"`
	Created    time.Time `json:"created"`
	AgeSeconds int64     `json:"age_seconds"`
	RoomID     id.RoomID `json:"room_id,omitempty"`
}

// caseList is the answer of GET /cases.
type caseList struct {
	Cases []provisionedCase `json:"cases"`
	Total int               `json:"total"`
}

// provisionedLink is a link as the API shows it (schema CaseLink).
type provisionedLink struct {
	Name      string `json:"name"`
	OID       string `json:"oid"`
	State     string `json:"state"`
	HasError  bool   `json:"has_error"`
	LastError string `json:"last_error,omitempty"` // admins only
	OpenCases int    `json:"open_cases"`
	ToSend    int    `json:"to_send"`
	Received  int    `json:"received"`
}

// linkList is the answer of GET /links.
type linkList struct {
	Links []provisionedLink `json:"links"`
}

func (b *Bot) provisionCases(ctx context.Context, req *appservice.ProvisioningRequest) (any, error) {
	search, limit, perr := caseQuery(req)
	if perr != nil {
		return nil, perr
	}
	return b.caseList(ctx, search, limit, time.Now())
}

// caseQuery reads and checks the cases route's search and limit.
func caseQuery(req *appservice.ProvisioningRequest) (search string, limit int, perr *appservice.ProvisioningError) {
	search = req.Query.Get("search")
	if n := utf8.RuneCountInString(search); n > maxCaseSearch {
		return "", 0, appservice.ProvisioningBadRequest("search is %d characters long; it may have at most %d (a part of a case ID)", n, maxCaseSearch)
	}
	limit = defaultCaseLimit
	if req.Query.Has("limit") {
		raw := req.Query.Get("limit")
		n, err := strconv.Atoi(raw)
		if err != nil || n < 1 || n > maxCaseLimit {
			if len(raw) > 20 {
				raw = raw[:20] + "…"
			}
			return "", 0, appservice.ProvisioningBadRequest("limit must be a whole number from 1 to %d, not %q", maxCaseLimit, raw)
		}
		limit = n
	}
	return search, limit, nil
}

// caseList is the open cases whose ID contains search, oldest first, at most limit of them,
// with their ages at now.
func (b *Bot) caseList(ctx context.Context, search string, limit int, now time.Time) (caseList, error) {
	open, err := b.openCases(ctx, search)
	if err != nil {
		return caseList{}, err
	}
	out := caseList{Cases: make([]provisionedCase, 0, min(len(open), limit)), Total: len(open)}
	for _, c := range open[:min(len(open), limit)] {
		out.Cases = append(out.Cases, provisionedCase{
			CaseID: c.rec.ID, Link: c.link, State: c.rec.State, Role: c.rec.Role, Peer: c.rec.Peer,
			Created: c.rec.Created.UTC(), AgeSeconds: max(0, int64(now.Sub(c.rec.Created)/time.Second)), RoomID: c.rec.Room,
		})
	}
	return out, nil
}

func (b *Bot) provisionLinks(ctx context.Context, req *appservice.ProvisioningRequest) (any, error) {
	links, err := b.linkSummaries(ctx)
	if err != nil {
		return nil, err
	}
	out := linkList{Links: make([]provisionedLink, 0, len(links))}
	for _, l := range links {
		pl := provisionedLink{Name: l.name, OID: l.oid, State: l.state, HasError: l.lastErr != "",
			OpenCases: l.openCases, ToSend: l.toSend, Received: l.received}
		if req.Admin {
			pl.LastError = l.lastErr
		}
		out.Links = append(out.Links, pl)
	}
	return out, nil
}
