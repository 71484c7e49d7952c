package config

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"maunium.net/go/mautrix/id"
)

const minimal = `
homeserver:
  address: http://127.0.0.1:8008
  domain: localhost
`

func TestExampleIsValid(t *testing.T) {
	c, err := Parse(Example)
	if err != nil {
		t.Fatalf("the embedded example does not parse:\n%v", err)
	}
	if err := c.Validate(); err != nil {
		t.Fatalf("the embedded example does not validate:\n%v", err)
	}
	if c.Homeserver.Address != "http://127.0.0.1:8008" || c.Homeserver.Domain != "localhost" {
		t.Errorf("homeserver = %+v, want the local Dendrite", c.Homeserver)
	}
}

// TestExampleShowsDefaults keeps the example honest: every value it shows is the default.
func TestExampleShowsDefaults(t *testing.T) {
	fromExample, err := Parse(Example)
	if err != nil {
		t.Fatal(err)
	}
	fromMinimal, err := Parse([]byte(minimal))
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(fromExample, fromMinimal) {
		t.Errorf("example and defaults differ:\nexample  %+v\ndefaults %+v", fromExample, fromMinimal)
	}
}

func TestDefaults(t *testing.T) {
	c, err := Parse([]byte(minimal))
	if err != nil {
		t.Fatal(err)
	}
	want := Config{
		Homeserver: HomeserverConfig{Address: "http://127.0.0.1:8008", Domain: "localhost"},
		AppService: AppServiceConfig{
			ID:              "switchboard",
			Listen:          "127.0.0.1:29300",
			PublicURL:       "http://127.0.0.1:29300",
			Bot:             BotConfig{Localpart: "switchboard", Displayname: "Switchboard"},
			EphemeralEvents: true,
			Workers:         16,
			MaxBodyBytes:    32 << 20,
			Retry:           RetryConfig{Attempts: 8, Initial: Duration(time.Second), Max: Duration(5 * time.Minute)},
			ShutdownTimeout: Duration(30 * time.Second),
		},
		Database:   DatabaseConfig{URI: "sqlite:switchboard.db", MaxOpenConns: 10},
		Logging:    LoggingConfig{Level: "info", Format: "pretty"},
		Metrics:    MetricsConfig{Enabled: true, Listen: "127.0.0.1:29301"},
		Management: ManagementConfig{Permissions: []string{"*:localhost"}},
		Encryption: EncryptionConfig{
			Default:        true,
			DecryptTimeout: Duration(10 * time.Minute),
			Rotation:       RotationConfig{Period: Duration(168 * time.Hour), Messages: 100},
		},
		Provisioning:     ProvisioningConfig{OpenID: true},
		HighAvailability: HighAvailabilityConfig{CheckInterval: Duration(time.Second), CheckTimeout: Duration(time.Second), FenceDelay: Duration(3 * time.Second)},
		Scanning: ScanningConfig{OnUnavailable: "fail_closed", MaxBytes: 25 << 20, Outbound: true,
			Hold: Duration(10 * time.Minute), Timeout: Duration(2 * time.Minute), VerdictTTL: Duration(24 * time.Hour)},
	}
	if !reflect.DeepEqual(*c, want) {
		t.Errorf("defaults:\n got %+v\nwant %+v", *c, want)
	}
}

