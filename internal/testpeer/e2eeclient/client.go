// Package e2eeclient is an encrypting Matrix client for end-to-end tests: it plays the
// human Matrix user (an Element in a test) in encrypted rooms. It is built on mautrix-go's
// crypto package with the pure-Go goolm backend (build with -tags goolm), has its own
// device with uploaded device and one-time keys, cross-signs that device with its own
// user's keys, keeps a /sync loop that feeds the crypto machine, decrypts what arrives
// (retrying when a late room key comes, as Element does) and records it with the sender
// device's trust state. It can also send an event whose room key it withholds and shares
// later (SendWithheldKey). It is imported by tests only.
//
//	cli, _ := hs.RegisterUser(ctx, "alice", "pw")
//	alice, err := e2eeclient.New(ctx, cli, "pw", e2eeclient.Options{})
//	defer alice.Close()
//	room, _ := alice.CreateEncryptedRoom(ctx, &mautrix.ReqCreateRoom{Invite: []id.UserID{bob}})
//	_, _ = alice.Send(ctx, room, event.EventMessage, &event.MessageEventContent{MsgType: event.MsgText, Body: "hi"})
//	room, _ = bob.AcceptInvite(ctx)
//	m, _ := bob.WaitMessage(ctx, room, func(m e2eeclient.Message) bool { return m.DecryptError == nil })
//	// m.Trust >= id.TrustStateCrossSignedTOFU: alice's device is cross-signed by alice
//
// A sync response with more new events in a room than the timeline limit is completed
// from /messages, so a burst of events is not missed.
package e2eeclient

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/rs/zerolog"
	"maunium.net/go/mautrix"
	"maunium.net/go/mautrix/crypto"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"
)

// Options configure a Client.
type Options struct {
	// Log receives the client's and mautrix's log; nil discards it. Tests pass a
	// warn-level logger.
	Log *zerolog.Logger
	// TimelineLimit is the /sync filter's timeline limit (default 1000); a sync with more
	// new events in a room is completed from /messages.
	TimelineLimit int
}

// Client is an encrypting Matrix client with its own cross-signed device and a running
// /sync loop. Its methods are safe for concurrent use.
type Client struct {
	cli   *mautrix.Client
	mach  *crypto.OlmMachine
	state *mautrix.MemoryStateStore
	log   zerolog.Logger

	cancel   context.CancelFunc
	syncDone chan struct{}
	syncErr  error

	// sendMu serialises every use of the Olm machine: sends, key sharing and the
	// processing of a sync response (mautrix's machine and memory store are not safe for
	// a send beside a decryption: data races under -race), and SendWithheldKey's swap of
	// the room's outbound session is never seen by a concurrent Send.
	sendMu     sync.Mutex
	sharedWith map[id.RoomID]shareRecord

	mu       sync.Mutex
	changed  chan struct{} // closed and replaced whenever received changes
	received map[id.RoomID][]Message
	pending  map[id.EventID]*event.Event // undecryptable for want of a room key
	lastSeen map[id.RoomID]id.EventID    // the last timeline event of each room
	filled   int                         // events fetched by fillGaps (for tests)

	invites      []id.RoomID // rooms invited to, in order of arrival
	invitesTaken int         // how many of invites AcceptInvite has returned

	syncer *signallingSyncer
}

// shareRecord says which devices the room's current outbound session was shared with.
type shareRecord struct {
	sessionID id.SessionID
	devices   string
}

