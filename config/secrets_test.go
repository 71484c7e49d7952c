package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

func TestEnvName(t *testing.T) {
	tests := []struct {
		name, path, want string
	}{
		{"core", "database.uri", "SWITCHBOARD_DATABASE_URI"},
		{"nested", "modules.jitsi.uvs.auth_token", "SWITCHBOARD_MODULES_JITSI_UVS_AUTH_TOKEN"},
		{"list item", "modules.email.mailboxes[0].imap.password", "SWITCHBOARD_MODULES_EMAIL_MAILBOXES_0_IMAP_PASSWORD"},
		{"module ID with dash and dot", "modules.my-bot.v2.token", "SWITCHBOARD_MODULES_MY_BOT_V2_TOKEN"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := EnvName(tt.path); got != tt.want {
				t.Errorf("EnvName(%q) = %q, want %q", tt.path, got, tt.want)
			}
		})
	}
}

func TestIsSecretKey(t *testing.T) {
	tests := []struct {
		path string
		want bool
	}{
		{"database.uri", true},
		{"encryption.pickle_key", true},
		{"modules.xmpp.component.secret", true},
		{"modules.sip.register.password", true},
		{"modules.jitsi.uvs.auth_token", true},
		{"modules.email.mailboxes[1].smtp.password", true},
		{"password", false}, // no top-level secret
		{"modules.sip.listen[0].key_file", false},
		{"modules.jitsi.jwt.private_key_file", false},
		{"homeserver.address", false},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			if got := IsSecretKey(tt.path); got != tt.want {
				t.Errorf("IsSecretKey(%q) = %v, want %v", tt.path, got, tt.want)
			}
		})
	}
}

// fakeEnv is an environment for secretSource.
func fakeEnv(env map[string]string) secretSource {
	return secretSource{
		lookupEnv: func(k string) (string, bool) { v, ok := env[k]; return v, ok },
		readFile:  readSmallFile,
	}
}

