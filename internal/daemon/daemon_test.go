package daemon

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/switchboard-matrix/switchboard/appservice"
	"github.com/switchboard-matrix/switchboard/config"
	"github.com/switchboard-matrix/switchboard/registration"
)

func runMain(t *testing.T, specs []ModuleSpec, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code = Main("test", specs, args, &out, &errOut)
	return code, out.String(), errOut.String()
}

func writeFile(t *testing.T, dir, name, text string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestExampleConfig(t *testing.T) {
	code, out, _ := runMain(t, nil, "-e")
	if code != 0 || !strings.Contains(out, "homeserver:") {
		t.Fatalf("-e: exit %d, output %.200q", code, out)
	}
	if _, err := config.Parse([]byte(out)); err != nil {
		t.Fatalf("the printed example is not a valid config: %v", err)
	}
}

func TestGenerateRegistration(t *testing.T) {
	dir := t.TempDir()
	_, example, _ := runMain(t, nil, "-e")
	cfg := writeFile(t, dir, "config.yaml", example)
	reg := filepath.Join(dir, "registration.yaml")
	if code, _, errOut := runMain(t, nil, "-c", cfg, "-r", reg, "-g"); code != 0 {
		t.Fatalf("-g: exit %d: %s", code, errOut)
	}
	info, err := os.Stat(reg)
	if err != nil {
		t.Fatal(err)
	}
	if info.Mode().Perm() != 0o600 {
		t.Fatalf("registration mode %v, want 0600", info.Mode().Perm())
	}
	first, err := registration.Load(reg)
	if err != nil {
		t.Fatal(err)
	}
	if len(first.AppToken) < 32 || len(first.ServerToken) < 32 || first.AppToken == first.ServerToken {
		t.Fatalf("weak or equal tokens")
	}
	if code, _, errOut := runMain(t, nil, "-c", cfg, "-r", reg, "-g"); code != 0 {
		t.Fatalf("second -g: exit %d: %s", code, errOut)
	}
	second, _ := registration.Load(reg)
	if second.AppToken != first.AppToken || second.ServerToken != first.ServerToken {
		t.Fatal("regenerating the registration changed its tokens")
	}
}

// TestGenerateRegistrationEncryption: with encryption.enabled, -g writes the registration
// keys encryption needs (MSC3202, MSC4190 and MSC2409's ephemeral events); without, none of
// the MSC keys; and the start-up check reports a file written before encryption was enabled.
func TestGenerateRegistrationEncryption(t *testing.T) {
	tests := []struct {
		name    string
		enabled bool
		want    []string
		notWant []string
	}{
		{"enabled", true, []string{
			"org.matrix.msc3202: true", "io.element.msc4190: true",
			"receive_ephemeral: true", "de.sorunome.msc2409.push_ephemeral: true",
		}, nil},
		{"disabled", false, []string{"receive_ephemeral: true"}, []string{"msc3202", "msc4190"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			_, example, _ := runMain(t, nil, "-e")
			text := strings.Replace(example, "encryption:\n    enabled: false\n",
				fmt.Sprintf("encryption:\n    enabled: %v\n", tt.enabled), 1)
			if !strings.Contains(text, fmt.Sprintf("encryption:\n    enabled: %v\n", tt.enabled)) {
				t.Fatal("the example has no encryption.enabled to set")
			}
			cfgPath := writeFile(t, dir, "config.yaml", text)
			regPath := filepath.Join(dir, "registration.yaml")
			if code, _, errOut := runMain(t, nil, "-c", cfgPath, "-r", regPath, "-g"); code != 0 {
				t.Fatalf("-g: exit %d: %s", code, errOut)
			}
			data, err := os.ReadFile(regPath)
			if err != nil {
				t.Fatal(err)
			}
			for _, k := range tt.want {
				if !strings.Contains(string(data), k) {
					t.Errorf("registration lacks %q:\n%s", k, data)
				}
			}
			for _, k := range tt.notWant {
				if strings.Contains(string(data), k) {
					t.Errorf("registration has %q:\n%s", k, data)
				}
			}
			cfg, err := config.Load(cfgPath)
			if err != nil {
				t.Fatal(err)
			}
			reg, err := registration.Load(regPath)
			if err != nil {
				t.Fatal(err)
			}
			if reg.MSC3202 != tt.enabled || reg.MSC4190 != tt.enabled {
				t.Errorf("msc3202=%v msc4190=%v, want %v", reg.MSC3202, reg.MSC4190, tt.enabled)
			}
			// A registration from before encryption was turned on is reported at start-up.
			cfg.Encryption.Enabled = !tt.enabled
			implied, err := registration.Build(buildConfig(cfg), nil, reg)
			if err != nil {
				t.Fatal(err)
			}
			if diff := strings.Join(registration.Diff(reg, implied), "\n"); !strings.Contains(diff, "org.matrix.msc3202") || !strings.Contains(diff, "io.element.msc4190") {
				t.Errorf("Diff after toggling encryption = %q, want both MSC keys", diff)
			}
		})
	}
}

// TestEncryptionOptions: every key of the encryption: section reaches the core's options.
func TestEncryptionOptions(t *testing.T) {
	tests := []struct {
		name string
		yaml string
		want appservice.Encryption
	}{
		{"defaults", "", appservice.Encryption{
			Default: true, DecryptTimeout: 10 * time.Minute, RotationPeriod: 168 * time.Hour, RotationMessages: 100,
		}},
		{"every key", "encryption: {enabled: true, default: false, require: true, decrypt_timeout: 30s, " +
			"rotation: {period: 1h, messages: 7}, pickle_key: k}", appservice.Encryption{
			Enabled: true, Require: true, DecryptTimeout: 30 * time.Second,
			RotationPeriod: time.Hour, RotationMessages: 7, PickleKey: "k",
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := config.Parse([]byte("homeserver: {address: 'http://127.0.0.1:8008', domain: localhost}\n" + tt.yaml + "\n"))
			if err != nil {
				t.Fatal(err)
			}
			if got := encryptionOptions(cfg.Encryption); got != tt.want {
				t.Errorf("encryptionOptions =\n %+v\nwant\n %+v", got, tt.want)
			}
		})
	}
}

func TestInvalidConfigListsEveryProblem(t *testing.T) {
	dir := t.TempDir()
	cfg := writeFile(t, dir, "bad.yaml", `homeserver:
  address: ftp://example.org
appservice:
  workers: -1
database:
  uri: "mysql://user:hunter2@db/x"
`)
	code, _, errOut := runMain(t, nil, "-c", cfg, "-g")
	if code != 1 {
		t.Fatalf("exit %d, want 1", code)
	}
	for _, want := range []string{"homeserver.address", "homeserver.domain", "appservice.workers", "database.uri"} {
		if !strings.Contains(errOut, want) {
			t.Errorf("error output lacks %q:\n%s", want, errOut)
		}
	}
	if strings.Contains(errOut, "hunter2") {
		t.Error("error output shows the database password")
	}
}

// nsModule claims a namespace, for the module-list tests.
type nsModule struct {
	appservice.Module
	id, pattern string
}

func (m nsModule) ID() string { return m.id }
func (m nsModule) Namespaces() registration.Namespaces {
	return registration.Namespaces{Users: []registration.Pattern{{Localpart: m.pattern, Exclusive: true}}}
}

func TestModuleList(t *testing.T) {
	spec := func(id, pattern string) ModuleSpec {
		return ModuleSpec{ID: id, New: func(config.ModuleConfig, Deps) (appservice.Module, error) {
			return nsModule{id: id, pattern: pattern}, nil
		}}
	}
	tests := []struct {
		name    string
		modules string
		specs   []ModuleSpec
		wantErr string
		wantNS  string
	}{
		{"enabled module claims its namespace", "modules:\n  xmpp:\n    enabled: true\n", []ModuleSpec{spec("xmpp", "_xmpp_.+")}, "", "_xmpp_"},
		{"disabled module claims nothing", "modules:\n  xmpp:\n    enabled: false\n", []ModuleSpec{spec("xmpp", "_xmpp_.+")}, "", ""},
		{"unknown module section", "modules:\n  nope:\n    enabled: true\n", nil, "modules.nope", ""},
		{"overlapping exclusive namespaces", "modules:\n  a:\n    enabled: true\n  b:\n    enabled: true\n",
			[]ModuleSpec{spec("a", "_x.*"), spec("b", "_xmpp_.+")}, "overlap", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			_, example, _ := runMain(t, nil, "-e")
			cfg := writeFile(t, dir, "config.yaml", example+"\n"+tt.modules)
			reg := filepath.Join(dir, "registration.yaml")
			code, _, errOut := runMain(t, tt.specs, "-c", cfg, "-r", reg, "-g")
			if tt.wantErr != "" {
				if code == 0 || !strings.Contains(strings.ToLower(errOut), tt.wantErr) {
					t.Fatalf("exit %d, stderr %q; want an error about %q", code, errOut, tt.wantErr)
				}
				return
			}
			if code != 0 {
				t.Fatalf("exit %d: %s", code, errOut)
			}
			data, _ := os.ReadFile(reg)
			if tt.wantNS != "" && !strings.Contains(string(data), tt.wantNS) {
				t.Fatalf("registration lacks %q:\n%s", tt.wantNS, data)
			}
			if tt.wantNS == "" && strings.Contains(string(data), "_xmpp_") {
				t.Fatalf("a disabled module claimed its namespace:\n%s", data)
			}
		})
	}
}