// New sets up end-to-end encryption for cli, a logged-in client with a device ID: it
// creates the crypto machine (in-memory crypto store) for cli's device, uploads the
// device keys and one-time keys, generates and uploads cross-signing keys (user-
// interactive auth with password), signs its own device and master key, and starts the
// /sync loop. It returns after the first sync has been processed. cli's Syncer,
// StateStore, Store and Log are replaced.
func New(ctx context.Context, cli *mautrix.Client, password string, opts Options) (*Client, error) {
	if cli.UserID == "" || cli.DeviceID == "" || cli.AccessToken == "" {
		return nil, errors.New("e2eeclient: the client must be logged in with a device ID")
	}
	log := zerolog.Nop()
	if opts.Log != nil {
		log = opts.Log.With().Str("e2ee_user", cli.UserID.String()).Logger()
	}
	cli.Log = log
	state := mautrix.NewMemoryStateStore().(*mautrix.MemoryStateStore)
	cli.StateStore = state
	cli.Store = mautrix.NewMemorySyncStore()
	firstSync := make(chan struct{})
	syncer := &signallingSyncer{DefaultSyncer: mautrix.NewDefaultSyncer(), processed: firstSync}
	limit := opts.TimelineLimit
	if limit <= 0 {
		limit = defaultTimelineLimit
	}
	syncer.FilterJSON = &mautrix.Filter{Room: &mautrix.RoomFilter{Timeline: &mautrix.FilterPart{Limit: limit}}}
	cli.Syncer = syncer

	mach := crypto.NewOlmMachine(cli, &log, crypto.NewMemoryStore(nil), state)
	mach.SendKeysMinTrust = id.TrustStateUnset // like Element: share with unverified devices too
	if err := mach.Load(ctx); err != nil {
		return nil, fmt.Errorf("e2eeclient: failed to create the olm account: %w", err)
	}
	if err := mach.ShareKeys(ctx, -1); err != nil {
		return nil, fmt.Errorf("e2eeclient: failed to upload device keys: %w", err)
	}
	if err := crossSign(ctx, cli, mach, password); err != nil {
		return nil, err
	}

	c := &Client{
		cli: cli, mach: mach, state: state, log: log,
		syncDone:   make(chan struct{}),
		sharedWith: make(map[id.RoomID]shareRecord),
		changed:    make(chan struct{}),
		received:   make(map[id.RoomID][]Message),
		pending:    make(map[id.EventID]*event.Event),
		lastSeen:   make(map[id.RoomID]id.EventID),
		syncer:     syncer,
	}
	syncer.machMu = &c.sendMu
	syncer.OnSync(c.processCrypto) // to-device (room keys), device lists, OTK counts
	syncer.OnSync(c.fillGaps)
	syncer.OnSync(c.recordInvites)
	syncer.OnSync(func(ctx context.Context, _ *mautrix.RespSync, _ string) bool {
		c.retryPending(ctx)
		return true
	})
	syncer.OnEvent(cli.StateStoreSyncHandler)
	syncer.OnEventType(event.StateMember, mach.HandleMemberEvent)
	syncer.OnEventType(event.StateHistoryVisibility, mach.HandleHistoryVisibility)
	syncer.OnEvent(c.handleEvent)
	syncCtx, cancel := context.WithCancel(context.Background())
	c.cancel = cancel
	go func() {
		defer close(c.syncDone)
		err := cli.SyncWithContext(syncCtx)
		if err != nil && !errors.Is(err, context.Canceled) {
			c.log.Warn().Err(err).Msg("e2eeclient: sync loop ended")
			c.syncErr = err
		}
	}()
	select {
	case <-firstSync:
		return c, nil
	case <-c.syncDone:
		cancel()
		return nil, fmt.Errorf("e2eeclient: the sync loop ended before the first sync: %w", c.syncErr)
	case <-ctx.Done():
		c.Close()
		return nil, fmt.Errorf("e2eeclient: waiting for the first sync: %w", ctx.Err())
	}
}

