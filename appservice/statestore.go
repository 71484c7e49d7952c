package appservice

import (
	"context"

	"maunium.net/go/mautrix"
	"maunium.net/go/mautrix/id"

	"github.com/switchboard-matrix/switchboard/internal/store"
)

// stateStore is mautrix's in-memory state store with ghost registration kept in the
// database, so that a restart does not register every ghost again.
type stateStore struct {
	*mautrix.MemoryStateStore
	store *store.Store
}

func (s *stateStore) IsRegistered(ctx context.Context, userID id.UserID) (bool, error) {
	return s.store.IsGhostRegistered(ctx, userID.String())
}

func (s *stateStore) MarkRegistered(ctx context.Context, userID id.UserID) error {
	return s.store.MarkGhostRegistered(ctx, userID.String())
}
