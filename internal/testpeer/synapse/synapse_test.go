package synapse

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/switchboard-matrix/switchboard/internal/testpeer/peerproc"
)

// TestInstall installs the pinned Synapse into the cache (scripts/test runs it before the
// other tests, so that they find it installed) and checks the virtualenv runs it.
func TestInstall(t *testing.T) {
	peerproc.RequireOrSkip(t, "synapse", Available())
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	venv, err := Install(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if venv != VenvDir() {
		t.Errorf("Install returned %s, want %s", venv, VenvDir())
	}
	out, err := run(ctx, python(venv), "-c", "import synapse; print(synapse.__version__)")
	if err != nil {
		t.Fatalf("synapse does not import: %v\n%s", err, out)
	}
	if got := string(out); got != Version()+"\n" {
		t.Errorf("installed version %q, pinned %q", got, Version())
	}
	// A second call finds the stamp and returns at once.
	start := time.Now()
	if _, err := Install(ctx); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("second Install took %v; the stamp was not used", d)
	}
	if _, err := os.Stat(filepath.Join(venv, stampFile)); err != nil {
		t.Error(err)
	}
}

// TestStartRegisterRestart starts Synapse, registers a user and an admin by shared secret,
// restarts it on the same port and data, and reports the startup times.
func TestStartRegisterRestart(t *testing.T) {
	srv := StartTest(t, Options{})
	t.Logf("synapse %s started in %v", Version(), srv.StartupTime)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	alice, err := srv.RegisterUser(ctx, "alice", "secret-alice")
	if err != nil {
		t.Fatal(err)
	}
	if alice.UserID != "@alice:localhost" || alice.AccessToken == "" {
		t.Fatalf("registered %q with token %v", alice.UserID, alice.AccessToken != "")
	}
	if _, err := srv.RegisterAdmin(ctx, "root", "secret-root"); err != nil {
		t.Fatal(err)
	}
	url := srv.URL
	if err := srv.Restart(ctx); err != nil {
		t.Fatal(err)
	}
	t.Logf("synapse restarted in %v", srv.StartupTime)
	if srv.URL != url {
		t.Errorf("URL changed on restart: %s -> %s", url, srv.URL)
	}
	who, err := alice.Whoami(ctx)
	if err != nil {
		t.Fatalf("alice's token after restart: %v", err)
	}
	if who.UserID != alice.UserID {
		t.Errorf("whoami = %s", who.UserID)
	}
}

// TestInstalledStamp: a virtualenv counts as installed only with its python and a stamp of
// the same requirements, constraints and interpreter version.
func TestInstalledStamp(t *testing.T) {
	tool := t.TempDir()
	for name, text := range map[string]string{requirementsFile: "matrix-synapse==1.0.0\n", constraintsFile: "six==1.0\n"} {
		if err := os.WriteFile(filepath.Join(tool, name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	hash, err := stampHash(tool, "3.11.7")
	if err != nil {
		t.Fatal(err)
	}
	otherPython, _ := stampHash(tool, "3.13.0")
	if otherPython == hash {
		t.Fatal("the interpreter version does not change the hash")
	}
	for _, tc := range []struct {
		name      string
		python    bool
		stamp     string // "" = no stamp file
		want      string
		installed bool
	}{
		{"complete", true, hash, hash, true},
		{"no stamp (install cut short)", true, "", hash, false},
		{"other requirements or interpreter", true, otherPython, hash, false},
		{"no python", false, hash, hash, false},
		{"any complete install", true, otherPython, "", true},
		{"empty stamp", true, "\n", "", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			venv := t.TempDir()
			if tc.python {
				if err := os.MkdirAll(filepath.Join(venv, "bin"), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(python(venv), nil, 0o755); err != nil {
					t.Fatal(err)
				}
			}
			if tc.stamp != "" {
				if err := os.WriteFile(filepath.Join(venv, stampFile), []byte(tc.stamp+"\n"), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			if got := installed(venv, tc.want); got != tc.installed {
				t.Errorf("installed = %v, want %v", got, tc.installed)
			}
		})
	}
	// The requirements are part of the hash.
	if err := os.WriteFile(filepath.Join(tool, constraintsFile), []byte("six==2.0\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if changed, _ := stampHash(tool, "3.11.7"); changed == hash {
		t.Error("a changed constraints file keeps the hash")
	}
}

// TestInstallWithoutVenv: a python3 without the venv module (Debian's without python3-venv)
// and without virtualenv gives an error that says what to install, and leaves no
// half-made virtualenv behind.
func TestInstallWithoutVenv(t *testing.T) {
	dir := t.TempDir()
	fake := filepath.Join(dir, "python3")
	script := "#!/bin/sh\necho \"No module named $2\" >&2\nexit 1\n"
	if err := os.WriteFile(fake, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("SWITCHBOARD_PYTHON", fake)
	toolDir, err := ToolDir()
	if err != nil {
		t.Skip(err)
	}
	venv := filepath.Join(dir, "venv")
	err = install(context.Background(), toolDir, venv, "x")
	if err == nil || !strings.Contains(err.Error(), "python3-venv") || !strings.Contains(err.Error(), "No module named venv") {
		t.Fatalf("err = %v, want one naming python3-venv and the interpreter's complaint", err)
	}
	if _, err := os.Stat(venv); !os.IsNotExist(err) {
		t.Errorf("a failed install left %s: %v", venv, err)
	}
}