func TestExplicitValuesWin(t *testing.T) {
	tests := []struct {
		name  string
		yaml  string
		check func(*Config) bool
	}{
		{"ephemeral off", "appservice: {ephemeral_events: false}", func(c *Config) bool { return !c.AppService.EphemeralEvents }},
		{"metrics off", "metrics: {enabled: false}", func(c *Config) bool { return !c.Metrics.Enabled }},
		{"public url follows listen", "appservice: {listen: '0.0.0.0:8080'}", func(c *Config) bool { return c.AppService.PublicURL == "http://0.0.0.0:8080" }},
		{"public url kept", "appservice: {public_url: 'https://as.example.org/sb'}", func(c *Config) bool { return c.AppService.PublicURL == "https://as.example.org/sb" }},
		{"admins kept", "management: {admins: ['@alice:localhost']}", func(c *Config) bool {
			return reflect.DeepEqual(c.Management.Admins, []string{"@alice:localhost"})
		}},
		{"partial retry keeps other defaults", "appservice: {retry: {attempts: 3}}", func(c *Config) bool {
			return c.AppService.Retry == RetryConfig{Attempts: 3, Initial: DefaultRetryInitial, Max: DefaultRetryMax}
		}},
		{"postgres", "database: {uri: 'postgres://sb:secret@db/sb?sslmode=disable', max_open_conns: 4}", func(c *Config) bool {
			return c.Database.Driver() == "postgres" && c.Database.MaxOpenConns == 4
		}},
		{"log level", "logging: {level: debug, format: json}", func(c *Config) bool {
			return c.Logging.ZerologLevel() == zerolog.DebugLevel && c.Logging.Format == "json"
		}},
		{"durations", "appservice: {retry: {initial: 250ms, max: 1h30m}, shutdown_timeout: 2s}", func(c *Config) bool {
			r := c.AppService.Retry
			return r.Initial.Std() == 250*time.Millisecond && r.Max.Std() == 90*time.Minute && c.AppService.ShutdownTimeout.Std() == 2*time.Second
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Parse([]byte(minimal + tt.yaml + "\n"))
			if err != nil {
				t.Fatal(err)
			}
			if !tt.check(c) {
				t.Errorf("unexpected config: %+v", c)
			}
		})
	}
}

