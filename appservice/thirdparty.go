package appservice

import (
	"context"
	"net/http"

	"maunium.net/go/mautrix/id"
)

// The third-party network lookups (spec: Application Service API, "Third-party networks").
// Each protocol is served by the module that lists it in ThirdPartyHandler.Protocols.

func (c *Core) thirdPartyFor(w http.ResponseWriter, protocol string) ThirdPartyHandler {
	h, ok := c.protocols[protocol]
	if !ok {
		writeError(w, http.StatusNotFound, "M_NOT_FOUND", "unknown protocol")
		return nil
	}
	return h
}

func fields(r *http.Request) map[string]string {
	out := map[string]string{}
	for k, v := range r.URL.Query() {
		if k != "access_token" && len(v) > 0 {
			out[k] = v[0]
		}
	}
	return out
}

func (c *Core) getProtocol(w http.ResponseWriter, r *http.Request) {
	p := r.PathValue("protocol")
	if h := c.thirdPartyFor(w, p); h != nil {
		c.answerLookup(w, "protocol", func() (any, bool, error) {
			proto, err := h.Protocol(r.Context(), p)
			return proto, proto != nil, err
		})
	}
}

func (c *Core) getLocations(w http.ResponseWriter, r *http.Request) {
	p := r.PathValue("protocol")
	if h := c.thirdPartyFor(w, p); h != nil {
		c.answerLookup(w, "location", func() (any, bool, error) {
			locs, err := h.Locations(r.Context(), p, fields(r))
			return locs, len(locs) > 0, err
		})
	}
}

func (c *Core) getUsers(w http.ResponseWriter, r *http.Request) {
	p := r.PathValue("protocol")
	if h := c.thirdPartyFor(w, p); h != nil {
		c.answerLookup(w, "user", func() (any, bool, error) {
			users, err := h.Users(r.Context(), p, fields(r))
			return users, len(users) > 0, err
		})
	}
}

func (c *Core) getLocationsByAlias(w http.ResponseWriter, r *http.Request) {
	alias := id.RoomAlias(r.URL.Query().Get("alias"))
	if alias == "" {
		writeError(w, http.StatusBadRequest, "M_MISSING_PARAM", "alias query parameter is required")
		return
	}
	c.answerAll(w, r.Context(), "location", func(ctx context.Context, h ThirdPartyHandler) ([]any, error) {
		locs, err := h.LocationsByAlias(ctx, alias)
		return toAny(locs), err
	})
}

func (c *Core) getUsersByID(w http.ResponseWriter, r *http.Request) {
	userID := id.UserID(r.URL.Query().Get("userid"))
	if userID == "" {
		writeError(w, http.StatusBadRequest, "M_MISSING_PARAM", "userid query parameter is required")
		return
	}
	c.answerAll(w, r.Context(), "user", func(ctx context.Context, h ThirdPartyHandler) ([]any, error) {
		users, err := h.UsersByID(ctx, userID)
		return toAny(users), err
	})
}

func toAny[T any](in []T) []any {
	out := make([]any, len(in))
	for i, v := range in {
		out[i] = v
	}
	return out
}

// answerAll asks every third-party module (each once) and concatenates the answers.
func (c *Core) answerAll(w http.ResponseWriter, ctx context.Context, kind string, ask func(context.Context, ThirdPartyHandler) ([]any, error)) {
	seen := map[ThirdPartyHandler]bool{}
	all := []any{}
	for _, p := range c.protocolOrder {
		h := c.protocols[p]
		if seen[h] {
			continue
		}
		seen[h] = true
		res, err := ask(ctx, h)
		if err != nil {
			c.log.Error().Err(err).Str("lookup", kind).Msg("Third-party lookup failed")
			writeError(w, http.StatusInternalServerError, "M_UNKNOWN", kind+" lookup failed")
			return
		}
		all = append(all, res...)
	}
	if len(all) == 0 {
		writeError(w, http.StatusNotFound, "M_NOT_FOUND", "no "+kind+" found")
		return
	}
	writeJSON(w, http.StatusOK, all)
}

func (c *Core) answerLookup(w http.ResponseWriter, kind string, ask func() (any, bool, error)) {
	res, found, err := ask()
	switch {
	case err != nil:
		c.log.Error().Err(err).Str("lookup", kind).Msg("Third-party lookup failed")
		writeError(w, http.StatusInternalServerError, "M_UNKNOWN", kind+" lookup failed")
	case !found:
		writeError(w, http.StatusNotFound, "M_NOT_FOUND", "no "+kind+" found")
	default:
		writeJSON(w, http.StatusOK, res)
	}
}
