package e2ee

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"database/sql"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/rs/zerolog"
	"go.mau.fi/util/dbutil"
	"maunium.net/go/mautrix"
	"maunium.net/go/mautrix/crypto"
	"maunium.net/go/mautrix/id"

	"github.com/switchboard-matrix/switchboard/appservice/asintent"
)

// Device set-up steps, recorded in switchboard_e2ee_device.state so that a crash in between
// resumes where it stopped: every step is idempotent.
const (
	stateNew      = "new"      // device ID chosen
	stateXSigning = "xsigning" // cross-signing seeds generated and kept (xsign)
	stateReady    = "ready"    // keys uploaded, cross-signing published, device signed
)

// setUp creates (or loads) userID's device and Olm machine.
func (m *Manager) setUp(ctx context.Context, userID id.UserID) (*crypto.OlmMachine, error) {
	log := logger(ctx).With().Stringer("user_id", userID).Logger()
	deviceID, state, xsign, err := m.deviceRow(ctx, userID)
	if err != nil {
		return nil, err
	}
	cli := m.opts.AS.Client(userID)
	if state != stateReady {
		if err := asintent.EnsureRegistered(ctx, m.opts.AS.Intent(userID)); err != nil {
			return nil, fmt.Errorf("e2ee: failed to register %s: %w", userID, err)
		}
		// PUT /devices/{id} as the appservice creates the device (MSC4190); repeating it is
		// harmless.
		if err := cli.CreateDeviceMSC4190(ctx, deviceID, m.opts.DeviceName); err != nil {
			if isUnsupported(err) {
				return nil, fmt.Errorf("%w: %w", ErrUnsupported, err)
			}
			return nil, fmt.Errorf("e2ee: failed to create a device for %s: %w", userID, err)
		}
	}
	cli.DeviceID = deviceID
	cli.SetAppServiceDeviceID = true
	cs := crypto.NewSQLCryptoStore(m.db, dbutil.NoopLogger, userID.String(), deviceID, m.pickle)
	mach := crypto.NewOlmMachine(cli, &log, cs, m.state)
	mach.SessionReceived = m.sessionReceived
	mach.DisableDeviceChangeKeyRotation = true // encrypt checks the recipients itself
	mach.ShareKeysMinTrust = 0                 // share with every device of the room's members, like Element
	mach.SetBackgroundCtx(m.bgContext())
	if err := mach.Load(ctx); err != nil {
		return nil, fmt.Errorf("e2ee: failed to load the Olm account of %s: %w", userID, err)
	}
	if err := mach.ShareKeys(ctx, -1); err != nil && state != stateReady {
		return nil, fmt.Errorf("e2ee: failed to upload the device keys of %s: %w", userID, err)
	}
	if state == stateNew {
		keys, err := mach.GenerateCrossSigningKeys()
		if err != nil {
			return nil, fmt.Errorf("e2ee: %w", err)
		}
		if xsign, err = m.sealSeeds(keys.Seeds()); err != nil {
			return nil, err
		}
		if err := m.setDeviceState(ctx, userID, stateXSigning, xsign); err != nil {
			return nil, err
		}
		state = stateXSigning
	}
	seeds, err := m.openSeeds(xsign)
	if err != nil {
		return nil, err
	}
	if err := mach.ImportCrossSigningKeys(seeds); err != nil {
		return nil, fmt.Errorf("e2ee: failed to import the cross-signing keys of %s: %w", userID, err)
	}
	if state == stateXSigning {
		// MSC4190 lets an appservice replace its users' cross-signing keys without
		// user-interactive authentication.
		if err := mach.PublishCrossSigningKeys(ctx, mach.CrossSigningKeys, func(*mautrix.RespUserInteractive) interface{} {
			return map[string]any{"type": "m.login.dummy"}
		}); err != nil {
			return nil, fmt.Errorf("e2ee: failed to publish the cross-signing keys of %s: %w", userID, err)
		}
		if err := mach.SignOwnDevice(ctx, mach.OwnIdentity()); err != nil {
			return nil, fmt.Errorf("e2ee: failed to sign the device of %s: %w", userID, err)
		}
		if err := m.setDeviceState(ctx, userID, stateReady, xsign); err != nil {
			return nil, err
		}
		zerolog.Ctx(ctx).Info().Stringer("user_id", userID).Stringer("device_id", deviceID).Msg("Created an encryption device, cross-signed by its user")
	}
	return mach, nil
}

