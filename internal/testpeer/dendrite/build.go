package dendrite

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"github.com/switchboard-matrix/switchboard/internal/testpeer/peerproc"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"time"
)

// defaultVersion is used when tools/dendrite/go.mod cannot be read; it must match the pin.
const defaultVersion = "v0.13.8"

// Binaries built by Build, all placed in the same directory.
const (
	binDendrite       = "dendrite"
	binGenerateKeys   = "generate-keys"
	binGenerateConfig = "generate-config"
	binCreateAccount  = "create-account"
	binDendriteConfig = "dendrite-config"
)

// packages maps each binary to the package of the tool module it is built from.
var packages = map[string]string{
	binDendrite:       "github.com/matrix-org/dendrite/cmd/dendrite",
	binGenerateKeys:   "github.com/matrix-org/dendrite/cmd/generate-keys",
	binGenerateConfig: "github.com/matrix-org/dendrite/cmd/generate-config",
	binCreateAccount:  "github.com/matrix-org/dendrite/cmd/create-account",
	binDendriteConfig: "./cmd/dendrite-config",
}

// buildMu serialises builds within one test binary; the file lock serialises them across
// test binaries (go test ./... runs several at once).
var buildMu sync.Mutex

// CacheDir returns the directory that holds Switchboard's built test peers:
// $SWITCHBOARD_CACHE, else $XDG_CACHE_HOME/switchboard, else ~/.cache/switchboard.
// scripts/test and scripts/demo use the same layout.
func CacheDir() string {
	if d := os.Getenv("SWITCHBOARD_CACHE"); d != "" {
		return d
	}
	if d := os.Getenv("XDG_CACHE_HOME"); d != "" {
		return filepath.Join(d, "switchboard")
	}
	if home, err := os.UserHomeDir(); err == nil {
		return filepath.Join(home, ".cache", "switchboard")
	}
	return filepath.Join(os.TempDir(), "switchboard-cache")
}

// ToolDir returns the directory of the tool module that pins Dendrite (<repo>/tools/dendrite),
// located from this source file.
func ToolDir() (string, error) {
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		return "", errors.New("dendrite: cannot locate the harness source file")
	}
	dir := filepath.Join(filepath.Dir(file), "..", "..", "..", "tools", "dendrite")
	if _, err := os.Stat(filepath.Join(dir, "go.mod")); err != nil {
		return "", fmt.Errorf("dendrite: tool module not found: %w", err)
	}
	return filepath.Clean(dir), nil
}

// Version returns the Dendrite version pinned by the tool module.
func Version() string {
	dir, err := ToolDir()
	if err != nil {
		return defaultVersion
	}
	f, err := os.Open(filepath.Join(dir, "go.mod"))
	if err != nil {
		return defaultVersion
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) > 0 && fields[0] == "require" {
			fields = fields[1:]
		}
		if len(fields) >= 2 && fields[0] == "github.com/matrix-org/dendrite" {
			return fields[1]
		}
	}
	return defaultVersion
}

// BinDir returns where Build puts the binaries: CacheDir()/dendrite-<version>.
func BinDir() string {
	return filepath.Join(CacheDir(), "dendrite-"+Version())
}

// Available reports why Dendrite cannot be built or run here, or nil if it can. Tests call it
// to skip with a clear message.
func Available() error {
	if err := peerproc.Supported(); err != nil {
		return err
	}
	dir, err := ToolDir()
	if err != nil {
		if fresh(BinDir(), time.Time{}) {
			return nil // prebuilt binaries, source tree elsewhere
		}
		return err
	}
	if fresh(BinDir(), newestSource(dir)) {
		return nil
	}
	if _, err := goCommand(); err != nil {
		return err
	}
	return nil
}

// goCommand finds the go command to build with.
func goCommand() (string, error) {
	if p, err := exec.LookPath("go"); err == nil {
		return p, nil
	}
	if root := os.Getenv("GOROOT"); root != "" {
		p := filepath.Join(root, "bin", "go")
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
	}
	return "", errors.New("dendrite: the go command is not in PATH; it is needed to build Dendrite")
}

