package sip

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/switchboard-matrix/switchboard/bridges/sip/sipuri"
	"github.com/switchboard-matrix/switchboard/config"
)

// Config is the module's section under modules.sip in the Switchboard config.
type Config struct {
	// Domain is the bridge's own SIP domain, such as matrix.example.org: every Matrix user
	// is reachable as a SIP URI on it. The organisation's proxy routes it to the bridge.
	// Required.
	Domain string `yaml:"domain"`
	// Prefix of the ghosts' localparts; default "_sip_".
	Prefix string `yaml:"prefix"`
	// Listen are the bridge's SIP listeners: transport (udp, tcp, tls), address and, for
	// tls, certificate and key files. At least one.
	Listen []ListenConfig `yaml:"listen"`
	// Proxy is the organisation's SIP proxy (outbound proxy and registrar), a SIP URI such
	// as "sip:proxy.example.org:5060;transport=tcp" or "sips:proxy.example.org:5061".
	// Every request of the bridge goes through it. Required.
	Proxy string `yaml:"proxy"`
	// CAFile adds the certificates in this PEM file to the system's roots for TLS to the
	// proxy. Certificate verification is always on.
	CAFile string `yaml:"ca_file"`
	// TrustedPeers are the addresses (IPs or CIDRs) allowed to send requests to the
	// bridge; default the proxy's addresses. The bridge trusts the From of what they send
	// (the proxy authenticates its users): nothing else may reach the bridge.
	TrustedPeers []string `yaml:"trusted_peers"`
	// Register, when set, registers the bridge at the proxy as a trunk/gateway with digest
	// authentication.
	Register *RegisterConfig `yaml:"register"`
	// Domains are the SIP domains Matrix users may reach and receive messages from:
	// "example.org", "*.example.org" or "*". Required (an empty list admits none).
	Domains []string `yaml:"domains"`
	// MaxMessageBytes is the largest message body accepted from SIP and sent to SIP;
	// default 64 KiB. Larger messages are refused with a clear answer (413 to SIP, a
	// failure notice to Matrix).
	MaxMessageBytes int `yaml:"max_message_bytes"`
	// Presence bridges presence both ways; default true.
	Presence *bool `yaml:"presence"`
	// SendTimeout bounds one attempt to deliver a MESSAGE (the SIP transaction itself
	// times out after 32 s); default 40s.
	SendTimeout config.Duration `yaml:"send_timeout"`
	// Media serves files sent from Matrix to SIP users as links.
	Media MediaConfig `yaml:"media"`
}

// MediaConfig is the bridge's link server for files from Matrix.
type MediaConfig struct {
	// Listen is the link server's address, host:port; empty: no links (a SIP user is told
	// that a file waits in Matrix).
	Listen string `yaml:"listen"`
	// PublicURL is how SIP users reach the link server (usually through a reverse proxy
	// with TLS), such as https://sip-files.example.org. Required with listen.
	PublicURL string `yaml:"public_url"`
	// LinkTTL is how long a link works; default 24h.
	LinkTTL config.Duration `yaml:"link_ttl"`
	// MaxBytes is the largest file served; default 100 MiB.
	MaxBytes int64 `yaml:"max_bytes"`
}

// ListenConfig is one SIP listener.
type ListenConfig struct {
	Transport string `yaml:"transport"`
	Address   string `yaml:"address"`
	CertFile  string `yaml:"cert_file"`
	KeyFile   string `yaml:"key_file"`
}

// RegisterConfig registers the bridge at the proxy.
type RegisterConfig struct {
	AOR      string          `yaml:"aor"`
	Username string          `yaml:"username"`
	Password string          `yaml:"password"`
	Expires  config.Duration `yaml:"expires"`
}

// Defaults of Config.
const (
	DefaultPrefix          = "_sip_"
	DefaultMaxMessageBytes = 64 << 10
	DefaultSendTimeout     = 40 * time.Second
	maxMessageLimit        = 1 << 20 // the transport's bound (sipua)
)

// ParseConfig decodes and validates a modules.sip section.
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
	if c.MaxMessageBytes <= 0 {
		c.MaxMessageBytes = DefaultMaxMessageBytes
	}
	if c.Presence == nil {
		t := true
		c.Presence = &t
	}
	if c.SendTimeout <= 0 {
		c.SendTimeout = config.Duration(DefaultSendTimeout)
	}
	if c.Media.LinkTTL <= 0 {
		c.Media.LinkTTL = config.Duration(24 * time.Hour)
	}
	if c.Media.MaxBytes <= 0 {
		c.Media.MaxBytes = 100 << 20
	}
}

// Validate lists every problem, each with its key path under modules.sip. The transport
// settings are checked again, in detail, by the SIP user agent (New).
func (c *Config) Validate() error {
	var errs []error
	bad := func(key, format string, args ...any) {
		errs = append(errs, fmt.Errorf("modules.sip.%s: %s", key, fmt.Sprintf(format, args...)))
	}
	if c.Domain == "" {
		bad("domain", "required (the bridge's SIP domain, e.g. matrix.example.org)")
	} else if c.Domain != strings.ToLower(c.Domain) {
		bad("domain", "%q must be lower case (SIP host names are compared in lower case)", c.Domain)
	}
	if !strings.HasPrefix(c.Prefix, "_") || strings.ContainsAny(c.Prefix, ":@#!=") || c.Prefix != strings.ToLower(c.Prefix) {
		bad("prefix", "%q must start with '_', be lower case and must not contain ':', '@', '#', '!' or '='", c.Prefix)
	}
	if c.MaxMessageBytes > maxMessageLimit {
		bad("max_message_bytes", "%d is over the limit of %d", c.MaxMessageBytes, maxMessageLimit)
	}
	if len(c.Listen) == 0 {
		bad("listen", "at least one listener is required")
	}
	for i, l := range c.Listen {
		switch l.Transport {
		case "udp", "tcp", "tls":
		default:
			bad(fmt.Sprintf("listen[%d].transport", i), "%q must be udp, tcp or tls", l.Transport)
		}
		if l.Address == "" {
			bad(fmt.Sprintf("listen[%d].address", i), "required (host:port)")
		}
	}
	if c.Proxy == "" {
		bad("proxy", "required (the SIP proxy's URI, e.g. sip:proxy.example.org;transport=tcp)")
	}
	if len(c.Domains) == 0 {
		bad("domains", "required: the SIP domains Matrix users may reach (\"*\" for any)")
	} else if _, err := sipuri.ParseDomainList(c.Domains); err != nil {
		bad("domains", "%v", err)
	}
	if (c.Media.Listen == "") != (c.Media.PublicURL == "") {
		bad("media", "listen and public_url go together")
	} else if u := c.Media.PublicURL; u != "" && !strings.HasPrefix(u, "https://") && !strings.HasPrefix(u, "http://") {
		bad("media.public_url", "%q must be an http:// or https:// URL", u)
	}
	if r := c.Register; r != nil {
		if r.AOR == "" {
			bad("register.aor", "required when register is set")
		}
		if r.Username == "" || r.Password == "" {
			bad("register", "username and password are required when register is set")
		}
	}
	return errors.Join(errs...)
}
