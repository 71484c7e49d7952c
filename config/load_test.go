package config

import (
	"errors"
	"fmt"
	"strings"
	"testing"
)

func TestDuplicateKeys(t *testing.T) {
	tests := []struct {
		name string
		yaml string
		want []string // every problem
	}{
		{
			name: "core key",
			yaml: "homeserver:\n  address: http://x\n  address: http://y\n  domain: localhost\n",
			want: []string{"homeserver.address: key given twice, at lines 2 and 3; keep one"},
		},
		{
			name: "section",
			yaml: minimal + "logging: {level: debug}\nlogging: {level: info}\n",
			want: []string{"logging: key given twice, at lines 5 and 6; keep one"},
		},
		{
			name: "module key",
			yaml: minimal + "modules:\n  xmpp:\n    enabled: true\n    secret: a\n    secret: b\n",
			want: []string{"modules.xmpp.secret: key given twice, at lines 8 and 9; keep one"},
		},
		{
			name: "in a list item",
			yaml: minimal + "management:\n  admins: ['@a:localhost']\n  permissions: ['*']\n  admins: ['@b:localhost']\n",
			want: []string{"management.admins: key given twice, at lines 6 and 8; keep one"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse([]byte(tt.yaml))
			if err == nil {
				t.Fatal("no problems")
			}
			if got := strings.Split(err.Error(), "\n"); strings.Join(got, "\n") != strings.Join(tt.want, "\n") {
				t.Errorf("problems:\n%v\nwant:\n%s", err, strings.Join(tt.want, "\n"))
			}
		})
	}
}

// echoOptions is a module's options struct, for the module checks.
type echoOptions struct {
	Prefix  string   `yaml:"prefix"`
	Count   int      `yaml:"count"`
	Every   Duration `yaml:"every"`
	Targets []string `yaml:"targets"`
	Nested  struct {
		On bool `yaml:"on"`
	} `yaml:"nested"`
}

// checkEcho is a module's ParseConfig: decode, then validate with key paths.
func checkEcho(_ *Config, id string, section ModuleConfig) error {
	if id != "echo" {
		return fmt.Errorf("no such module in this build")
	}
	var o echoOptions
	if err := section.Decode(&o); err != nil {
		return err
	}
	var errs []error
	if o.Prefix == "" {
		errs = append(errs, errors.New("modules.echo.prefix: required"))
	}
	if o.Count < 0 {
		errs = append(errs, errors.New("modules.echo.count: must be >= 0"))
	}
	return errors.Join(errs...)
}

func TestModuleCheck(t *testing.T) {
	tests := []struct {
		name string
		yaml string
		want []string // every problem
	}{
		{
			name: "valid",
			yaml: minimal + "modules:\n  echo: {enabled: true, prefix: '> '}\n",
		},
		{
			name: "validation problems with their lines, after the core's",
			yaml: "homeserver: {domain: localhost}\nmodules:\n  echo:\n    enabled: true\n    count: -1\n",
			want: []string{
				"homeserver.address: required",
				"modules.echo.prefix: required",
				"modules.echo.count: must be >= 0 (line 5)",
			},
		},
		{
			name: "decoding problems without Go type names",
			yaml: minimal + "modules:\n  echo:\n    enabled: true\n    prefx: x\n    count: many\n    every: soon\n    targets: one\n    nested: true\n",
			want: []string{
				"modules.echo.prefx: unknown key (line 8)",
				`modules.echo.count: want a whole number, got "many" (line 9)`,
				`modules.echo.every: invalid duration "soon": want a duration such as "1s" or "5m" (line 10)`,
				`modules.echo.targets: want a list, got "one" (line 11)`,
				`modules.echo.nested: want a mapping, got "true" (line 12)`,
			},
		},
		{
			name: "unknown module",
			yaml: minimal + "modules:\n  ecko: {enabled: false}\n",
			want: []string{"modules.ecko: no such module in this build (line 6)"},
		},
		{
			name: "core decoding problem and module problem in one run",
			yaml: minimal + "appservice: {workers: lots}\nmodules:\n  echo: {enabled: true, prefix: x, count: -2}\n",
			want: []string{
				`appservice.workers: want a whole number, got "lots" (line 5)`,
				"modules.echo.count: must be >= 0 (line 7)",
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseChecked([]byte(tt.yaml), checkEcho)
			if tt.want == nil {
				if err != nil {
					t.Fatalf("unexpected problems:\n%v", err)
				}
				return
			}
			if err == nil {
				t.Fatal("no problems")
			}
			if got := err.Error(); got != strings.Join(tt.want, "\n") {
				t.Errorf("problems:\n%v\nwant:\n%s", got, strings.Join(tt.want, "\n"))
			}
			for _, typ := range []string{"config.", "echoOptions", "struct", "int", "[]string"} {
				if strings.Contains(err.Error(), typ) {
					t.Errorf("problems name the Go type %q:\n%v", typ, err)
				}
			}
		})
	}
}

func TestDecodeAnonymousStruct(t *testing.T) {
	c, err := Parse([]byte(minimal + "modules:\n  m:\n    enabled: true\n    nme: x\n    n: [1]\n"))
	if err != nil {
		t.Fatal(err)
	}
	var opts struct {
		Name string `yaml:"name"`
		N    int    `yaml:"n"`
	}
	err = c.Modules["m"].Decode(&opts)
	want := "modules.m.nme: unknown key (line 8)\nmodules.m.n: want a whole number, got a list (line 9)"
	if err == nil || err.Error() != want {
		t.Errorf("Decode = %v, want %s", err, want)
	}
	if !errors.Is(err, ErrModuleConfig) || !errors.Is(err, ErrInvalid) {
		t.Errorf("errors.Is(ErrModuleConfig, ErrInvalid) = %v, %v", errors.Is(err, ErrModuleConfig), errors.Is(err, ErrInvalid))
	}
}