// deviceRow returns the user's device, choosing and recording a new device ID first.
func (m *Manager) deviceRow(ctx context.Context, userID id.UserID) (deviceID id.DeviceID, state, xsign string, err error) {
	q := `SELECT device_id, state, xsign FROM switchboard_e2ee_device WHERE user_id=$1`
	var dev string
	err = m.db.QueryRow(ctx, q, userID.String()).Scan(&dev, &state, &xsign)
	if errors.Is(err, sql.ErrNoRows) {
		b := make([]byte, 6)
		_, _ = rand.Read(b)
		dev = "SB" + strings.ToUpper(base64.RawURLEncoding.EncodeToString(b))
		dev = strings.NewReplacer("-", "A", "_", "B").Replace(dev)
		if _, err = m.db.Exec(ctx, `INSERT INTO switchboard_e2ee_device (user_id, device_id, state) VALUES ($1, $2, $3) ON CONFLICT (user_id) DO NOTHING`,
			userID.String(), dev, stateNew); err != nil {
			return "", "", "", fmt.Errorf("e2ee: failed to record a device: %w", err)
		}
		err = m.db.QueryRow(ctx, q, userID.String()).Scan(&dev, &state, &xsign)
	}
	if err != nil {
		return "", "", "", fmt.Errorf("e2ee: failed to read the device of %s: %w", userID, err)
	}
	return id.DeviceID(dev), state, xsign, nil
}

func (m *Manager) setDeviceState(ctx context.Context, userID id.UserID, state, xsign string) error {
	if _, err := m.db.Exec(ctx, `UPDATE switchboard_e2ee_device SET state=$2, xsign=$3 WHERE user_id=$1`, userID.String(), state, xsign); err != nil {
		return fmt.Errorf("e2ee: failed to record the device state: %w", err)
	}
	return nil
}

// deviceOf returns the recorded device of a user, "" if none is ready.
func (m *Manager) deviceOf(ctx context.Context, userID id.UserID) (id.DeviceID, error) {
	var dev, state string
	err := m.db.QueryRow(ctx, `SELECT device_id, state FROM switchboard_e2ee_device WHERE user_id=$1`, userID.String()).Scan(&dev, &state)
	if errors.Is(err, sql.ErrNoRows) || (err == nil && state != stateReady) {
		return "", nil
	}
	return id.DeviceID(dev), err
}

// sealSeeds encrypts the cross-signing seeds with the pickle key (AES-GCM).
func (m *Manager) sealSeeds(seeds crypto.CrossSigningSeeds) (string, error) {
	plain, err := json.Marshal(seeds)
	if err != nil {
		return "", err
	}
	gcm, err := m.gcm()
	if err != nil {
		return "", err
	}
	nonce := make([]byte, gcm.NonceSize())
	_, _ = rand.Read(nonce)
	return base64.RawStdEncoding.EncodeToString(gcm.Seal(nonce, nonce, plain, nil)), nil
}

func (m *Manager) openSeeds(sealed string) (crypto.CrossSigningSeeds, error) {
	var seeds crypto.CrossSigningSeeds
	raw, err := base64.RawStdEncoding.DecodeString(sealed)
	if err != nil {
		return seeds, fmt.Errorf("e2ee: bad cross-signing record: %w", err)
	}
	gcm, err := m.gcm()
	if err != nil {
		return seeds, err
	}
	if len(raw) < gcm.NonceSize() {
		return seeds, errors.New("e2ee: bad cross-signing record")
	}
	plain, err := gcm.Open(nil, raw[:gcm.NonceSize()], raw[gcm.NonceSize():], nil)
	if err != nil {
		return seeds, fmt.Errorf("e2ee: cannot open the cross-signing keys (was the pickle key changed?): %w", err)
	}
	return seeds, json.Unmarshal(plain, &seeds)
}

func (m *Manager) gcm() (cipher.AEAD, error) {
	k := sha256.Sum256(append([]byte("switchboard cross-signing\x00"), m.pickle...))
	block, err := aes.NewCipher(k[:])
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(block)
}

func (m *Manager) bgContext() context.Context {
	if m.bg != nil {
		return m.bg
	}
	return context.Background()
}
