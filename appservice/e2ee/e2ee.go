// Package e2ee is the end-to-end encryption of Switchboard's core: one Olm device per
// Switchboard user (the bot and every ghost that acts in an encrypted room), created through
// the appservice (MSC4190) and cross-signed by its own user, with mautrix-go's crypto
// (pure-Go goolm backend) and its crypto store in Switchboard's own database.
//
// The core uses a [Manager] to decrypt journaled m.room.encrypted events before modules see
// them and to encrypt the outbox's messages in encrypted rooms. To-device events, device-list
// changes and one-time-key counts arrive in appservice transactions (MSC2409, MSC3202). The
// package knows nothing of modules; it does not import package appservice.
package e2ee

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/rs/zerolog"
	"go.mau.fi/util/dbutil"
	"maunium.net/go/mautrix"
	mas "maunium.net/go/mautrix/appservice"
	"maunium.net/go/mautrix/crypto"
	"maunium.net/go/mautrix/id"
)

// ErrUnsupported is returned by [Manager.Start] when the homeserver cannot create devices for
// appservice users (no MSC4190): encryption must stay off.
var ErrUnsupported = errors.New("e2ee: the homeserver does not support appservice devices (MSC4190)")

// Options configure a [Manager]. AS, DB and Dialect are required.
type Options struct {
	AS      *mas.AppService
	DB      *sql.DB
	Dialect string // "sqlite" or "postgres" (internal/store's names)
	// PickleKey encrypts the keys at rest; empty means one generated once and kept in the
	// database.
	PickleKey string
	// DeviceName is the display name of the devices created; default "Switchboard".
	DeviceName string
	// Rotation is the Megolm rotation policy for rooms whose m.room.encryption says none.
	RotationPeriod   time.Duration
	RotationMessages int
}

// Manager holds the Olm machines of Switchboard's users. Create it with [New]; Start it before
// use. All methods are safe for concurrent use.
type Manager struct {
	opts   Options
	db     *dbutil.Database
	state  *stateStore
	pickle []byte

	mu       sync.Mutex
	machines map[id.UserID]*machineEntry
	keyWake  chan struct{} // closed and replaced when a room key arrives
	started  bool

	bg     context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	otkMu  sync.Mutex
	otkRun map[id.UserID]bool

	sharedMu sync.Mutex
	shared   map[shareKey]shareRecord // guarded by sharedMu; see checkRecipients
	// acct serializes, per user, what mutates the Olm account: decrypting to-device
	// events (an Olm pre-key message uses up a one-time key) and one-time key uploads.
	// mautrix guards them with different locks (olmLock, otkUploadLock), so without this
	// the background top-up raced the dispatcher's to-device handling.
	acct map[id.UserID]*sync.Mutex
}

type machineEntry struct {
	ready chan struct{} // closed when mach or err is set
	mach  *crypto.OlmMachine
	err   error
}

// New builds a Manager. It does no I/O.
func New(opts Options) (*Manager, error) {
	if opts.AS == nil || opts.DB == nil {
		return nil, errors.New("e2ee: AS and DB are required")
	}
	if opts.DeviceName == "" {
		opts.DeviceName = "Switchboard"
	}
	m := &Manager{
		opts:     opts,
		machines: make(map[id.UserID]*machineEntry),
		keyWake:  make(chan struct{}),
		otkRun:   make(map[id.UserID]bool),
		shared:   make(map[shareKey]shareRecord),
		acct:     make(map[id.UserID]*sync.Mutex),
	}
	m.state = newStateStore(m)
	return m, nil
}

// Start prepares the database tables and the bot's device. It returns an error wrapping
// ErrUnsupported when the homeserver cannot create appservice devices.
func (m *Manager) Start(ctx context.Context) error {
	dialect := "postgres"
	if m.opts.Dialect == "sqlite" {
		dialect = "sqlite3"
	}
	db, err := dbutil.NewWithDB(m.opts.DB, dialect)
	if err != nil {
		return fmt.Errorf("e2ee: %w", err)
	}
	db.Log = dbutil.NoopLogger
	m.db = db
	if err := m.createTables(ctx); err != nil {
		return err
	}
	probe := crypto.NewSQLCryptoStore(db, dbutil.NoopLogger, "", "", nil)
	if err := probe.DB.Upgrade(ctx); err != nil {
		return fmt.Errorf("e2ee: failed to upgrade the crypto store: %w", err)
	}
	if m.pickle, err = m.pickleKey(ctx); err != nil {
		return err
	}
	m.bg, m.cancel = context.WithCancel(context.WithoutCancel(ctx))
	if _, err := m.Machine(ctx, m.opts.AS.BotMXID()); err != nil {
		m.cancel()
		return err
	}
	m.mu.Lock()
	m.started = true
	m.mu.Unlock()
	return nil
}

