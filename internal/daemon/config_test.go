package daemon

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/switchboard-matrix/switchboard/appservice"
	"github.com/switchboard-matrix/switchboard/config"
)

func TestMissingConfigFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "config.yaml")
	code, _, errOut := runMain(t, nil, "-c", path, "-g")
	if code != 1 {
		t.Fatalf("exit %d, want 1", code)
	}
	for _, want := range []string{"no config file " + path, "switchboard -e > " + path} {
		if !strings.Contains(errOut, want) {
			t.Errorf("stderr lacks %q:\n%s", want, errOut)
		}
	}
}

// echoSpec is a module whose constructor decodes and validates its section like the real
// modules' ParseConfig do.
var echoSpec = ModuleSpec{ID: "echo", New: func(section config.ModuleConfig, _ Deps) (appservice.Module, error) {
	var opts struct {
		Prefix string `yaml:"prefix"`
		Count  int    `yaml:"count"`
	}
	if err := section.Decode(&opts); err != nil {
		return nil, err
	}
	var errs []error
	if opts.Prefix == "" {
		errs = append(errs, errors.New("modules.echo.prefix: required"))
	}
	if opts.Count < 0 {
		errs = append(errs, errors.New("modules.echo.count: must be >= 0"))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return nsModule{id: "echo", pattern: "_echo_.+"}, nil
}}

// TestModuleProblemsWithCoreProblems: the problems of module sections come in the same list
// as the core's, with key paths and lines and without Go type names.
func TestModuleProblemsWithCoreProblems(t *testing.T) {
	tests := []struct {
		name   string
		config string
		want   []string // the lines after "invalid config …:"
	}{
		{
			name: "decoding",
			config: "homeserver: {address: 'ftp://x', domain: localhost}\nmodules:\n  echo:\n    enabled: true\n" +
				"    prefx: '> '\n    count: lots\n",
			want: []string{
				`homeserver.address: unsupported scheme "ftp" (want http or https) (line 1)`,
				"modules.echo.prefx: unknown key (line 5)",
				`modules.echo.count: want a whole number, got "lots" (line 6)`,
			},
		},
		{
			name:   "validation and an unknown module",
			config: "homeserver: {domain: localhost}\nmodules:\n  echo:\n    enabled: true\n    count: -1\n  ecko: {enabled: true}\n",
			want: []string{
				"homeserver.address: required",
				"modules.echo.prefix: required",
				"modules.echo.count: must be >= 0 (line 5)",
				"modules.ecko: no such module in this build (line 6)",
			},
		},
		{
			name:   "a disabled module is not checked",
			config: "homeserver: {domain: localhost}\nmodules:\n  echo:\n    enabled: false\n    count: -1\n",
			want:   []string{"homeserver.address: required"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := writeFile(t, t.TempDir(), "config.yaml", tt.config)
			code, _, errOut := runMain(t, []ModuleSpec{echoSpec}, "-c", cfg, "-g")
			if code != 1 {
				t.Fatalf("exit %d, want 1", code)
			}
			want := fmt.Sprintf("switchboard: invalid config %s:\n%s\n", cfg, strings.Join(tt.want, "\n"))
			if errOut != want {
				t.Errorf("stderr:\n%s\nwant:\n%s", errOut, want)
			}
		})
	}
}

func TestOpenStoreNamesTheDatabase(t *testing.T) {
	dir := t.TempDir()
	notADB := writeFile(t, dir, "not-a-db", strings.Repeat("not a database\n", 100))
	tests := []struct {
		name    string
		uri     string
		want    []string
		notWant string
	}{
		{"missing directory", "sqlite:" + dir + "/missing/switchboard.db",
			[]string{"database.uri", dir + "/missing/switchboard.db", "its directory " + dir + "/missing does not exist"}, ""},
		{"not a database", "sqlite:" + notADB, []string{"database.uri", notADB}, ""},
		{"postgres without its password", "postgres://sb:hunter2@127.0.0.1:1/sb?sslmode=disable&password=hunter2&connect_timeout=5",
			[]string{"database.uri", "postgres://sb@127.0.0.1:1/sb"}, "hunter2"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st, err := openStore(context.Background(), config.DatabaseConfig{URI: tt.uri})
			if err == nil {
				st.Close()
				t.Fatal("no error")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
			if tt.notWant != "" && strings.Contains(err.Error(), tt.notWant) {
				t.Errorf("error %q shows %q", err, tt.notWant)
			}
		})
	}
}

func TestPrettyLogColours(t *testing.T) {
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer pr.Close()
	defer pw.Close()
	file, err := os.Create(filepath.Join(t.TempDir(), "log"))
	if err != nil {
		t.Fatal(err)
	}
	defer file.Close()
	devNull, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer devNull.Close()
	tests := []struct {
		name    string
		w       any
		noColor string
		want    bool
	}{
		{"buffer", &bytes.Buffer{}, "", false},
		{"pipe (the journal, a pager)", pw, "", false},
		{"file", file, "", false},
		{"character device, as a terminal is", devNull, "", true},
		{"character device with NO_COLOR", devNull, "1", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv("NO_COLOR", tt.noColor)
			t.Setenv("TERM", "xterm")
			w := tt.w.(interface{ Write([]byte) (int, error) })
			if got := colourful(w); got != tt.want {
				t.Errorf("colourful = %v, want %v", got, tt.want)
			}
		})
	}
	// What a log collector reading stderr sees: no escape codes.
	var buf bytes.Buffer
	log := newLogger(config.LoggingConfig{Level: "info", Format: "pretty"}, &buf)
	log.Info().Str("module", "xmpp").Msg("connected")
	if out := buf.String(); strings.Contains(out, "\x1b[") || !strings.Contains(out, "connected") {
		t.Errorf("pretty log to a buffer = %q, want text without escape codes", out)
	}
}
