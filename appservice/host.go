package appservice

import (
	"context"
	"errors"
	"time"

	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"
)

// Errors a module may see from the [Host].
var (
	// ErrNotInNamespace is returned when a module asks for a ghost outside its namespaces.
	ErrNotInNamespace = errors.New("appservice: user ID is not in the module's namespace")
	// ErrSendFailed is wrapped when the outbox gave up sending a message.
	ErrSendFailed = errors.New("appservice: message could not be sent to Matrix")
	// ErrStopping is returned when the core is shutting down.
	ErrStopping = errors.New("appservice: shutting down")
)

// Host is what the core offers a module. It is passed to [Module.Start] and stays valid until
// the module's Stop returns. All methods are safe for concurrent use.
type Host interface {
	// Domain is the homeserver's server name.
	Domain() string
	// BotUserID is the management bot's user ID (the registration's sender).
	BotUserID() id.UserID
	// Ghost returns the intent of a user in the module's namespaces, given its localpart.
	Ghost(localpart string) (*Intent, error)
	// Bot returns the management bot's intent.
	Bot() *Intent
	// Send durably records msg in the outbox and waits until it is sent, returning its event
	// ID. Sending the same (module, RemoteID) again returns the first event's ID and sends
	// nothing. When ctx ends first, the message stays queued and is sent later.
	Send(ctx context.Context, msg Message) (id.EventID, error)
	// Enqueue durably records msg in the outbox and returns; the outbox sends it in order
	// with the room's other messages. A module acknowledges its remote side after Enqueue
	// returns nil.
	Enqueue(ctx context.Context, msg Message) error
	// ReportFailure tells the sender of a Matrix event that the remote network refused it
	// after the module had handled it (for example a bounce that arrived later): a failure
	// status on the event and a notice in reply, sent once per event. reason is shown in
	// the room: it must not contain secrets.
	ReportFailure(ctx context.Context, roomID id.RoomID, eventID id.EventID, reason string) error
	// ScanFile checks a file for malware before it crosses over (see scan.go): a module
	// calls it with every file from its network before uploading it to Matrix (Inbound;
	// Intent.DownloadFile does it for Matrix files going out). nil: clean, or scanning is
	// off. An *InfectedError, or a permanent error wrapping ErrScanTooLarge or
	// ErrScannerUnavailable, refuses the file for good: ScanRefusal gives the reason for
	// a notice. Another error wrapping ErrScannerUnavailable means the file is held: the
	// module keeps it and tries again later (ctx ended while the scanner was unreachable).
	ScanFile(ctx context.Context, dir Direction, name string, data []byte) error
	// Store is the module's view of the shared store (portals, message map, key-value).
	Store() ModuleStore
	// Report is the state of the core and of every module (for status commands).
	Report(ctx context.Context) Report
	// RunCommand passes a management command to the module with that ID (for the
	// management bot); ErrUnknownCommand when it adds no commands.
	RunCommand(ctx context.Context, module string, cmd Command) (string, error)
}

// Message is a message a module sends to Matrix.
type Message struct {
	// RoomID is the room to send to. Required.
	RoomID id.RoomID
	// Sender is the ghost (or the bot) that sends. Required.
	Sender id.UserID
	// RemoteID is the remote network's id of the message; it keys idempotency and the
	// message map. Required.
	RemoteID string
	// Type is the event type; the default is m.room.message.
	Type event.Type
	// Content is the event content (any JSON-marshalable value). Required.
	Content any
	// Timestamp is the remote message's time, sent as the event's origin_server_ts
	// ("ts" massaging). Zero means now.
	Timestamp time.Time
	// CausedBy is the Matrix event this message answers (a command's reply, say), if any.
	// When the outbox gives up on the message, that event gets a failure status beside the
	// notice every lost message gets.
	CausedBy id.EventID
}

// ModuleStore is a module's slice of the shared store: every key is scoped to the module.
type ModuleStore interface {
	PutPortal(ctx context.Context, remoteKey string, roomID id.RoomID) error
	// ClaimPortal is PutPortal for a room that may belong to another module's portal
	// (such as the management bot's command room): the room is taken over.
	ClaimPortal(ctx context.Context, remoteKey string, roomID id.RoomID) error
	// DeletePortal removes the module's portal of remoteKey: later events of its room no
	// longer reach the module (unless they would without a portal, such as invites of
	// the module's users). The room and the message map are left alone. A missing portal
	// is not an error.
	DeletePortal(ctx context.Context, remoteKey string) error
	PortalByKey(ctx context.Context, remoteKey string) (id.RoomID, error)
	PortalByRoom(ctx context.Context, roomID id.RoomID) (remoteKey string, err error)
	PutMessage(ctx context.Context, remoteID string, roomID id.RoomID, eventID id.EventID) error
	MessageByRemote(ctx context.Context, remoteID string) (id.RoomID, id.EventID, error)
	MessageByEvent(ctx context.Context, eventID id.EventID) (remoteID string, err error)
	GetKV(ctx context.Context, key string) (string, error)
	PutKV(ctx context.Context, key, value string) error
	// ListKV returns the module's keys that start with prefix, in key order (bytewise),
	// at most limit of them (0 for all).
	ListKV(ctx context.Context, prefix string, limit int) ([]KV, error)
	// DeleteKV removes a key; a missing key is not an error.
	DeleteKV(ctx context.Context, key string) error
}

// KV is one of a module's key-value rows.
type KV struct {
	Key, Value string
}