func TestSecrets(t *testing.T) {
	dir := t.TempDir()
	file := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	dbFile := file("db", "postgres://sb:hunter2@db/sb\n")
	xmppFile := file("xmpp", "from-file\r\n")
	twoLines := file("two", "line1\n\n")
	empty := file("empty", "\n")
	badURI := file("baduri", "mysql://root:hunter2@db/sb")
	missing := filepath.Join(dir, "missing")
	const xmpp = "modules:\n  xmpp:\n    enabled: true\n    component:\n      address: 127.0.0.1:5347\n"

	type want struct {
		uri, pickle, xmppSecret, jitsiToken, mailPassword string
	}
	tests := []struct {
		name     string
		yaml     string
		env      map[string]string
		want     want
		problems []string // every problem, in order, as prefixes; none: valid
	}{
		{name: "inline values stay", yaml: minimal + "database: {uri: 'sqlite:x.db'}\n" + xmpp + "      secret: inline\n",
			want: want{uri: "sqlite:x.db", xmppSecret: "inline"}},
		{name: "file form of the core and a module; one newline dropped", yaml: minimal + "database:\n  uri_file: " + dbFile + "\n" + xmpp + "      secret_file: " + xmppFile + "\n",
			want: want{uri: "postgres://sb:hunter2@db/sb", xmppSecret: "from-file"}},
		{name: "only the last newline is dropped", yaml: minimal + xmpp + "      secret_file: " + twoLines + "\n",
			want: want{uri: DefaultDatabaseURI, xmppSecret: "line1\n"}},
		{name: "environment without the section in the file", yaml: minimal,
			env:  map[string]string{"SWITCHBOARD_DATABASE_URI": "sqlite:env.db", "SWITCHBOARD_ENCRYPTION_PICKLE_KEY": "pk"},
			want: want{uri: "sqlite:env.db", pickle: "pk"}},
		{name: "environment over the file over inline", yaml: minimal + xmpp + "      secret_file: " + xmppFile + "\n",
			env:  map[string]string{"SWITCHBOARD_MODULES_XMPP_COMPONENT_SECRET": "from-env"},
			want: want{uri: DefaultDatabaseURI, xmppSecret: "from-env"}},
		{name: "environment over inline", yaml: minimal + xmpp + "      secret: inline\n",
			env:  map[string]string{"SWITCHBOARD_MODULES_XMPP_COMPONENT_SECRET": "from-env"},
			want: want{uri: DefaultDatabaseURI, xmppSecret: "from-env"}},
		{name: "empty variable is unset", yaml: minimal + xmpp + "      secret: inline\n",
			env:  map[string]string{"SWITCHBOARD_MODULES_XMPP_COMPONENT_SECRET": ""},
			want: want{uri: DefaultDatabaseURI, xmppSecret: "inline"}},
		{name: "_FILE variable", yaml: minimal + xmpp + "      secret: inline\n",
			env:  map[string]string{"SWITCHBOARD_MODULES_XMPP_COMPONENT_SECRET_FILE": xmppFile},
			want: want{uri: DefaultDatabaseURI, xmppSecret: "from-file"}},
		{name: "module key in an empty mapping", yaml: minimal + "modules:\n  jitsi:\n    enabled: true\n    uvs: {}\n",
			env:  map[string]string{"SWITCHBOARD_MODULES_JITSI_UVS_AUTH_TOKEN": "tok"},
			want: want{uri: DefaultDatabaseURI, jitsiToken: "tok"}},
		{name: "list item", yaml: minimal + "modules:\n  email:\n    mailboxes:\n      - imap: {username: u}\n",
			env:  map[string]string{"SWITCHBOARD_MODULES_EMAIL_MAILBOXES_0_IMAP_PASSWORD": "pw"},
			want: want{uri: DefaultDatabaseURI, mailPassword: "pw"}},
		{name: "both forms in the file", yaml: minimal + xmpp + "      secret: inline\n      secret_file: " + xmppFile + "\n",
			problems: []string{"modules.xmpp.component.secret: both secret (line 10) and secret_file (line 11) are set; keep one"}},
		{name: "unreadable file", yaml: minimal + "encryption:\n  pickle_key_file: " + missing + "\n",
			problems: []string{"encryption.pickle_key_file: cannot read " + missing + ": no such file or directory (line 6)"}},
		{name: "unreadable _FILE variable", yaml: minimal,
			env:      map[string]string{"SWITCHBOARD_DATABASE_URI_FILE": missing},
			problems: []string{"database.uri: cannot read " + missing + ": no such file or directory (from SWITCHBOARD_DATABASE_URI_FILE)"}},
		{name: "endless file", yaml: minimal + "encryption:\n  pickle_key_file: /dev/zero\n",
			problems: []string{"encryption.pickle_key_file: cannot read /dev/zero: larger than 64 KiB (line 6)"}},
		{name: "empty file", yaml: minimal + "encryption:\n  pickle_key_file: " + empty + "\n",
			problems: []string{"encryption.pickle_key_file: the file " + empty + " is empty (line 6)"}},
		{name: "empty file form is unset", yaml: minimal + "encryption:\n  pickle_key_file: ''\n", want: want{uri: DefaultDatabaseURI}},
		{name: "file form of the wrong type", yaml: minimal + "encryption:\n  pickle_key_file: [a]\n",
			problems: []string{"encryption.pickle_key_file: want the path of a file holding pickle_key (line 6)"}},
		{name: "invalid value from a file says where it came from", yaml: minimal + "database:\n  uri_file: " + badURI + "\n",
			problems: []string{`database.uri: unsupported scheme "mysql" (want sqlite or postgres) (line 6, read from ` + badURI + ")"}},
		{name: "invalid value from the environment says where it came from", yaml: minimal,
			env:      map[string]string{"SWITCHBOARD_DATABASE_URI": "mysql://root:hunter2@db/sb"},
			problems: []string{`database.uri: unsupported scheme "mysql" (want sqlite or postgres) (from SWITCHBOARD_DATABASE_URI)`}},
		{name: "a _file key that is no secret is left alone", yaml: minimal + "homeserver_file: x\n",
			problems: []string{"homeserver_file: unknown key (line 5)"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := fakeEnv(tt.env).parse([]byte(tt.yaml), nil)
			if tt.problems != nil {
				if err == nil {
					t.Fatalf("no problems, want %q", tt.problems)
				}
				got := strings.Split(err.Error(), "\n")
				if len(got) != len(tt.problems) {
					t.Fatalf("got %d problems, want %d:\n%v", len(got), len(tt.problems), err)
				}
				for i := range got {
					if !strings.HasPrefix(got[i], tt.problems[i]) {
						t.Errorf("problem %d = %q, want prefix %q", i, got[i], tt.problems[i])
					}
				}
				if strings.Contains(err.Error(), "hunter2") {
					t.Errorf("problems show a secret: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("unexpected problems:\n%v", err)
			}
			var got want
			got.uri, got.pickle = c.Database.URI, c.Encryption.PickleKey
			var x struct {
				Component struct {
					Address string `yaml:"address"`
					Secret  string `yaml:"secret"`
				} `yaml:"component"`
			}
			if err := c.Modules["xmpp"].Decode(&x); err != nil {
				t.Fatal(err)
			}
			got.xmppSecret = x.Component.Secret
			var j struct {
				UVS struct {
					AuthToken string `yaml:"auth_token"`
				} `yaml:"uvs"`
			}
			if err := c.Modules["jitsi"].Decode(&j); err != nil {
				t.Fatal(err)
			}
			got.jitsiToken = j.UVS.AuthToken
			var e struct {
				Mailboxes []struct {
					IMAP struct {
						Username string `yaml:"username"`
						Password string `yaml:"password"`
					} `yaml:"imap"`
				} `yaml:"mailboxes"`
			}
			if err := c.Modules["email"].Decode(&e); err != nil {
				t.Fatal(err)
			}
			if len(e.Mailboxes) > 0 {
				got.mailPassword = e.Mailboxes[0].IMAP.Password
			}
			if got != tt.want {
				t.Errorf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}

// TestExampleModulesWithSecretFiles parses the example with its module sections uncommented:
// every secret there is in the file form, and no _file key of a secret is left over.
func TestExampleModulesWithSecretFiles(t *testing.T) {
	text := string(Example)
	i := strings.Index(text, "\n# modules:\n")
	if i < 0 {
		t.Fatal("the example has no commented modules section")
	}
	var b strings.Builder
	b.WriteString(text[:i+1])
	for _, line := range strings.Split(text[i+1:], "\n") {
		b.WriteString(strings.TrimPrefix(strings.TrimPrefix(line, "#"), " ") + "\n")
	}
	var read []string
	src := secretSource{
		lookupEnv: func(string) (string, bool) { return "", false },
		readFile:  func(p string) ([]byte, error) { read = append(read, p); return []byte("s3cret\n"), nil },
	}
	c, err := src.parse([]byte(b.String()), nil)
	if err != nil {
		t.Fatalf("the example with its modules does not parse:\n%v\n%s", err, b.String()[i:])
	}
	for _, id := range []string{"xmpp", "email", "sip", "jitsi", "case116117"} {
		if !c.Modules[id].HasOptions() {
			t.Errorf("module %s missing", id)
		}
	}
	if len(read) < 6 {
		t.Errorf("secret files read: %q, want at least 6", read)
	}
	out, err := yamlMarshal(c.Modules)
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(out, "\n") {
		for _, name := range secretNames {
			if !strings.HasPrefix(strings.TrimSpace(line), "#") && strings.Contains(line, name+FileSuffix+":") {
				t.Errorf("%s%s left in the modules: %s", name, FileSuffix, line)
			}
		}
	}
	if strings.Contains(out, "change-me") {
		t.Errorf("the example's modules still show inline secrets")
	}
}

func yamlMarshal(v any) (string, error) {
	out, err := yaml.Marshal(v)
	return string(out), err
}
