package appservice

import (
	"context"

	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"

	"github.com/switchboard-matrix/switchboard/registration"
)

// Module is a bridge or bot hosted by Switchboard. The required contract is small: an
// identity, the namespaces it claims, a life cycle, and a handler for Matrix events in the
// rooms it is part of. Everything else is an optional capability interface, detected once at
// start (see [EphemeralHandler], [QueryHandler], [ThirdPartyHandler], [CommandHandler],
// [StatusReporter]).
//
// The life cycle is: the module's constructor validates its config and allocates (no I/O);
// Start is called once with the [Host] before any event is delivered; HandleEvent is called
// for every event routed to the module, in order per room; Stop is called once and must
// return by the context's deadline, with no goroutine of the module left running.
type Module interface {
	// ID is the module's stable identifier, such as "xmpp" or "case116117". It keys the
	// module's config section, its rows in the shared store and its metrics.
	ID() string
	// Namespaces are the Matrix user IDs and room aliases the module claims. They become
	// part of the registration file.
	Namespaces() registration.Namespaces
	// Start connects the module to its network. The host stays valid until Stop returns.
	Start(ctx context.Context, host Host) error
	// Stop disconnects and releases everything; it honours the context's deadline.
	Stop(ctx context.Context) error
	// HandleEvent handles one Matrix room event routed to this module. An error is retried
	// with backoff; when the retries are exhausted the sender sees a failure status in the
	// room. A handler must be idempotent, keyed by the event ID: after a crash an event whose
	// handling was not recorded as done is delivered again.
	HandleEvent(ctx context.Context, evt *event.Event) error
}

// EphemeralHandler is implemented by modules that want typing notifications, read receipts
// and presence (the registration then asks the homeserver for ephemeral events).
type EphemeralHandler interface {
	HandleEphemeral(ctx context.Context, evt *event.Event) error
}

// QueryHandler is implemented by modules that answer the homeserver's user and alias queries
// for their namespaces. A module may create the ghost or the room before answering true.
type QueryHandler interface {
	QueryUser(ctx context.Context, userID id.UserID) (bool, error)
	QueryAlias(ctx context.Context, alias id.RoomAlias) (bool, error)
}

// ThirdPartyHandler is implemented by modules that answer third-party network lookups
// (protocols, users and locations). Protocols lists the protocol IDs the module serves.
type ThirdPartyHandler interface {
	Protocols() []string
	Protocol(ctx context.Context, protocol string) (*ThirdPartyProtocol, error)
	Locations(ctx context.Context, protocol string, fields map[string]string) ([]ThirdPartyLocation, error)
	Users(ctx context.Context, protocol string, fields map[string]string) ([]ThirdPartyUser, error)
	LocationsByAlias(ctx context.Context, alias id.RoomAlias) ([]ThirdPartyLocation, error)
	UsersByID(ctx context.Context, userID id.UserID) ([]ThirdPartyUser, error)
}

// RoomCommandHandler is implemented by modules that take commands in any room one of
// Switchboard's users shares with a Matrix user, portals of other modules included (such
// as "!meet" of the Jitsi module). A text message whose first word is one of RoomCommands
// (compared exactly) goes to this module alone, after the module's access check; so do the
// membership events about the module's users (invites of its bot into a portal, say). Two
// modules may not claim the same word.
type RoomCommandHandler interface {
	RoomCommands() []string
}

// CommandHandler is implemented by modules that add commands to the management bot. The
// bot offers "<module id> <command> ..." and passes the words after the module ID.
type CommandHandler interface {
	HandleCommand(ctx context.Context, cmd Command) (reply string, err error)
}

// StatusReporter is implemented by modules that report their connection state for the
// management bot's status command and the readiness check.
type StatusReporter interface {
	Status(ctx context.Context) ModuleStatus
}

// Command is one management-room command addressed to a module.
type Command struct {
	Sender id.UserID
	RoomID id.RoomID
	Args   []string
	// Admin is true when the sender is one of the management bot's admins
	// (management.admins). Modules allow their admin-only commands (pausing a mailbox,
	// linking a portal) on it; the core has checked the module's permission list already.
	Admin bool
}

// ModuleStatus is a module's view of its own health.
type ModuleStatus struct {
	// Connected is true when the module is connected to its remote network.
	Connected bool
	// State is a short human-readable state, such as "connected" or "reconnecting in 8s".
	State string
	// LastError is the last error the module saw, empty when none. It must not contain
	// secrets or message bodies.
	LastError string
}

// ThirdPartyProtocol describes a third-party protocol (spec: Application Service API,
// third-party networks).
type ThirdPartyProtocol = map[string]any

// ThirdPartyLocation is one portal room for a third-party location.
type ThirdPartyLocation struct {
	Alias    id.RoomAlias      `json:"alias"`
	Protocol string            `json:"protocol"`
	Fields   map[string]string `json:"fields"`
}

// ThirdPartyUser is one Matrix user for a third-party user.
type ThirdPartyUser struct {
	UserID   id.UserID         `json:"userid"`
	Protocol string            `json:"protocol"`
	Fields   map[string]string `json:"fields"`
}

// SendFailureHandler is implemented by modules that want to know when the outbox gave up on
// one of their messages (after the retries), to tell the remote sender.
type SendFailureHandler interface {
	HandleSendFailure(ctx context.Context, remoteID string, roomID id.RoomID, err error)
}

// FailureSender is implemented by modules whose rooms the bot is not always in (such as
// DMs between a Matrix user and a ghost): it names the user, one of the module's ghosts
// in the room, that posts failure reports there. An empty answer means the bot.
type FailureSender interface {
	FailureSender(ctx context.Context, roomID id.RoomID) id.UserID
}