func TestProblems(t *testing.T) {
	tests := []struct {
		name string
		yaml string
		want []string // every problem, in order, as "key: message" prefixes
	}{
		{
			name: "empty file",
			yaml: "",
			want: []string{"homeserver.address: required", "homeserver.domain: required"},
		},
		{
			name: "unknown keys at every level",
			yaml: "homeserver:\n  adress: http://x\n  domain: localhost\nappservice:\n  retry:\n    attempt: 3\nfoo: 1\n",
			want: []string{
				"homeserver.adress: unknown key (line 2)",
				"appservice.retry.attempt: unknown key (line 6)",
				"foo: unknown key (line 7)",
				"homeserver.address: required",
			},
		},
		{
			name: "invalid values",
			yaml: minimal + "appservice:\n  workers: many\n  retry:\n    initial: soon\n  shutdown_timeout: [1]\nmetrics:\n  enabled: maybe\n",
			want: []string{
				`appservice.workers: want a whole number, got "many" (line 6)`,
				"appservice.retry.initial: invalid duration \"soon\"",
				"appservice.shutdown_timeout: want a duration",
				`metrics.enabled: want true or false, got "maybe" (line 11)`,
			},
		},
		{
			name: "every validation problem at once",
			yaml: `
homeserver: {address: "ftp://x", domain: "https://localhost/"}
appservice:
  id: "a b"
  listen: "nope"
  public_url: "/relative"
  bot: {localpart: "Bad Bot", avatar_url: "http://x/y.png"}
  workers: -1
  max_body_bytes: -5
  retry: {attempts: -1, initial: 10s, max: 1s}
  shutdown_timeout: -1s
database: {uri: "mysql://root:hunter2@db/sb", max_open_conns: -1}
logging: {level: loud, format: xml}
metrics: {listen: "127.0.0.1"}
management: {admins: ["alice", "*:", "@:x"]}
modules: {Bad_ID: {enabled: true}, ok: {enabled: true, x: 1}}
`,
			want: []string{
				`homeserver.address: unsupported scheme "ftp"`,
				"homeserver.domain: must be a server name",
				"appservice.id: must not contain spaces",
				"appservice.listen: must be host:port",
				"appservice.public_url: must be an http:// or https:// URL",
				"appservice.bot.localpart: must be a user ID localpart",
				"appservice.bot.avatar_url: must be an mxc:// URI",
				"appservice.workers: must be >= 1",
				"appservice.max_body_bytes: must be >= 1",
				"appservice.retry.attempts: must be >= 1",
				"appservice.retry.max: must be >= appservice.retry.initial",
				"appservice.shutdown_timeout: must be > 0",
				`database.uri: unsupported scheme "mysql"`,
				"database.max_open_conns: must be >= 1",
				"logging.level: must be one of",
				"logging.format: must be",
				"metrics.listen: must be host:port",
				"management.admins[0]: must be a user ID",
				`management.admins[1]: "*:" must be followed by a server name`,
				"management.admins[2]: not a valid user ID",
				"modules.Bad_ID: module ID must be",
			},
		},
		{
			name: "retry max below initial",
			yaml: minimal + "appservice: {retry: {initial: 1m, max: 30s}}\n",
			want: []string{"appservice.retry.max: must be >= appservice.retry.initial"},
		},
		{
			name: "metrics on the appservice port",
			yaml: minimal + "metrics: {listen: '127.0.0.1:29300'}\n",
			want: []string{"metrics.listen: must differ from appservice.listen"},
		},
		{
			name: "metrics listen not checked when disabled",
			yaml: minimal + "metrics: {enabled: false, listen: 'x'}\n",
			want: nil,
		},
		{
			name: "postgres without host",
			yaml: minimal + "database: {uri: 'postgres:///sb'}\n",
			want: []string{"database.uri: must be a URL"},
		},
		{
			name: "uri without scheme",
			yaml: minimal + "database: {uri: 'switchboard.db'}\n",
			want: []string{`database.uri: must start with "sqlite:" or "postgres://"`},
		},
		{
			name: "syntax error",
			yaml: "homeserver: [\n",
			want: []string{"yaml: line"},
		},
		{
			name: "two documents",
			yaml: minimal + "---\n" + minimal,
			want: []string{"want a single YAML document"},
		},
		{
			name: "section of the wrong type",
			yaml: "homeserver: localhost\n",
			want: []string{
				`homeserver: want a mapping, got "localhost" (line 1)`,
				"homeserver.address: required",
				"homeserver.domain: required",
			},
		},
		{
			name: "module section of the wrong type",
			yaml: minimal + "modules:\n  xmpp: yes\n",
			want: []string{"modules.xmpp: want a mapping"},
		},
		{
			name: "module enabled of the wrong type",
			yaml: minimal + "modules:\n  xmpp:\n    enabled: sometimes\n",
			want: []string{`modules.xmpp.enabled: want true or false, got "sometimes" (line 7)`},
		},
		{
			name: "flow mapping with two keys on one line",
			yaml: minimal + "appservice: {workers: x, id: y}\n",
			want: []string{`appservice.workers: want a whole number, got "x" (line 5)`},
		},
		{
			name: "flow mapping with the same bad value twice on one line",
			yaml: minimal + "appservice: {workers: x, max_body_bytes: x}\n",
			want: []string{`appservice: want a whole number, got "x" (line 5)`, `appservice: want a whole number, got "x" (line 5)`},
		},
		{
			name: "flow mapping with a long value",
			yaml: minimal + "appservice: {id: y, workers: twelve-thousand}\n",
			want: []string{`appservice.workers: want a whole number, got "twelve-..." (line 5)`},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse([]byte(tt.yaml))
			if tt.want == nil {
				if err != nil {
					t.Fatalf("unexpected problems:\n%v", err)
				}
				return
			}
			var errs *Errors
			if !errors.As(err, &errs) {
				t.Fatalf("err = %v (%T), want *Errors", err, err)
			}
			if !errors.Is(err, ErrInvalid) {
				t.Errorf("errors.Is(err, ErrInvalid) = false")
			}
			got := strings.Split(err.Error(), "\n")
			if len(got) != len(tt.want) || len(errs.Problems) != len(tt.want) {
				t.Fatalf("got %d problems, want %d:\n%v", len(got), len(tt.want), err)
			}
			for i := range got {
				if !strings.HasPrefix(got[i], tt.want[i]) {
					t.Errorf("problem %d = %q, want prefix %q", i, got[i], tt.want[i])
				}
			}
		})
	}
}

