package refucrm

import (
	"crypto/rand"
	"crypto/rsa"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/go-jose/go-jose/v4"

	"github.com/switchboard-matrix/switchboard/bots/case116117/ucri"
)

// DefaultOwnOID is the reference UCRM's own OID in its standalone config.
const DefaultOwnOID = "1.2.3.4.5.0"

// configFile is the config's name in Server.Dir; main.js imports it as an ES module.
const configFile = "config.js"

// Apps every participant supports unless Participant.Apps says otherwise: the 116117 bot's
// app and the transport layer's (which the reference requires of everyone).
var defaultApps = []ucri.AppRef{
	{AppID: ucri.AppIncidentWithPatient, AppVersion: "1.0"},
	{AppID: ucri.AppTransport, AppVersion: "1.0"},
}

// Participant is a dispatch centre connected to the reference UCRM (a "client"
// participant with an account of its own).
type Participant struct {
	OID                string // required
	Username, Password string // required; the account for /token
	// OperatorName and ShortName are shown in the registry; default "Leitstelle <OID>" and
	// "ELS <OID>".
	OperatorName, ShortName string
	// Key is the participant's public signing key in its registry entry; nil means none
	// (the reference then cannot check its signatures, nor can anyone else).
	Key *rsa.PublicKey
	// Apps are the supported apps; nil means incident_transfer_with_patient 1.0 and
	// transport_layer_messages 1.0.
	Apps []ucri.AppRef
}

// Options configures Start.
type Options struct {
	// Participants are the dispatch centres the UCRM serves. At least one.
	Participants []Participant
	// OwnOID is the UCRM's OID (the source of its delivery reports); default DefaultOwnOID.
	OwnOID string
	// Key signs the UCRM's own messages; nil means a new 2048-bit key.
	Key *rsa.PrivateKey
	// Dir holds the tree and config; default a new temporary directory that Stop removes.
	Dir string
	// Port on all interfaces (the reference binds no address); 0 picks a free loopback one.
	Port int
	// Logger receives the reference's output; default Dir/refucrm.log.
	Logger io.Writer
}

func (o *Options) setDefaults() error {
	if len(o.Participants) == 0 {
		return errors.New("refucrm: no participants")
	}
	for _, p := range o.Participants {
		if p.OID == "" || p.Username == "" || p.Password == "" {
			return fmt.Errorf("refucrm: participant %q needs OID, Username and Password", p.OID)
		}
	}
	if o.OwnOID == "" {
		o.OwnOID = DefaultOwnOID
	}
	if o.Key == nil {
		k, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			return fmt.Errorf("refucrm: %w", err)
		}
		o.Key = k
	}
	return nil
}

// config is the reference's config (see config/standalone.config.js).
type config struct {
	Port              int                        `json:"port"`
	CopySpec          bool                       `json:"copySpec"`
	PrivateSigningKey json.RawMessage            `json:"privateSigningKey"`
	OwnOID            string                     `json:"ownOid"`
	Auth              configAuth                 `json:"auth"`
	RemoteUCRMs       struct{}                   `json:"remoteUcrms"`
	Participants      map[string]json.RawMessage `json:"commParticipants"`
}

type configAuth struct {
	JWTSecret string                   `json:"jwtSecret"`
	Accounts  map[string]configAccount `json:"accounts"`
}

type configAccount struct {
	Username string   `json:"username"`
	Password string   `json:"password"`
	OIDs     []string `json:"oids"`
	Type     string   `json:"type"`
}

// writeConfig writes Dir/config.js for port; the JWT secret is jwtSecret (kept across
// restarts, so tokens stay valid as with a UCRM that keeps its secret).
func writeConfig(dir string, port int, jwtSecret string, o Options) error {
	priv, err := json.Marshal(jose.JSONWebKey{Key: o.Key, Algorithm: string(jose.RS256), KeyID: "refucrm"})
	if err != nil {
		return fmt.Errorf("refucrm: %w", err)
	}
	c := config{
		Port: port, CopySpec: true, PrivateSigningKey: priv, OwnOID: o.OwnOID,
		Auth:         configAuth{JWTSecret: jwtSecret, Accounts: map[string]configAccount{}},
		Participants: map[string]json.RawMessage{},
	}
	ucrmKey := ucri.JWKFromPublicKey(&o.Key.PublicKey)
	entry, _ := json.Marshal(ucri.CommParticipant{
		ID: o.OwnOID, Type: "ucrm", SystemName: "Reference UCRM", OperatorName: "UCRM (PMeV reference)", OperatorShortName: "UCRM",
		SupportedApps: []ucri.AppRef{{AppID: ucri.AppTransport, AppVersion: "1.0"}},
		TechSupport:   ucri.TechSupport{Phone: "001-555-1234", Email: "ucrm@example.org"}, Key: &ucrmKey, Status: ucri.StatusOnline,
	})
	c.Participants[o.OwnOID] = entry
	for _, p := range o.Participants {
		if _, dup := c.Participants[p.OID]; dup {
			return fmt.Errorf("refucrm: participant %s twice", p.OID)
		}
		if acc, dup := c.Auth.Accounts[p.Username]; dup {
			acc.OIDs = append(acc.OIDs, p.OID)
			c.Auth.Accounts[p.Username] = acc
		} else {
			c.Auth.Accounts[p.Username] = configAccount{Username: p.Username, Password: p.Password, OIDs: []string{p.OID}, Type: "client"}
		}
		cp := ucri.CommParticipant{
			ID: p.OID, Type: "client", SystemName: "System " + p.OID,
			OperatorName: p.OperatorName, OperatorShortName: p.ShortName, SupportedApps: p.Apps,
			TechSupport: ucri.TechSupport{Phone: "001-555-1234", Email: "els@example.org"}, Status: ucri.StatusOnline,
		}
		if cp.OperatorName == "" {
			cp.OperatorName = "Leitstelle " + p.OID
		}
		if cp.OperatorShortName == "" {
			cp.OperatorShortName = "ELS " + p.OID
		}
		if cp.SupportedApps == nil {
			cp.SupportedApps = defaultApps
		}
		if p.Key != nil {
			k := ucri.JWKFromPublicKey(p.Key)
			cp.Key = &k
		}
		if c.Participants[p.OID], err = json.Marshal(cp); err != nil {
			return fmt.Errorf("refucrm: %w", err)
		}
	}
	b, err := json.MarshalIndent(c, "", "  ")
	if err != nil {
		return fmt.Errorf("refucrm: %w", err)
	}
	js := "// Written by Switchboard's test harness (internal/testpeer/refucrm), after\n" +
		"// config/standalone.config.js of the reference UCRM.\nexport const config = " + string(b) + ";\n"
	if err := os.WriteFile(filepath.Join(dir, configFile), []byte(js), 0o600); err != nil {
		return fmt.Errorf("refucrm: %w", err)
	}
	return nil
}

// newSecret returns a random hex string.
func newSecret() (string, error) {
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("refucrm: %w", err)
	}
	return hex.EncodeToString(b), nil
}
