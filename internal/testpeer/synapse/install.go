package synapse

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"

	"github.com/switchboard-matrix/switchboard/internal/testpeer/dendrite"
	"github.com/switchboard-matrix/switchboard/internal/testpeer/peerproc"
)

// defaultVersion is used when tools/synapse/requirements.txt cannot be read; it must match
// the pin.
const defaultVersion = "1.163.2"

// Files of the tool directory tools/synapse.
const (
	requirementsFile = "requirements.txt"
	constraintsFile  = "constraints.txt"
)

// stampFile, inside the virtualenv, holds the hash of the requirements it was installed
// from and of the interpreter's version; it is written last, so a venv without it (or with
// another hash) is incomplete or stale.
const stampFile = ".switchboard-stamp"

// installMu serialises installs within one test binary; the file lock serialises them
// across test binaries (go test ./... runs several at once).
var installMu sync.Mutex

// CacheDir is the directory of Switchboard's built test peers, the same as Dendrite's:
// $SWITCHBOARD_CACHE, else $XDG_CACHE_HOME/switchboard, else ~/.cache/switchboard.
func CacheDir() string { return dendrite.CacheDir() }

// ToolDir returns the directory that pins Synapse (<repo>/tools/synapse), located from this
// source file.
func ToolDir() (string, error) {
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		return "", errors.New("synapse: cannot locate the harness source file")
	}
	dir := filepath.Clean(filepath.Join(filepath.Dir(file), "..", "..", "..", "tools", "synapse"))
	if _, err := os.Stat(filepath.Join(dir, requirementsFile)); err != nil {
		return "", fmt.Errorf("synapse: pinned requirements not found: %w", err)
	}
	return dir, nil
}

// Version returns the matrix-synapse version pinned in tools/synapse/requirements.txt.
func Version() string {
	dir, err := ToolDir()
	if err != nil {
		return defaultVersion
	}
	f, err := os.Open(filepath.Join(dir, requirementsFile))
	if err != nil {
		return defaultVersion
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if v, ok := strings.CutPrefix(line, "matrix-synapse=="); ok {
			return strings.TrimSpace(v)
		}
	}
	return defaultVersion
}

// VenvDir returns where Install puts the virtualenv: CacheDir()/synapse-<version>.
func VenvDir() string {
	return filepath.Join(CacheDir(), "synapse-"+Version())
}

// python returns the Python interpreter of the virtualenv in venv.
func python(venv string) string { return filepath.Join(venv, "bin", "python") }

// basePython finds the interpreter that creates the virtualenv: $SWITCHBOARD_PYTHON, else
// python3 in PATH.
func basePython() (string, error) {
	if p := os.Getenv("SWITCHBOARD_PYTHON"); p != "" {
		return p, nil
	}
	p, err := exec.LookPath("python3")
	if err != nil {
		return "", errors.New("synapse: python3 is not in PATH; it is needed to install Synapse")
	}
	return p, nil
}

// baseVersion is the version of basePython ("" when it cannot run), asked once.
var baseVersion = sync.OnceValue(func() string {
	p, err := basePython()
	if err != nil {
		return ""
	}
	out, err := run(context.Background(), p, "-c", "import sys; print(sys.version)")
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(out))
})

// requirementsHash hashes the pinned requirements and constraints and the base
// interpreter's version: a virtualenv is bound to the interpreter that made it.
func requirementsHash(toolDir string) (string, error) {
	return stampHash(toolDir, baseVersion())
}