// crossSign generates and uploads cross-signing keys for cli's user and signs cli's
// device (self-signing key) and the master key (device key). Synapse accepts the first
// upload of a user's cross-signing keys without user-interactive auth (MSC3967); the
// password callback serves homeservers that ask.
func crossSign(ctx context.Context, cli *mautrix.Client, mach *crypto.OlmMachine, password string) error {
	keys, err := mach.GenerateCrossSigningKeys()
	if err != nil {
		return fmt.Errorf("e2eeclient: %w", err)
	}
	uia := func(resp *mautrix.RespUserInteractive) any {
		return &mautrix.ReqUIAuthLogin{
			BaseAuthData: mautrix.BaseAuthData{Type: mautrix.AuthTypePassword, Session: resp.Session},
			User:         cli.UserID.String(),
			Password:     password,
		}
	}
	if err := mach.PublishCrossSigningKeys(ctx, keys, uia); err != nil {
		return fmt.Errorf("e2eeclient: failed to upload cross-signing keys: %w", err)
	}
	if err := mach.SignOwnDevice(ctx, mach.OwnIdentity()); err != nil {
		return fmt.Errorf("e2eeclient: failed to sign own device: %w", err)
	}
	if err := mach.SignOwnMasterKey(ctx); err != nil {
		return fmt.Errorf("e2eeclient: failed to sign own master key: %w", err)
	}
	return nil
}

// UserID is the client's user.
func (c *Client) UserID() id.UserID { return c.cli.UserID }

// DeviceID is the client's device.
func (c *Client) DeviceID() id.DeviceID { return c.cli.DeviceID }

// Mautrix is the underlying mautrix client (for joins, state and other plain calls).
func (c *Client) Mautrix() *mautrix.Client { return c.cli }

// Machine is the client's crypto machine.
func (c *Client) Machine() *crypto.OlmMachine { return c.mach }

// Close stops the sync loop and waits for it; idempotent.
func (c *Client) Close() {
	c.cancel()
	c.cli.StopSync()
	select {
	case <-c.syncDone:
	case <-time.After(time.Minute):
		c.log.Warn().Msg("e2eeclient: the sync loop did not stop within a minute")
	}
}

// signallingSyncer is mautrix's DefaultSyncer that closes processed once the first sync
// response has been processed entirely (room events included).
type signallingSyncer struct {
	*mautrix.DefaultSyncer
	processed chan struct{}
	once      sync.Once
	// hold is held while a response is processed; tests hold it to make the next sync
	// response carry many events.
	hold sync.Mutex
	// machMu is the client's sendMu, held while a response is processed.
	machMu *sync.Mutex
}

// ProcessResponse processes res and signals the first time.
func (s *signallingSyncer) ProcessResponse(ctx context.Context, res *mautrix.RespSync, since string) error {
	s.hold.Lock()
	defer s.hold.Unlock()
	s.machMu.Lock()
	defer s.machMu.Unlock()
	err := s.DefaultSyncer.ProcessResponse(ctx, res, since)
	s.once.Do(func() { close(s.processed) })
	return err
}

// processCrypto hands a sync response's to-device events, device lists and OTK counts to
// the machine, answering key requests in line: mautrix answers them in a goroutine of its
// own, which exports a Megolm session while the sync loop decrypts with it (a data race on
// the memory store's shared session under -race). It runs under sendMu (ProcessResponse).
func (c *Client) processCrypto(ctx context.Context, res *mautrix.RespSync, since string) bool {
	var requests []*event.Event
	kept := res.ToDevice.Events[:0:0]
	for _, evt := range res.ToDevice.Events {
		if evt.Type.Type == event.ToDeviceRoomKeyRequest.Type {
			requests = append(requests, evt)
			continue
		}
		kept = append(kept, evt)
	}
	res.ToDevice.Events = kept
	c.mach.ProcessSyncResponse(ctx, res, since)
	for _, evt := range requests {
		evt.Type.Class = event.ToDeviceEventType
		if err := evt.Content.ParseRaw(evt.Type); err != nil {
			continue
		}
		if content, ok := evt.Content.Parsed.(*event.RoomKeyRequestEventContent); ok {
			c.mach.HandleRoomKeyRequest(ctx, evt.Sender, content)
		}
	}
	return true
}
