package sipua

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func validConfig() Config {
	return Config{
		Domain: "bridge.example.org",
		Listen: []Listener{{Transport: "udp", Addr: "127.0.0.1:5060"}},
		Proxy:  "sip:127.0.0.1:5070;transport=tcp",
	}
}

func TestNewValidation(t *testing.T) {
	tests := []struct {
		name   string
		modify func(c *Config)
		want   string // "" = valid
	}{
		{"valid", func(c *Config) {}, ""},
		{"missing domain", func(c *Config) { c.Domain = "" }, "domain: required"},
		{"bad domain", func(c *Config) { c.Domain = "a b" }, "domain: "},
		{"no listeners", func(c *Config) { c.Listen = nil }, "listen: at least one"},
		{"bad transport", func(c *Config) {
			c.Listen = append(c.Listen, Listener{Transport: "sctp", Addr: "127.0.0.1:0"})
		}, `listen[1].transport: "sctp" is not udp, tcp or tls`},
		{"bad addr", func(c *Config) { c.Listen[0].Addr = "127.0.0.1" }, "listen[0].address: "},
		{"tls without cert", func(c *Config) {
			c.Listen = append(c.Listen, Listener{Transport: "tls", Addr: "127.0.0.1:0"})
		}, "listen[1].cert_file: required for transport tls"},
		{"tls without key", func(c *Config) {
			c.Listen = append(c.Listen, Listener{Transport: "tls", Addr: "127.0.0.1:0", CertFile: "c.pem"})
		}, "listen[1].key_file: required for transport tls"},
		{"cert on udp", func(c *Config) { c.Listen[0].CertFile = "c.pem" }, "listen[0].cert_file: only for transport tls"},
		{"missing proxy", func(c *Config) { c.Proxy = "" }, "proxy: required"},
		{"proxy not sip", func(c *Config) { c.Proxy = "http://x" }, "proxy: "},
		{"proxy bad transport", func(c *Config) { c.Proxy = "sip:127.0.0.1;transport=sctp" }, `proxy: "sip:127.0.0.1;transport=sctp": transport "sctp"`},
		{"bad trusted peer", func(c *Config) { c.TrustedPeers = []string{"10.0.0.0/8", "nope"} }, `trusted_peers[1]: "nope" is not an IP or CIDR`},
		{"register without aor", func(c *Config) { c.Register = &Register{} }, "register.aor: required"},
		{"register bad aor", func(c *Config) { c.Register = &Register{AOR: "sip:example.org"} }, "register.aor: "},
		{"register short expiry", func(c *Config) {
			c.Register = &Register{AOR: "bridge@example.org", Expires: time.Second}
		}, "register.expires: 1s is too short"},
		{"negative body", func(c *Config) { c.MaxBodyBytes = -1 }, "max_body_bytes: -1 is out of range"},
		{"huge body", func(c *Config) { c.MaxBodyBytes = 10 << 20 }, "max_body_bytes: "},
		{"negative timeout", func(c *Config) { c.HandlerTimeout = -time.Second }, "handler_timeout: must not be negative"},
		{"negative in flight", func(c *Config) { c.MaxInFlight = -1 }, "max_in_flight: must not be negative"},
		{"bad contact", func(c *Config) { c.Contact = "example.org" }, "contact: "},
		{"wildcard listener needs contact", func(c *Config) { c.Listen[0].Addr = ":5060" }, "contact: required when listen[0].addr has no specific host"},
		{"wildcard listener with contact", func(c *Config) { c.Listen[0].Addr = "0.0.0.0:5060"; c.Contact = "192.0.2.1:5060" }, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := validConfig()
			tt.modify(&cfg)
			_, err := New(cfg, &okHandler{})
			if tt.want == "" {
				if err != nil {
					t.Fatalf("New: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("New accepted the config, want error containing %q", tt.want)
			}
			if !errors.Is(err, ErrConfig) {
				t.Errorf("error %v does not wrap ErrConfig", err)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q does not contain %q", err, tt.want)
			}
		})
	}
}

func TestNewCollectsAllProblems(t *testing.T) {
	_, err := New(Config{Listen: []Listener{{Transport: "x", Addr: "y"}}}, &okHandler{})
	if err == nil {
		t.Fatal("want error")
	}
	for _, key := range []string{"domain:", "listen[0].transport:", "listen[0].address:", "proxy:"} {
		if !strings.Contains(err.Error(), key) {
			t.Errorf("error %q lacks %q", err, key)
		}
	}
}

func TestNewDefaults(t *testing.T) {
	u, err := New(validConfig(), &okHandler{})
	if err != nil {
		t.Fatal(err)
	}
	if u.cfg.MaxBodyBytes != DefaultMaxBodyBytes || u.cfg.HandlerTimeout != DefaultHandlerTimeout || u.cfg.MaxInFlight != DefaultMaxInFlight {
		t.Errorf("defaults not applied: %+v", u.cfg)
	}
	if u.proxy.transport != "TCP" || u.proxy.hostPort != "127.0.0.1:5070" {
		t.Errorf("proxy = %+v", u.proxy)
	}
	if got := u.parser.MaxMessageLength; got != DefaultMaxBodyBytes+maxHeaderBytes {
		t.Errorf("parser limit %d", got)
	}
}
