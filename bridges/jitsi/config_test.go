package jitsi

import (
	"strings"
	"testing"
	"time"

	"github.com/switchboard-matrix/switchboard/config"
)

func TestConfigValidate(t *testing.T) {
	base := func() Config {
		return Config{URL: "https://meet.example.org/", OpenIDURL: "https://matrix.example.org"}
	}
	tests := []struct {
		name   string
		change func(*Config)
		want   string // "" = valid
	}{
		{"defaults", func(*Config) {}, ""},
		{"no url", func(c *Config) { c.URL = "" }, "modules.jitsi.url: required"},
		{"url with query", func(c *Config) { c.URL = "https://meet.example.org/?a=b" }, "modules.jitsi.url"},
		{"ftp url", func(c *Config) { c.URL = "ftp://meet.example.org" }, "modules.jitsi.url"},
		{"unknown auth", func(c *Config) { c.Auth = "ldap" }, `modules.jitsi.auth: "ldap" must be uvs, jwt or none`},
		{"uvs without token", func(c *Config) { c.Auth = AuthUVS; c.HTTP.Listen = "127.0.0.1:0" }, "modules.jitsi.uvs.auth_token: required"},
		{"uvs without listener", func(c *Config) { c.Auth = AuthUVS; c.UVS.AuthToken = "x" }, "modules.jitsi.http.listen"},
		{"uvs", func(c *Config) { c.Auth = AuthUVS; c.UVS.AuthToken = "x"; c.HTTP.Listen = "127.0.0.1:8095" }, ""},
		{"jwt short secret", func(c *Config) {
			c.Auth, c.HTTP.Listen, c.JWT = AuthJWT, "127.0.0.1:0", JWTConfig{AppID: "a", Secret: "short"}
		}, "modules.jitsi.jwt.secret: too short"},
		{"jwt secret and key", func(c *Config) {
			c.Auth, c.HTTP.Listen, c.JWT = AuthJWT, "127.0.0.1:0", JWTConfig{AppID: "a", Secret: strings.Repeat("s", 32), PrivateKeyFile: "k.pem", KeyID: "k"}
		}, "exactly one of secret"},
		{"jwt key without kid", func(c *Config) {
			c.Auth, c.HTTP.Listen, c.JWT = AuthJWT, "127.0.0.1:0", JWTConfig{AppID: "a", PrivateKeyFile: "k.pem"}
		}, "modules.jitsi.jwt.key_id: required"},
		{"jwt without app_id", func(c *Config) {
			c.Auth, c.HTTP.Listen, c.JWT = AuthJWT, "127.0.0.1:0", JWTConfig{Secret: strings.Repeat("s", 32)}
		}, "modules.jitsi.jwt.app_id: required"},
		{"jwt without public url", func(c *Config) {
			c.Auth, c.HTTP.Listen, c.JWT = AuthJWT, "127.0.0.1:0", JWTConfig{AppID: "a", Secret: strings.Repeat("s", 32)}
		}, "modules.jitsi.http.public_url"},
		{"jwt", func(c *Config) {
			c.Auth, c.HTTP.Listen, c.JWT = AuthJWT, "127.0.0.1:0", JWTConfig{AppID: "a", Secret: strings.Repeat("s", 32)}
			c.HTTP.PublicURL = "https://matrix.example.org/jitsi"
		}, ""},
		{"xmpp without password", func(c *Config) {
			c.XMPP = XMPPConfig{Address: "meet.example.org:5222", JID: "w@recorder.meet.example.org"}
		}, "modules.jitsi.xmpp: jid and password"},
		{"xmpp bad tls", func(c *Config) {
			c.XMPP = XMPPConfig{Address: "meet.example.org:5222", JID: "w@x", Password: "p", TLS: "ssl"}
		}, "modules.jitsi.xmpp.tls"},
		{"bot localpart", func(c *Config) { c.Bot.Localpart = "Meet:x" }, "modules.jitsi.bot.localpart"},
		{"negative rate", func(c *Config) { c.RateLimit.PerIP.Burst = -1 }, "modules.jitsi.rate_limit.per_ip"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := base()
			tt.change(&c)
			c.defaults()
			err := c.Validate()
			switch {
			case tt.want == "" && err != nil:
				t.Fatalf("unexpected error: %v", err)
			case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
				t.Fatalf("error %v, want one containing %q", err, tt.want)
			}
		})
	}
}

func TestConfigDefaults(t *testing.T) {
	c := Config{URL: "https://meet.example.org/"}
	c.defaults()
	if c.URL != "https://meet.example.org" || c.Domain != "meet.example.org" || c.MUCDomain != "conference.meet.example.org" ||
		c.Auth != AuthNone || c.Bot.Localpart != "_jitsi" || c.EndGrace != config.Duration(DefaultEndGrace) ||
		c.JWT.Subject != "meet.example.org" || c.XMPP.Ignore[0] != "focus" {
		t.Errorf("defaults: %+v", c)
	}
}

func TestDuration(t *testing.T) {
	for _, tt := range []struct {
		in   string
		want string
	}{{"10s", "less than a minute"}, {"61s", "1 minute"}, {"12m20s", "12 minutes"}, {"1h", "1 h"}, {"1h5m", "1 h 5 min"}} {
		d, _ := time.ParseDuration(tt.in)
		if got := duration(d); got != tt.want {
			t.Errorf("duration(%s) = %q, want %q", tt.in, got, tt.want)
		}
	}
}
