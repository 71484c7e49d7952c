package case116117

import (
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"strings"
	"time"

	"github.com/switchboard-matrix/switchboard/bots/case116117/ucri"
	"github.com/switchboard-matrix/switchboard/config"
)

// Config is the module's section under modules.case116117 in the Switchboard config.
type Config struct {
	// Prefix of the link bots' localparts and of the case rooms' aliases; default
	// "_case116117_".
	Prefix string `yaml:"prefix"`
	// Links are the dispatch centres (ELS) this Switchboard works for, one UCRM client each.
	Links []LinkConfig `yaml:"links"`
	// EncryptRooms creates case rooms and admin rooms with m.room.encryption whenever the
	// core encrypts (encryption.enabled on a homeserver that supports it), even with
	// encryption.default off: they hold patient data. Default true.
	EncryptRooms *bool `yaml:"encrypt_rooms"`
}

// encryptRooms is EncryptRooms with its default.
func (c *Config) encryptRooms() bool { return c.EncryptRooms == nil || *c.EncryptRooms }

// LinkConfig is one ELS's connection to its UCRM and the Matrix users who work its cases.
type LinkConfig struct {
	// Name identifies the link in the store, in logs and in the bot's user ID
	// (@<prefix><name>); lower-case letters, digits, '-' and '_'.
	Name string `yaml:"name"`
	// DisplayName is the link bot's display name; default "116117 <name>".
	DisplayName string `yaml:"display_name"`
	// OID is this ELS's own participant OID at the UCRM. Required.
	OID string `yaml:"oid"`
	// UCRM is the Client API of the UCRM this ELS is connected to.
	UCRM UCRMConfig `yaml:"ucrm"`
	// SigningKey is the PEM file of the RSA key that signs this ELS's messages (PKCS#1
	// or PKCS#8, at least 2048 bits); its public half is the key in the UCRM's registry.
	// Empty only when the registry marks this ELS as transmitting unsigned messages.
	SigningKey string `yaml:"signing_key"`
	// Dispatchers are the Matrix users invited to every case room of this link.
	Dispatchers []string `yaml:"dispatchers"`
	// Rooms are existing rooms (IDs or aliases) whose members work the link's cases: the
	// link's bot joins them (invite it, or make the room joinable), announces new cases
	// there and invites their members to every case room, besides the Dispatchers.
	Rooms []string `yaml:"rooms"`
	// Admins are the Matrix users invited to the link's admin room, where new cases are
	// announced, cases are handed over, and problems (invalid or unsigned messages,
	// delivery failures, availability of other centres) are reported.
	Admins []string `yaml:"admins"`
	// MaxDelay is the long-poll time of a receive request; default 30s (the maximum).
	MaxDelay config.Duration `yaml:"max_delay"`
	// Timeout is the envelope timeout of sent messages: how long the UCRM tries to deliver
	// them; default 1h.
	Timeout config.Duration `yaml:"timeout"`
}

// UCRMConfig is the address and credentials of a UCRM's Client API.
type UCRMConfig struct {
	// URL is the API's base URL including its base path, such as
	// https://ucrm.example.org/ucrm/client/v0. Required.
	URL string `yaml:"url"`
	// Username and Password are exchanged for a token at GET /token (HTTP Basic).
	Username string `yaml:"username"`
	Password string `yaml:"password"`
	// ClientCert and ClientKey are PEM files of an optional TLS client certificate.
	ClientCert string `yaml:"client_cert"`
	ClientKey  string `yaml:"client_key"`
	// CAFile is a PEM bundle of the roots that verify the UCRM's certificate; default
	// the system's roots.
	CAFile string `yaml:"ca_file"`
}

// Defaults of Config.
const (
	DefaultPrefix   = "_case116117_"
	DefaultMaxDelay = 30 * time.Second
	DefaultTimeout  = time.Hour
)

var (
	linkName    = regexp.MustCompile(`^[a-z0-9_-]{1,32}$`)
	localprefix = regexp.MustCompile(`^[a-z0-9._=-]+$`)
)