func TestNoSecretsInProblems(t *testing.T) {
	tests := []struct {
		name string
		yaml string
	}{
		{"unsupported scheme", "database: {uri: 'mysql://root:hunter2@db/sb'}"},
		{"bad postgres URL", "database: {uri: 'postgres://root:hunter2@db:port/sb'}"},
		{"bad postgres URL escape", "database: {uri: 'postgres://root:hunter2%zz@db/sb'}"},
		{"no scheme", "database: {uri: 'root:hunter2@db/sb'}"},
		{"credentials in homeserver address", "homeserver: {address: 'ftp://root:hunter2@x', domain: localhost}"},
		{"credentials in public url", "appservice: {public_url: 'http://root:hunter2@x'}"},
		{"pickle key of the wrong type", "encryption: {pickle_key: [hunter2]}"},
		{"pickle key with require but not enabled", "encryption: {require: true, pickle_key: hunter2}"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse([]byte(minimal + tt.yaml + "\n"))
			if err == nil {
				t.Fatal("want a problem")
			}
			if strings.Contains(err.Error(), "hunter2") {
				t.Errorf("the secret leaked: %v", err)
			}
		})
	}
}

func TestLoad(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "config.yaml")
	if err := os.WriteFile(path, Example, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(path); err != nil {
		t.Fatalf("Load(example) = %v", err)
	}
	_, err := Load(filepath.Join(dir, "missing.yaml"))
	if !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Load(missing) = %v, want os.ErrNotExist", err)
	}
}

func TestIsAdmin(t *testing.T) {
	m := ManagementConfig{Admins: []string{"*:localhost", "@bob:example.org"}}
	tests := []struct {
		name string
		user id.UserID
		want bool
	}{
		{"local user", "@alice:localhost", true},
		{"listed remote user", "@bob:example.org", true},
		{"other remote user", "@eve:example.org", false},
		{"lookalike domain", "@eve:localhost.evil", false},
		{"invalid user ID", "alice", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := m.IsAdmin(tt.user); got != tt.want {
				t.Errorf("IsAdmin(%s) = %v, want %v", tt.user, got, tt.want)
			}
		})
	}
	if !(ManagementConfig{Admins: []string{"*"}}).IsAdmin("@anyone:anywhere") {
		t.Error(`"*" does not admit everyone`)
	}
}

func TestBotUserID(t *testing.T) {
	c, err := Parse([]byte(minimal))
	if err != nil {
		t.Fatal(err)
	}
	if got := c.BotUserID(); got != "@switchboard:localhost" {
		t.Errorf("BotUserID() = %s", got)
	}
}

func FuzzParse(f *testing.F) {
	f.Add(Example)
	f.Add([]byte(minimal))
	f.Add([]byte("modules:\n  x:\n    enabled: true\n    a: &a [1]\n    b: *a\n"))
	f.Add([]byte("appservice: {retry: {initial: 1s, max: 1ms}}\nfoo: [1, {a: b}]\n"))
	f.Add([]byte(minimal + "database: {uri_file: /db}\nencryption:\n  pickle_key_file: /missing\n  pickle_key: x\n"))
	f.Add([]byte(minimal + "homeserver: {}\nmodules: {x: {enabled: true, s: {secret_file: /s}, s: 1}}\n"))
	// No environment, and files that exist only by name: fuzzing reads nothing of the machine.
	src := secretSource{
		lookupEnv: func(string) (string, bool) { return "", false },
		readFile: func(p string) ([]byte, error) {
			if strings.HasPrefix(p, "/missing") {
				return nil, os.ErrNotExist
			}
			return []byte("secret of " + p + "\n"), nil
		},
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := src.parse(data, nil)
		if err != nil {
			var errs *Errors
			if !errors.As(err, &errs) || len(errs.Problems) == 0 {
				t.Fatalf("err = %v (%T), want a non-empty *Errors", err, err)
			}
			return
		}
		if err := c.Validate(); err != nil {
			t.Fatalf("Parse accepted a config that does not validate: %v", err)
		}
		for _, m := range c.Modules {
			var v map[string]any
			_ = m.Decode(&v)
		}
	})
}

