package jitsi

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/switchboard-matrix/switchboard/config"
)

// Config is the module's section under modules.jitsi in the Switchboard config.
type Config struct {
	// URL is the Jitsi deployment's public URL, such as https://meet.example.org. Required.
	URL string `yaml:"url"`
	// Domain is Jitsi's XMPP domain (Prosody's main VirtualHost); default the host of URL.
	// It is the default of muc_domain and of the JWT's subject. (The widget's "domain",
	// where Element loads Jitsi from, is always the host of URL.)
	Domain string `yaml:"domain"`
	// MUCDomain is Jitsi's conference MUC; default "conference." + Domain.
	MUCDomain string `yaml:"muc_domain"`
	// Auth is how Jitsi lets people in: "uvs" (Jitsi's Prosody runs
	// prosody-mod-auth-matrix-user-verification with its uvs_base_url pointed at this
	// module), "jwt" (Jitsi's token authentication; the module mints tokens for members)
	// or "none" (an open Jitsi; only the conference name protects the meeting). Default
	// "none".
	Auth string `yaml:"auth"`
	// OpenIDURL is where the homeserver answers /_matrix/federation/v1/openid/userinfo
	// (Synapse: a listener with the "openid" resource); default homeserver.address.
	OpenIDURL string `yaml:"openid_url"`
	// UVS configures auth "uvs".
	UVS UVSConfig `yaml:"uvs"`
	// JWT configures auth "jwt".
	JWT JWTConfig `yaml:"jwt"`
	// HTTP is the module's listener for the verification endpoints (auth uvs and jwt).
	HTTP HTTPConfig `yaml:"http"`
	// XMPP is the account that watches the conference MUC for who is in the call; empty
	// address: no participants list and no start and end notices.
	XMPP XMPPConfig `yaml:"xmpp"`
	// Bot is the module's Matrix user, who adds and removes the widget.
	Bot BotConfig `yaml:"bot"`
	// ElementURL is the Jitsi wrapper written into the widget's URL, as Element Web writes
	// it; default https://app.element.io/jitsi.html. Element renders Jitsi widgets with its
	// own wrapper, so this matters to other clients only.
	ElementURL string `yaml:"element_url"`
	// ParticipantsState writes who is in the call into the room's state
	// (net.switchboard.jitsi.participants); default true. State events are never
	// end-to-end encrypted: where participants' names must not be in the clear on the
	// homeserver, turn it off (the start and end notices, encrypted like every message in an
	// encrypted room, remain).
	ParticipantsState *bool `yaml:"participants_state"`
	// EndGrace is how long a conference must stay empty before the meeting counts as ended
	// (a quick rejoin within it gives no notices); default 60s.
	EndGrace config.Duration `yaml:"end_grace"`
	// RateLimit bounds the verification endpoints per client address and per Matrix user.
	RateLimit RateLimitConfig `yaml:"rate_limit"`
}

// UVSConfig configures the matrix-user-verification-service endpoints.
type UVSConfig struct {
	// AuthToken is the bearer token Prosody sends (the module's uvs_auth_token). Required
	// with auth uvs.
	AuthToken string `yaml:"auth_token"`
}

// JWTConfig configures minted Jitsi tokens (auth jwt), matching Jitsi's token settings.
type JWTConfig struct {
	// AppID is the token's issuer ("iss"), Jitsi's app_id. Required with auth jwt.
	AppID string `yaml:"app_id"`
	// Audience is "aud"; default "jitsi".
	Audience string `yaml:"audience"`
	// Subject is "sub" (Jitsi's domain or tenant); default Domain.
	Subject string `yaml:"subject"`
	// Secret is Jitsi's app_secret for HS256. Either it or PrivateKeyFile.
	Secret string `yaml:"secret"`
	// PrivateKeyFile is a PEM RSA key for RS256 (Jitsi's ASAP keys), with KeyID as "kid".
	PrivateKeyFile string `yaml:"private_key_file"`
	KeyID          string `yaml:"key_id"`
	// TTL is a token's lifetime; default 1h.
	TTL config.Duration `yaml:"ttl"`
}

// HTTPConfig is the module's HTTP listener.
type HTTPConfig struct {
	// Listen is host:port. Required with auth uvs or jwt.
	Listen string `yaml:"listen"`
	// PublicURL is how browsers reach the listener (usually through a reverse proxy with
	// TLS), such as https://matrix.example.org/jitsi. Required with auth jwt: the room's
	// widget is the join page there.
	PublicURL string `yaml:"public_url"`
}