// Build builds Dendrite and its helper commands from the tool module into BinDir() and
// returns that directory. It does nothing when the binaries exist and are newer than every
// file of the tool module. Concurrent calls, also from other processes, build only once.
// The first build takes a minute or two.
func Build(ctx context.Context) (binDir string, err error) {
	if err := peerproc.Supported(); err != nil {
		return "", err
	}
	binDir = BinDir()
	toolDir, err := ToolDir()
	if err != nil {
		if fresh(binDir, time.Time{}) {
			return binDir, nil
		}
		return "", err
	}
	if fresh(binDir, newestSource(toolDir)) {
		return binDir, nil
	}

	buildMu.Lock()
	defer buildMu.Unlock()
	if err := os.MkdirAll(CacheDir(), 0o755); err != nil {
		return "", fmt.Errorf("dendrite: failed to create cache dir: %w", err)
	}
	unlock, err := peerproc.LockFile(ctx, binDir+".lock", "build of Dendrite")
	if err != nil {
		return "", fmt.Errorf("dendrite: %w", err)
	}
	defer unlock()
	// Another process may have built while we waited for the lock.
	if fresh(binDir, newestSource(toolDir)) {
		return binDir, nil
	}
	if err := build(ctx, toolDir, binDir); err != nil {
		return "", err
	}
	return binDir, nil
}

// build runs go build into a temporary directory next to binDir and moves the results in,
// so that a Dendrite still running from binDir is never overwritten in place.
func build(ctx context.Context, toolDir, binDir string) error {
	goCmd, err := goCommand()
	if err != nil {
		return err
	}
	tmp, err := os.MkdirTemp(filepath.Dir(binDir), filepath.Base(binDir)+".build-")
	if err != nil {
		return fmt.Errorf("dendrite: failed to create build dir: %w", err)
	}
	defer os.RemoveAll(tmp)

	args := []string{"build", "-o", tmp + string(filepath.Separator)}
	for _, name := range binaries() {
		args = append(args, packages[name])
	}
	cmd := exec.CommandContext(ctx, goCmd, args...)
	cmd.Dir = toolDir
	cmd.Env = append(os.Environ(), "GOWORK=off", "GOFLAGS=-mod=mod -buildvcs=false")
	var out bytes.Buffer
	cmd.Stdout = &out
	cmd.Stderr = &out
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("dendrite: go build in %s failed: %w\n%s", toolDir, err, peerproc.Tail(out.Bytes(), 40))
	}

	if err := os.MkdirAll(binDir, 0o755); err != nil {
		return fmt.Errorf("dendrite: failed to create %s: %w", binDir, err)
	}
	now := time.Now()
	for _, name := range binaries() {
		src, dst := filepath.Join(tmp, name), filepath.Join(binDir, name)
		// go build may keep an older mtime; freshness is judged by mtime.
		if err := os.Chtimes(src, now, now); err != nil {
			return fmt.Errorf("dendrite: failed to stamp %s: %w", name, err)
		}
		if err := os.Rename(src, dst); err != nil {
			return fmt.Errorf("dendrite: failed to install %s: %w", name, err)
		}
	}
	return nil
}

// binaries lists the binary names in a fixed order.
func binaries() []string {
	return []string{binDendrite, binGenerateKeys, binGenerateConfig, binCreateAccount, binDendriteConfig}
}

// fresh reports whether every binary exists in dir and is newer than since.
func fresh(dir string, since time.Time) bool {
	for _, name := range binaries() {
		fi, err := os.Stat(filepath.Join(dir, name))
		if err != nil || !fi.Mode().IsRegular() || !fi.ModTime().After(since) {
			return false
		}
	}
	return true
}

// newestSource returns the newest modification time of go.mod, go.sum and the .go files of
// the tool module.
func newestSource(toolDir string) time.Time {
	var newest time.Time
	_ = filepath.WalkDir(toolDir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return nil // an unreadable file cannot make the build stale
		}
		name := d.Name()
		if d.IsDir() || !(name == "go.mod" || name == "go.sum" || strings.HasSuffix(name, ".go")) {
			return nil
		}
		if fi, err := d.Info(); err == nil && fi.ModTime().After(newest) {
			newest = fi.ModTime()
		}
		return nil
	})
	return newest
}