func TestEncryptionExplicitValues(t *testing.T) {
	tests := []struct {
		name string
		yaml string
		want EncryptionConfig
	}{
		{
			name: "enabled keeps the other defaults",
			yaml: "encryption: {enabled: true}",
			want: EncryptionConfig{Enabled: true, Default: true, DecryptTimeout: DefaultDecryptTimeout,
				Rotation: RotationConfig{Period: DefaultRotationPeriod, Messages: DefaultRotationMessages}},
		},
		{
			name: "default off",
			yaml: "encryption: {enabled: true, default: false}",
			want: EncryptionConfig{Enabled: true, DecryptTimeout: DefaultDecryptTimeout,
				Rotation: RotationConfig{Period: DefaultRotationPeriod, Messages: DefaultRotationMessages}},
		},
		{
			name: "every key",
			yaml: "encryption:\n  enabled: true\n  default: true\n  require: true\n  decrypt_timeout: 90s\n" +
				"  rotation: {period: 24h, messages: 1}\n  pickle_key: s3cret",
			want: EncryptionConfig{Enabled: true, Default: true, Require: true, DecryptTimeout: Duration(90 * time.Second),
				Rotation: RotationConfig{Period: Duration(24 * time.Hour), Messages: 1}, PickleKey: "s3cret"},
		},
		{
			name: "partial rotation keeps the other default",
			yaml: "encryption: {rotation: {messages: 500}}",
			want: EncryptionConfig{Default: true, DecryptTimeout: DefaultDecryptTimeout,
				Rotation: RotationConfig{Period: DefaultRotationPeriod, Messages: 500}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Parse([]byte(minimal + tt.yaml + "\n"))
			if err != nil {
				t.Fatal(err)
			}
			if c.Encryption != tt.want {
				t.Errorf("encryption:\n got %+v\nwant %+v", c.Encryption, tt.want)
			}
		})
	}
}

func TestEncryptionProblems(t *testing.T) {
	tests := []struct {
		name string
		yaml string
		want []string // every problem, in order, as "key: message" prefixes
	}{
		{"require without enabled", "encryption: {require: true}", []string{"encryption.require: needs encryption.enabled: true"}},
		{"require with enabled", "encryption: {enabled: true, require: true}", nil},
		{"enabled without ephemeral events", "appservice: {ephemeral_events: false}\nencryption: {enabled: true}", []string{"encryption.enabled: needs appservice.ephemeral_events: true"}},
		{"negative decrypt timeout", "encryption: {decrypt_timeout: -1m}", []string{"encryption.decrypt_timeout: must be > 0"}},
		{"negative rotation period", "encryption: {rotation: {period: -1h}}", []string{"encryption.rotation.period: must be > 0"}},
		{"rotation messages below one", "encryption: {rotation: {messages: -5}}", []string{"encryption.rotation.messages: must be >= 1"}},
		{"bad duration", "encryption:\n  decrypt_timeout: soon", []string{`encryption.decrypt_timeout: invalid duration "soon"`}},
		{"unknown key", "encryption:\n  rotation:\n    message: 5", []string{"encryption.rotation.message: unknown key (line 7)"}},
		{
			name: "every problem at once",
			yaml: "encryption: {require: true, decrypt_timeout: -1s, rotation: {period: -1s, messages: -1}}",
			want: []string{
				"encryption.require: needs encryption.enabled: true",
				"encryption.decrypt_timeout: must be > 0",
				"encryption.rotation.period: must be > 0",
				"encryption.rotation.messages: must be >= 1",
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse([]byte(minimal + tt.yaml + "\n"))
			if tt.want == nil {
				if err != nil {
					t.Fatalf("unexpected problems:\n%v", err)
				}
				return
			}
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("err = %v, want ErrInvalid", err)
			}
			got := strings.Split(err.Error(), "\n")
			if len(got) != len(tt.want) {
				t.Fatalf("got %d problems, want %d:\n%v", len(got), len(tt.want), err)
			}
			for i := range got {
				if !strings.HasPrefix(got[i], tt.want[i]) {
					t.Errorf("problem %d = %q, want prefix %q", i, got[i], tt.want[i])
				}
			}
		})
	}
}