// XMPPConfig is the watching account (see package muc).
type XMPPConfig struct {
	// Address is Jitsi's Prosody c2s listener, host:port.
	Address string `yaml:"address"`
	// JID is the account, best on a hidden domain of Jitsi (like Jibri's recorder
	// account), so that meetings do not show it.
	JID      string `yaml:"jid"`
	Password string `yaml:"password"`
	// TLS is "starttls" (default), "direct" or "none" (loopback addresses only).
	TLS    string `yaml:"tls"`
	CAFile string `yaml:"ca_file"`
	// TLSServerName is the name the server's certificate must show; default the JID's
	// domain.
	TLSServerName string `yaml:"tls_server_name"`
	// Nick is the watcher's nick in the conference; default "switchboard".
	Nick string `yaml:"nick"`
	// Ignore are nicks that are not participants; default ["focus"] (Jicofo).
	Ignore []string `yaml:"ignore"`
}

// BotConfig is the module's Matrix user.
type BotConfig struct {
	// Localpart default "_jitsi".
	Localpart string `yaml:"localpart"`
	// DisplayName default "Meetings".
	DisplayName string `yaml:"display_name"`
}

// RateLimitConfig bounds the verification endpoints.
type RateLimitConfig struct {
	PerIP   RateConfig `yaml:"per_ip"`
	PerUser RateConfig `yaml:"per_user"`
}

// RateConfig is a token bucket: PerSecond requests on average, Burst at once.
type RateConfig struct {
	PerSecond float64 `yaml:"per_second"`
	Burst     int     `yaml:"burst"`
}

// The values of Config.Auth.
const (
	AuthNone = "none"
	AuthUVS  = "uvs"
	AuthJWT  = "jwt"
)

// Defaults of Config.
const (
	DefaultBotLocalpart   = "_jitsi"
	DefaultBotDisplayName = "Meetings"
	DefaultElementURL     = "https://app.element.io/jitsi.html"
	DefaultEndGrace       = 60 * time.Second
	DefaultJWTTTL         = time.Hour
)

// ParseConfig decodes and validates a modules.jitsi section; homeserverURL (the core's
// homeserver.address) is the default of openid_url.
func ParseConfig(section config.ModuleConfig, homeserverURL string) (Config, error) {
	var c Config
	if err := section.Decode(&c); err != nil {
		return c, err
	}
	if c.OpenIDURL == "" {
		c.OpenIDURL = homeserverURL
	}
	c.defaults()
	return c, c.Validate()
}

func (c *Config) defaults() {
	c.OpenIDURL = strings.TrimRight(c.OpenIDURL, "/")
	c.URL = strings.TrimRight(c.URL, "/")
	if u, err := url.Parse(c.URL); err == nil && c.Domain == "" {
		c.Domain = u.Hostname()
	}
	if c.MUCDomain == "" && c.Domain != "" {
		c.MUCDomain = "conference." + c.Domain
	}
	if c.Auth == "" {
		c.Auth = AuthNone
	}
	if c.JWT.Audience == "" {
		c.JWT.Audience = "jitsi"
	}
	if c.JWT.Subject == "" {
		c.JWT.Subject = c.Domain
	}
	if c.JWT.TTL <= 0 {
		c.JWT.TTL = config.Duration(DefaultJWTTTL)
	}
	if c.XMPP.TLS == "" {
		c.XMPP.TLS = "starttls"
	}
	if c.XMPP.Nick == "" {
		c.XMPP.Nick = "switchboard"
	}
	if c.XMPP.Ignore == nil {
		c.XMPP.Ignore = []string{"focus"}
	}
	if c.Bot.Localpart == "" {
		c.Bot.Localpart = DefaultBotLocalpart
	}
	if c.Bot.DisplayName == "" {
		c.Bot.DisplayName = DefaultBotDisplayName
	}
	if c.ElementURL == "" {
		c.ElementURL = DefaultElementURL
	}
	if c.ParticipantsState == nil {
		t := true
		c.ParticipantsState = &t
	}
	if c.EndGrace <= 0 {
		c.EndGrace = config.Duration(DefaultEndGrace)
	}
}