func stampHash(toolDir, pythonVersion string) (string, error) {
	h := sha256.New()
	fmt.Fprintf(h, "python %s\n", pythonVersion)
	for _, name := range []string{requirementsFile, constraintsFile} {
		b, err := os.ReadFile(filepath.Join(toolDir, name))
		if err != nil {
			return "", fmt.Errorf("synapse: %w", err)
		}
		fmt.Fprintf(h, "%s %d\n", name, len(b))
		h.Write(b)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// installed reports whether venv holds a complete install of the requirements with hash
// want ("" accepts any complete install).
func installed(venv, want string) bool {
	b, err := os.ReadFile(filepath.Join(venv, stampFile))
	if err != nil {
		return false
	}
	if _, err := os.Stat(python(venv)); err != nil {
		return false
	}
	got := strings.TrimSpace(string(b))
	return got != "" && (want == "" || got == want)
}

// Available reports why Synapse cannot be installed or run here, or nil if it can. Tests
// call it to skip with a clear message.
func Available() error {
	if err := peerproc.Supported(); err != nil {
		return err
	}
	toolDir, err := ToolDir()
	if err != nil {
		if installed(VenvDir(), "") {
			return nil // installed earlier, source tree elsewhere
		}
		return err
	}
	want, err := requirementsHash(toolDir)
	if err != nil {
		return err
	}
	if installed(VenvDir(), want) {
		return nil
	}
	_, err = basePython()
	return err
}

// Install installs the pinned Synapse with pip into a virtualenv at VenvDir() and returns
// that directory. It does nothing when the virtualenv was installed from the same
// requirements and constraints. Concurrent calls, also from other processes, install only
// once. The first install takes a minute or two and needs the Python package index.
func Install(ctx context.Context) (venvDir string, err error) {
	if err := peerproc.Supported(); err != nil {
		return "", err
	}
	venvDir = VenvDir()
	toolDir, err := ToolDir()
	if err != nil {
		if installed(venvDir, "") {
			return venvDir, nil
		}
		return "", err
	}
	want, err := requirementsHash(toolDir)
	if err != nil {
		return "", err
	}
	if installed(venvDir, want) {
		return venvDir, nil
	}

	installMu.Lock()
	defer installMu.Unlock()
	if err := os.MkdirAll(CacheDir(), 0o755); err != nil {
		return "", fmt.Errorf("synapse: failed to create cache dir: %w", err)
	}
	unlock, err := peerproc.LockFile(ctx, venvDir+".lock", "install of Synapse")
	if err != nil {
		return "", fmt.Errorf("synapse: %w", err)
	}
	defer unlock()
	// Another process may have installed while we waited for the lock.
	if installed(venvDir, want) {
		return venvDir, nil
	}
	if err := install(ctx, toolDir, venvDir, want); err != nil {
		return "", err
	}
	return venvDir, nil
}

// install creates the virtualenv afresh and pip-installs the pinned requirements into it.
func install(ctx context.Context, toolDir, venvDir, hash string) error {
	base, err := basePython()
	if err != nil {
		return err
	}
	if err := os.RemoveAll(venvDir); err != nil {
		return fmt.Errorf("synapse: failed to remove the old virtualenv: %w", err)
	}
	if out, err := run(ctx, base, "-m", "venv", venvDir); err != nil {
		// Debian's python3 lacks ensurepip without python3-venv; virtualenv may be there.
		_ = os.RemoveAll(venvDir)
		if out2, err2 := run(ctx, base, "-m", "virtualenv", "-q", venvDir); err2 != nil {
			_ = os.RemoveAll(venvDir)
			return fmt.Errorf("synapse: %s -m venv failed (install python3-venv, or virtualenv with pip): %w\n%s\n%s",
				base, err, peerproc.Tail(out, 10), peerproc.Tail(out2, 10))
		}
	}
	out, err := run(ctx, python(venvDir), "-m", "pip", "install",
		"--disable-pip-version-check", "--no-input", "--quiet",
		"-r", filepath.Join(toolDir, requirementsFile),
		"-c", filepath.Join(toolDir, constraintsFile))
	if err != nil {
		return fmt.Errorf("synapse: pip install into %s failed: %w\n%s", venvDir, err, peerproc.Tail(out, 40))
	}
	if err := os.WriteFile(filepath.Join(venvDir, stampFile), []byte(hash+"\n"), 0o644); err != nil {
		return fmt.Errorf("synapse: failed to stamp the virtualenv: %w", err)
	}
	return nil
}

// run runs a command and returns its combined output.
func run(ctx context.Context, name string, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Env = append(os.Environ(), "PIP_DISABLE_PIP_VERSION_CHECK=1")
	var out bytes.Buffer
	cmd.Stdout = &out
	cmd.Stderr = &out
	err := cmd.Run()
	return out.Bytes(), err
}
