package xmpp

import (
	"errors"
	"fmt"
	"net"
	"strings"
	"time"

	"github.com/switchboard-matrix/switchboard/bridges/xmpp/xid"
	"github.com/switchboard-matrix/switchboard/config"
)

// Config is the module's section under modules.xmpp in the Switchboard config.
type Config struct {
	// Component is the XEP-0114 connection to the XMPP server.
	Component ComponentConfig `yaml:"component"`
	// Prefix of the ghosts' localparts and of the MUC aliases; default "_xmpp_".
	Prefix string `yaml:"prefix"`
	// MaxStanzaBytes is the largest inbound stanza accepted, as the bridge re-encodes it
	// (which may be larger than on the wire); default 512 KiB.
	MaxStanzaBytes int `yaml:"max_stanza_bytes"`
	// Media limits files in both directions.
	Media MediaConfig `yaml:"media"`
	// Presence bridges XMPP presence to Matrix presence and Matrix presence to the
	// puppets; default true.
	Presence *bool `yaml:"presence"`
	// MUCHistory is how many messages of a MUC's history are bridged when a portal is
	// first joined; later joins ask for what was missed since the last bridged message.
	// Default 20.
	MUCHistory *int `yaml:"muc_history"`
}

// ComponentConfig is the external component connection.
type ComponentConfig struct {
	// Address of the server's component port, host:port (Prosody: component_ports,
	// default 5347). Required.
	Address string `yaml:"address"`
	// Domain is the component's JID domain, such as matrix.example.org. Required.
	Domain string `yaml:"domain"`
	// Secret is the component's shared secret. Required; never logged.
	Secret string `yaml:"secret"`
	// ServerDomain is the XMPP server's own domain (for confirming pings and disco);
	// default Domain without its first label.
	ServerDomain string `yaml:"server_domain"`
	// UploadService is the JID of the XEP-0363 HTTP upload service that Matrix files are
	// put on, such as upload.example.org. Empty: files from Matrix are refused, and the
	// sender sees a failure notice.
	UploadService string `yaml:"upload_service"`
	// MinBackoff and MaxBackoff bound the reconnect delay; defaults 500ms and 30s.
	MinBackoff config.Duration `yaml:"min_backoff"`
	MaxBackoff config.Duration `yaml:"max_backoff"`
	// SendTimeout bounds one attempt to deliver a stanza, including the wait for the
	// connection; a failed attempt is retried with the appservice's backoff, and when the
	// retries are exhausted the Matrix sender is told. Default 30s.
	SendTimeout config.Duration `yaml:"send_timeout"`
}

// MediaConfig limits media.
type MediaConfig struct {
	// MaxBytes is the largest file bridged either way; default 100 MiB.
	MaxBytes int64 `yaml:"max_bytes"`
	// AllowPrivate lets the bridge download XMPP links that resolve to loopback or private
	// addresses (for a server on the same host or LAN). Default false.
	AllowPrivate bool `yaml:"allow_private"`
	// MaxLinks is how many out-of-band links of one XMPP message are downloaded into
	// Matrix; the others arrive as links. Default 4.
	MaxLinks int `yaml:"max_links"`
	// MessageTimeout bounds the downloads of one XMPP message's links together; a link
	// not fetched in time arrives as a link. Default 60s.
	MessageTimeout config.Duration `yaml:"message_timeout"`
	// Downloads is how many messages' links are downloaded at once, across all
	// conversations. Default 4.
	Downloads int `yaml:"downloads"`
}

// Defaults of Config.
const (
	DefaultMaxStanzaBytes = 512 << 10
	DefaultMaxMediaBytes  = 100 << 20
	DefaultMUCHistory     = 20
	DefaultSendTimeout    = 30 * time.Second
	DefaultMaxLinks       = 4
	DefaultMessageTimeout = 60 * time.Second
	DefaultDownloads      = 4
)

// ParseConfig decodes and validates a modules.xmpp section.
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
		c.Prefix = xid.DefaultPrefix
	}
	if c.MaxStanzaBytes <= 0 {
		c.MaxStanzaBytes = DefaultMaxStanzaBytes
	}
	if c.Media.MaxBytes <= 0 {
		c.Media.MaxBytes = DefaultMaxMediaBytes
	}
	if c.Media.MaxLinks == 0 {
		c.Media.MaxLinks = DefaultMaxLinks
	}
	if c.Media.MessageTimeout == 0 {
		c.Media.MessageTimeout = config.Duration(DefaultMessageTimeout)
	}
	if c.Media.Downloads == 0 {
		c.Media.Downloads = DefaultDownloads
	}
	if c.Presence == nil {
		t := true
		c.Presence = &t
	}
	if c.MUCHistory == nil {
		n := DefaultMUCHistory
		c.MUCHistory = &n
	}
	if c.Component.SendTimeout <= 0 {
		c.Component.SendTimeout = config.Duration(DefaultSendTimeout)
	}
	if c.Component.ServerDomain == "" {
		if _, rest, ok := strings.Cut(c.Component.Domain, "."); ok {
			c.Component.ServerDomain = rest
		}
	}
}

// Validate lists every problem, each with its key path under modules.xmpp.
func (c *Config) Validate() error {
	var errs []error
	bad := func(key, format string, args ...any) {
		errs = append(errs, fmt.Errorf("modules.xmpp.%s: %s", key, fmt.Sprintf(format, args...)))
	}
	if c.Component.Address == "" {
		bad("component.address", "required (host:port of the XMPP server's component port)")
	} else if _, _, err := net.SplitHostPort(c.Component.Address); err != nil {
		bad("component.address", "%q is not host:port", c.Component.Address)
	}
	if c.Component.Domain == "" {
		bad("component.domain", "required (the component's domain, e.g. matrix.example.org)")
	}
	if c.Component.Secret == "" {
		bad("component.secret", "required")
	}
	if c.Component.ServerDomain == "" && c.Component.Domain != "" {
		bad("component.server_domain", "required when component.domain has one label")
	}
	if !strings.HasPrefix(c.Prefix, "_") || strings.ContainsAny(c.Prefix, ":@#!") {
		bad("prefix", "%q must start with '_' and must not contain ':', '@', '#' or '!'", c.Prefix)
	}
	if c.Media.MaxLinks < 0 {
		bad("media.max_links", "must be positive")
	}
	if c.Media.MessageTimeout < 0 {
		bad("media.message_timeout", "must be positive")
	}
	if c.Media.Downloads < 0 {
		bad("media.downloads", "must be positive")
	}
	if *c.MUCHistory < 0 {
		bad("muc_history", "must be >= 0")
	}
	if time.Duration(c.Component.MaxBackoff) != 0 && c.Component.MaxBackoff < c.Component.MinBackoff {
		bad("component.max_backoff", "must be >= component.min_backoff")
	}
	return errors.Join(errs...)
}