// Stop waits for background key uploads.
func (m *Manager) Stop() {
	if m.cancel != nil {
		m.cancel()
	}
	m.wg.Wait()
}

// pickleKey is the configured key or the one kept in the database (generated once).
func (m *Manager) pickleKey(ctx context.Context) ([]byte, error) {
	if m.opts.PickleKey != "" {
		return []byte(m.opts.PickleKey), nil
	}
	var v string
	err := m.db.QueryRow(ctx, `SELECT value FROM switchboard_e2ee_meta WHERE key='pickle_key'`).Scan(&v)
	if errors.Is(err, sql.ErrNoRows) {
		b := make([]byte, 32)
		_, _ = rand.Read(b)
		v = base64.RawStdEncoding.EncodeToString(b)
		if _, err = m.db.Exec(ctx, `INSERT INTO switchboard_e2ee_meta (key, value) VALUES ('pickle_key', $1) ON CONFLICT (key) DO NOTHING`, v); err != nil {
			return nil, fmt.Errorf("e2ee: failed to store the pickle key: %w", err)
		}
		err = m.db.QueryRow(ctx, `SELECT value FROM switchboard_e2ee_meta WHERE key='pickle_key'`).Scan(&v)
	}
	if err != nil {
		return nil, fmt.Errorf("e2ee: failed to read the pickle key: %w", err)
	}
	return []byte(v), nil
}

func (m *Manager) createTables(ctx context.Context) error {
	for _, q := range []string{
		`CREATE TABLE IF NOT EXISTS switchboard_e2ee_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)`,
		`CREATE TABLE IF NOT EXISTS switchboard_e2ee_device (
			user_id TEXT PRIMARY KEY, device_id TEXT NOT NULL, state TEXT NOT NULL, xsign TEXT NOT NULL DEFAULT '')`,
		`CREATE TABLE IF NOT EXISTS switchboard_e2ee_room (
			room_id TEXT PRIMARY KEY, encryption TEXT NOT NULL)`,
	} {
		if _, err := m.db.Exec(ctx, q); err != nil {
			return fmt.Errorf("e2ee: failed to create tables: %w", err)
		}
	}
	return nil
}

// accountLock is the lock of userID's Olm account (see Manager.acct).
func (m *Manager) accountLock(userID id.UserID) *sync.Mutex {
	m.mu.Lock()
	defer m.mu.Unlock()
	l, ok := m.acct[userID]
	if !ok {
		l = &sync.Mutex{}
		m.acct[userID] = l
	}
	return l
}

// IsOurDevice reports whether the user has a Switchboard device.
func (m *Manager) hasMachine(userID id.UserID) (*crypto.OlmMachine, bool) {
	m.mu.Lock()
	e, ok := m.machines[userID]
	m.mu.Unlock()
	if !ok {
		return nil, false
	}
	select {
	case <-e.ready:
		return e.mach, e.err == nil
	default:
		return nil, false
	}
}

// Machine returns the Olm machine of userID (a Switchboard user), creating its device,
// keys and cross-signing on first use. Concurrent callers for one user share the work.
func (m *Manager) Machine(ctx context.Context, userID id.UserID) (*crypto.OlmMachine, error) {
	m.mu.Lock()
	e, ok := m.machines[userID]
	if ok {
		select {
		case <-e.ready:
			if e.err != nil {
				delete(m.machines, userID) // try again next time
				ok = false
			}
		default:
		}
	}
	if !ok {
		e = &machineEntry{ready: make(chan struct{})}
		m.machines[userID] = e
		m.mu.Unlock()
		e.mach, e.err = m.setUp(context.WithoutCancel(ctx), userID)
		close(e.ready)
		return e.mach, e.err
	}
	m.mu.Unlock()
	select {
	case <-e.ready:
		return e.mach, e.err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// isUnsupported reports a homeserver answer that means "no such endpoint or feature".
func isUnsupported(err error) bool {
	var httpErr mautrix.HTTPError
	if !errors.As(err, &httpErr) || httpErr.Response == nil {
		return false
	}
	switch httpErr.Response.StatusCode {
	case http.StatusNotFound, http.StatusMethodNotAllowed, http.StatusNotImplemented:
		return true
	}
	return httpErr.RespError != nil && httpErr.RespError.ErrCode == mautrix.MUnrecognized.ErrCode
}

// logger is the mautrix crypto logger: quiet (warnings and up) and without bodies.
func logger(ctx context.Context) *zerolog.Logger {
	l := zerolog.Ctx(ctx).With().Str("component", "e2ee").Logger()
	if l.GetLevel() < zerolog.WarnLevel && l.GetLevel() != zerolog.TraceLevel {
		l = l.Level(zerolog.WarnLevel)
	}
	return &l
}
