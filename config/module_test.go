package config

import (
	"errors"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

type xmppOptions struct {
	Server   string   `yaml:"server"`
	Port     int      `yaml:"port"`
	Timeout  Duration `yaml:"timeout"`
	Channels []string `yaml:"channels"`
}

const withModules = minimal + `modules:
  xmpp:
    enabled: true
    server: &server xmpp.example.org
    port: 5347
    timeout: 10s
    channels: [a, b]
  email:
    enabled: false
  typo:
    enabled: true
    sever: xmpp.example.org
    port: "many"
  aliased:
    enabled: true
    server: *server
    <<: {port: 5222, timeout: 5s}
  empty:
`

func TestModuleDecode(t *testing.T) {
	c, err := Parse([]byte(withModules))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		module  string
		enabled bool
		want    xmppOptions
		wantErr []string // substrings of the error, in order
	}{
		{
			name:    "aliases to anchors outside the section",
			module:  "aliased",
			enabled: true,
			want:    xmppOptions{Server: "xmpp.example.org", Port: 5222, Timeout: Duration(5e9)},
		},
		{
			name:    "options decoded",
			module:  "xmpp",
			enabled: true,
			want:    xmppOptions{Server: "xmpp.example.org", Port: 5347, Timeout: Duration(10e9), Channels: []string{"a", "b"}},
		},
		{
			name:   "only enabled keeps the defaults",
			module: "email",
			want:   xmppOptions{Port: 1},
		},
		{
			name:   "empty section",
			module: "empty",
			want:   xmppOptions{Port: 1},
		},
		{
			name:    "unknown key and bad value with their lines in the file",
			module:  "typo",
			enabled: true,
			wantErr: []string{
				"modules.typo.sever: unknown key (line 16)",
				`modules.typo.port: want a whole number, got "many" (line 17)`,
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, ok := c.Modules[tt.module]
			if !ok {
				t.Fatalf("module %q missing", tt.module)
			}
			if m.Enabled != tt.enabled {
				t.Errorf("Enabled = %v, want %v", m.Enabled, tt.enabled)
			}
			opts := xmppOptions{Port: 1}
			err := m.Decode(&opts)
			if tt.wantErr != nil {
				if !errors.Is(err, ErrModuleConfig) {
					t.Fatalf("err = %v, want ErrModuleConfig", err)
				}
				rest := err.Error()
				for _, w := range tt.wantErr {
					i := strings.Index(rest, w)
					if i < 0 {
						t.Fatalf("error %q lacks %q", err, w)
					}
					rest = rest[i+len(w):]
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if opts.Server != tt.want.Server || opts.Port != tt.want.Port || opts.Timeout != tt.want.Timeout || strings.Join(opts.Channels, ",") != strings.Join(tt.want.Channels, ",") {
				t.Errorf("options = %+v, want %+v", opts, tt.want)
			}
		})
	}
}

func TestModuleRoundTrip(t *testing.T) {
	var m ModuleConfig
	if err := yaml.Unmarshal([]byte("enabled: true\nserver: x\n"), &m); err != nil {
		t.Fatal(err)
	}
	out, err := yaml.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := string(out), "enabled: true\nserver: x\n"; got != want {
		t.Errorf("Marshal = %q, want %q", got, want)
	}
	if !m.HasOptions() {
		t.Error("HasOptions() = false")
	}
}

func TestDuration(t *testing.T) {
	tests := []struct {
		name    string
		yaml    string
		want    Duration
		wantErr bool
	}{
		{"seconds", "1s", Duration(1e9), false},
		{"compound", "1h30m", Duration(90 * 60e9), false},
		{"zero", "0", 0, false},
		{"negative", "-5s", Duration(-5e9), false},
		{"bare number", "5", 0, true},
		{"words", "five seconds", 0, true},
		{"mapping", "{a: b}", 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var d Duration
			err := yaml.Unmarshal([]byte(tt.yaml), &d)
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, wantErr %v", err, tt.wantErr)
			}
			if err == nil && d != tt.want {
				t.Errorf("d = %v, want %v", d, tt.want)
			}
			if err == nil {
				out, _ := yaml.Marshal(d)
				var back Duration
				if err := yaml.Unmarshal(out, &back); err != nil || back != d {
					t.Errorf("round trip of %v gave %v, %v", d, back, err)
				}
			}
		})
	}
}