// Validate lists every problem, each with its key path under modules.jitsi.
func (c *Config) Validate() error {
	var errs []error
	bad := func(key, format string, args ...any) {
		errs = append(errs, fmt.Errorf("modules.jitsi.%s: %s", key, fmt.Sprintf(format, args...)))
	}
	if u, err := url.Parse(c.URL); c.URL == "" {
		bad("url", "required (Jitsi's public URL, e.g. https://meet.example.org)")
	} else if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
		bad("url", "%q must be an http:// or https:// URL without query", c.URL)
	}
	if c.Domain != strings.ToLower(c.Domain) || strings.ContainsAny(c.Domain, "@/ ") {
		bad("domain", "%q must be a lower-case host name", c.Domain)
	}
	if c.MUCDomain != strings.ToLower(c.MUCDomain) || strings.ContainsAny(c.MUCDomain, "@/ ") {
		bad("muc_domain", "%q must be a lower-case host name", c.MUCDomain)
	}
	switch c.Auth {
	case AuthNone:
	case AuthUVS:
		if c.UVS.AuthToken == "" {
			bad("uvs.auth_token", "required with auth uvs (the bearer token Prosody's uvs_auth_token sends)")
		}
	case AuthJWT:
		if c.JWT.AppID == "" {
			bad("jwt.app_id", "required with auth jwt (Jitsi's app_id)")
		}
		if (c.JWT.Secret == "") == (c.JWT.PrivateKeyFile == "") {
			bad("jwt", "exactly one of secret (HS256) and private_key_file (RS256) is required with auth jwt")
		}
		if u, err := url.Parse(c.HTTP.PublicURL); c.HTTP.PublicURL == "" || err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.RawQuery != "" {
			bad("http.public_url", "%q must be an http:// or https:// URL without query (required with auth jwt: how browsers reach http.listen)", c.HTTP.PublicURL)
		}
		if c.JWT.PrivateKeyFile != "" && c.JWT.KeyID == "" {
			bad("jwt.key_id", "required with private_key_file (Jitsi finds the public key by it)")
		}
		if c.JWT.Secret != "" && len(c.JWT.Secret) < 32 {
			// RFC 7518 section 3.2: an HS256 key is at least as long as the hash (256 bits);
			// JWT libraries such as go-jose refuse shorter ones.
			bad("jwt.secret", "too short: HS256 needs at least 32 bytes (RFC 7518, 3.2)")
		}
	default:
		bad("auth", "%q must be uvs, jwt or none", c.Auth)
	}
	if c.Auth != AuthNone {
		if u, err := url.Parse(c.OpenIDURL); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			bad("openid_url", "%q must be an http:// or https:// URL (default homeserver.address)", c.OpenIDURL)
		}
		if _, _, err := net.SplitHostPort(c.HTTP.Listen); err != nil {
			bad("http.listen", "%q must be host:port (required with auth %s)", c.HTTP.Listen, c.Auth)
		}
	}
	if x := c.XMPP; x.Address != "" {
		if _, _, err := net.SplitHostPort(x.Address); err != nil {
			bad("xmpp.address", "%q must be host:port", x.Address)
		}
		if x.JID == "" || x.Password == "" {
			bad("xmpp", "jid and password are required with address")
		}
		switch x.TLS {
		case "starttls", "direct", "none":
		default:
			bad("xmpp.tls", "%q must be starttls, direct or none", x.TLS)
		}
		if x.CAFile != "" {
			if _, err := os.Stat(x.CAFile); err != nil {
				bad("xmpp.ca_file", "%v", err)
			}
		}
	}
	if l := c.Bot.Localpart; strings.ContainsAny(l, ":@#!= ") || l != strings.ToLower(l) {
		bad("bot.localpart", "%q must be a lower-case localpart", l)
	}
	if u, err := url.Parse(c.ElementURL); err != nil || u.Scheme != "https" && u.Scheme != "http" {
		bad("element_url", "%q must be an http:// or https:// URL", c.ElementURL)
	}
	for key, r := range map[string]RateConfig{"rate_limit.per_ip": c.RateLimit.PerIP, "rate_limit.per_user": c.RateLimit.PerUser} {
		if r.PerSecond < 0 || r.Burst < 0 {
			bad(key, "per_second and burst must not be negative")
		}
	}
	return errors.Join(errs...)
}