// ParseConfig decodes and validates a modules.case116117 section.
func ParseConfig(section config.ModuleConfig) (Config, error) {
	var c Config
	if err := section.Decode(&c); err != nil {
		return c, err
	}
	c.defaults()
	return c, c.Validate()
}

func (c *Config) defaults() {
	if c.Prefix == "" {
		c.Prefix = DefaultPrefix
	}
	for i := range c.Links {
		l := &c.Links[i]
		if l.DisplayName == "" {
			l.DisplayName = "116117 " + l.Name
		}
		if l.MaxDelay <= 0 || time.Duration(l.MaxDelay) > DefaultMaxDelay {
			l.MaxDelay = config.Duration(DefaultMaxDelay)
		}
		if l.Timeout <= 0 {
			l.Timeout = config.Duration(DefaultTimeout)
		}
	}
}

// Validate lists every problem, each with its key path under modules.case116117.
func (c *Config) Validate() error {
	var errs []error
	bad := func(key, format string, args ...any) {
		errs = append(errs, fmt.Errorf("modules.case116117.%s: %s", key, fmt.Sprintf(format, args...)))
	}
	if !localprefix.MatchString(c.Prefix) {
		bad("prefix", "%q is not a valid localpart prefix", c.Prefix)
	}
	if len(c.Links) == 0 {
		bad("links", "at least one link is required")
	}
	names, oids := map[string]bool{}, map[string]bool{}
	for i, l := range c.Links {
		key := fmt.Sprintf("links[%d]", i)
		if !linkName.MatchString(l.Name) {
			bad(key+".name", "%q must be 1-32 lower-case letters, digits, '-' or '_'", l.Name)
		} else if names[l.Name] {
			bad(key+".name", "%q is used twice", l.Name)
		}
		names[l.Name] = true
		if !ucri.IsOID(l.OID) {
			bad(key+".oid", "%q is not an OID (digits separated by dots)", l.OID)
		} else if oids[l.OID] {
			bad(key+".oid", "%q is used by two links", l.OID)
		}
		oids[l.OID] = true
		if u, err := url.Parse(l.UCRM.URL); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			bad(key+".ucrm.url", "%q is not an http(s) URL", l.UCRM.URL)
		} else if u.User != nil {
			bad(key+".ucrm.url", "credentials belong in ucrm.username and ucrm.password, not in the URL")
		}
		if l.UCRM.Username == "" || l.UCRM.Password == "" {
			bad(key+".ucrm", "username and password are required")
		}
		if (l.UCRM.ClientCert == "") != (l.UCRM.ClientKey == "") {
			bad(key+".ucrm", "client_cert and client_key go together")
		}
		for j, u := range append(append([]string{}, l.Dispatchers...), l.Admins...) {
			if !strings.HasPrefix(u, "@") || !strings.Contains(u, ":") {
				bad(fmt.Sprintf("%s.dispatchers/admins[%d]", key, j), "%q is not a Matrix user ID", u)
			}
		}
		for j, r := range l.Rooms {
			if !validRoomRef(r) {
				bad(fmt.Sprintf("%s.rooms[%d]", key, j), "%q is not a room ID or alias", r)
			}
		}
		if len(l.Dispatchers) == 0 && len(l.Rooms) == 0 {
			bad(key+".dispatchers", "at least one Matrix user or room must work the link's cases")
		}
	}
	return errors.Join(errs...)
}

// validRoomRef reports whether r is a room alias (#local:server) or a room ID. A room ID is
// opaque: "!opaque:server" up to room version 11, which Dendrite v0.13.8 makes, but "!" and
// the create event's hash without a server name from version 12, which Synapse makes by
// default.
func validRoomRef(r string) bool {
	if len(r) < 2 || strings.ContainsAny(r, " \t\r\n") {
		return false
	}
	switch r[0] {
	case '#':
		return strings.Contains(r[1:], ":")
	case '!':
		return true
	}
	return false
}
