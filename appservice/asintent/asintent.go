// Package asintent serializes mautrix's registration of appservice users. mautrix shares
// one IntentAPI per user and reads its "registered" flag without a lock while another
// goroutine may set it (two mailboxes posting as the same sender raced on it); every
// Switchboard path that registers a user, or calls a mautrix method that does so on its
// way, goes through EnsureRegistered first, so that those reads happen after the write.
package asintent

import (
	"context"
	"hash/fnv"
	"sync"

	mas "maunium.net/go/mautrix/appservice"
	"maunium.net/go/mautrix/id"
)

// locks are striped by user ID, so that first registrations of different users do not
// wait for each other.
var locks [64]sync.Mutex

func lockFor(userID id.UserID) *sync.Mutex {
	h := fnv.New32a()
	h.Write([]byte(userID))
	return &locks[h.Sum32()%uint32(len(locks))]
}

// EnsureRegistered is api.EnsureRegistered under the user's lock.
func EnsureRegistered(ctx context.Context, api *mas.IntentAPI) error {
	mu := lockFor(api.UserID)
	mu.Lock()
	defer mu.Unlock()
	return api.EnsureRegistered(ctx)
}
