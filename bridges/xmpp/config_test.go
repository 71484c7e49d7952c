package xmpp_test

import (
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/switchboard-matrix/switchboard/bridges/xmpp"
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
component:
  address: 127.0.0.1:5347
  domain: matrix.example.org
  secret: s3cret
`
	tests := []struct {
		name  string
		text  string
		wants []string // substrings of the error; none: valid
	}{
		{name: "minimal", text: valid},
		{name: "empty section", text: "enabled: true", wants: []string{
			"modules.xmpp.component.address: required", "modules.xmpp.component.domain: required", "modules.xmpp.component.secret: required"}},
		{name: "bad address", text: strings.Replace(valid, "127.0.0.1:5347", "localhost", 1), wants: []string{`"localhost" is not host:port`}},
		{name: "one-label domain", text: strings.Replace(valid, "matrix.example.org", "matrix", 1), wants: []string{"server_domain: required"}},
		{name: "bad prefix", text: valid + "prefix: xmpp_\n", wants: []string{"modules.xmpp.prefix"}},
		{name: "negative history", text: valid + "muc_history: -1\n", wants: []string{"muc_history: must be >= 0"}},
		{name: "backoffs reversed", text: valid + "  min_backoff: 10s\n  max_backoff: 1s\n", wants: []string{"max_backoff"}},
		{name: "negative media limits", text: valid + "media:\n  max_links: -1\n  message_timeout: -1s\n  downloads: -2\n", wants: []string{
			"media.max_links: must be positive", "media.message_timeout: must be positive", "media.downloads: must be positive"}},
		{name: "unknown key", text: valid + "colour: blue\n", wants: []string{"colour"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := xmpp.ParseConfig(section(t, tc.text))
			if len(tc.wants) == 0 {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				if cfg.Prefix != "_xmpp_" || cfg.Component.ServerDomain != "example.org" || *cfg.MUCHistory != xmpp.DefaultMUCHistory ||
					cfg.Media.MaxLinks != xmpp.DefaultMaxLinks || cfg.Media.MessageTimeout.Std() != xmpp.DefaultMessageTimeout ||
					cfg.Media.Downloads != xmpp.DefaultDownloads {
					t.Errorf("defaults not applied: %+v", cfg)
				}
				return
			}
			if err == nil {
				t.Fatal("no error")
			}
			for _, want := range tc.wants {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q does not mention %q", err, want)
				}
			}
			if strings.Contains(err.Error(), "s3cret") {
				t.Errorf("error %q shows the secret", err)
			}
		})
	}
}

func TestNamespaces(t *testing.T) {
	cfg, err := xmpp.ParseConfig(section(t, "enabled: true\ncomponent: {address: 'h:1', domain: a.b, secret: x}\nprefix: _x_"))
	if err != nil {
		t.Fatal(err)
	}
	b, err := xmpp.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ns := b.Namespaces()
	if len(ns.Users) != 1 || ns.Users[0].Localpart != "_x_.+" || !ns.Users[0].Exclusive ||
		len(ns.Aliases) != 1 || ns.Aliases[0].Localpart != "_x_.+" {
		t.Errorf("namespaces %+v", ns)
	}
}
