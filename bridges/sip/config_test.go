package sip_test

import (
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/switchboard-matrix/switchboard/bridges/sip"
	"github.com/switchboard-matrix/switchboard/config"
)

func section(t *testing.T, text string) config.ModuleConfig {
	t.Helper()
	var m config.ModuleConfig
	if err := yaml.Unmarshal([]byte(text), &m); err != nil {
		t.Fatal(err)
	}
	return m
}

func TestParseConfig(t *testing.T) {
	const valid = `enabled: true
domain: matrix.example.org
listen: [{transport: udp, address: "127.0.0.1:5070"}]
proxy: "sip:127.0.0.1:5060"
domains: ["example.org"]
`
	tests := []struct {
		name    string
		text    string
		wants   []string // substrings of the error; none: valid
		newOnly bool     // the error comes from New (the transport checks), not ParseConfig
	}{
		{name: "minimal", text: valid},
		{name: "empty section", text: "enabled: true", wants: []string{
			"modules.sip.domain: required", "modules.sip.listen: at least one", "modules.sip.proxy: required", "modules.sip.domains: required"}},
		{name: "bad transport", text: strings.Replace(valid, "udp", "sctp", 1), wants: []string{`modules.sip.listen[0].transport: "sctp"`}},
		{name: "bad prefix", text: valid + "prefix: sip_\n", wants: []string{"modules.sip.prefix"}},
		{name: "bad domain pattern", text: strings.Replace(valid, `["example.org"]`, `["exa mple"]`, 1), wants: []string{"modules.sip.domains"}},
		{name: "register without password", text: valid + "register: {aor: 'sip:gw@example.org', username: gw}\n", wants: []string{"modules.sip.register: username and password"}},
		{name: "media listen without public url", text: valid + "media: {listen: '127.0.0.1:8090'}\n", wants: []string{"modules.sip.media: listen and public_url go together"}},
		{name: "media public url not http", text: valid + "media: {listen: '127.0.0.1:8090', public_url: 'ftp://x'}\n", wants: []string{"media.public_url"}},
		{name: "upper-case domain", text: strings.Replace(valid, "matrix.example.org", "Matrix.Example.org", 1), wants: []string{"modules.sip.domain: \"Matrix.Example.org\" must be lower case"}},
		{name: "upper-case prefix", text: valid + "prefix: _SIP_\n", wants: []string{"modules.sip.prefix"}},
		{name: "message limit too large", text: valid + "max_message_bytes: 2000000\n", wants: []string{"modules.sip.max_message_bytes: 2000000 is over the limit"}},
		{name: "unknown key", text: valid + "colour: blue\n", wants: []string{"colour"}},
		{name: "tls without certificate", text: strings.Replace(valid, "udp", "tls", 1), wants: []string{"listen[0]"}, newOnly: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := sip.ParseConfig(section(t, tt.text))
			if err == nil && tt.newOnly {
				_, err = sip.New(cfg) // the transport's own checks
			}
			if len(tt.wants) == 0 {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("no error, want %q", tt.wants)
			}
			for _, w := range tt.wants {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
}

func TestDefaults(t *testing.T) {
	cfg, err := sip.ParseConfig(section(t, `enabled: true
domain: matrix.example.org
listen: [{transport: tcp, address: "127.0.0.1:5070"}]
proxy: "sip:127.0.0.1:5060;transport=tcp"
domains: ["*"]
`))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Prefix != "_sip_" || cfg.MaxMessageBytes != 64<<10 || !*cfg.Presence || cfg.SendTimeout.Std().Seconds() != 40 {
		t.Errorf("defaults: %+v", cfg)
	}
}
