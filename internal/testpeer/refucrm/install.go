package refucrm

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"time"

	"github.com/switchboard-matrix/switchboard/internal/testpeer/dendrite"
	"github.com/switchboard-matrix/switchboard/internal/testpeer/peerproc"
)

// installTimeout bounds one npm ci (a first install takes 20-60 s).
const installTimeout = 5 * time.Minute

// completeMarker is written into the install directory once npm ci succeeded.
const completeMarker = ".switchboard-complete"

// installMu serialises installs within one test binary; the file lock serialises them
// across test binaries.
var installMu sync.Mutex

// Available reports why the reference UCRM cannot run here, or nil if it can: it needs
// Linux (process groups), node and, for the first install, npm.
func Available() error {
	if err := peerproc.Supported(); err != nil {
		return err
	}
	if _, err := exec.LookPath("node"); err != nil {
		return fmt.Errorf("refucrm: node (Node.js 20 or newer) is not in PATH: %w", err)
	}
	m, err := findMaterial()
	if err != nil {
		return err
	}
	if dir, err := installDir(m); err == nil && complete(dir) {
		return nil
	}
	if _, err := exec.LookPath("npm"); err != nil {
		return fmt.Errorf("refucrm: npm is not in PATH; it is needed once to install the reference's dependencies: %w", err)
	}
	return nil
}

// installDir is CacheDir()/refucrm-<hash of package.json and package-lock.json>.
func installDir(m material) (string, error) {
	pkg, err := fs.ReadFile(m.root, expressDir+"/package.json")
	if err != nil {
		return "", fmt.Errorf("refucrm: %w", err)
	}
	h := sha256.New()
	h.Write(pkg)
	h.Write([]byte{0})
	h.Write(packageLock)
	return filepath.Join(dendrite.CacheDir(), "refucrm-"+hex.EncodeToString(h.Sum(nil))[:16]), nil
}

func complete(dir string) bool {
	_, err := os.Stat(filepath.Join(dir, completeMarker))
	return err == nil
}

// Install installs the reference's npm dependencies into the cache once (npm ci
// --omit=dev with the committed lock file) and returns the node_modules directory.
// Concurrent calls, also from other processes, install only once.
func Install(ctx context.Context) (nodeModules string, err error) {
	m, err := findMaterial()
	if err != nil {
		return "", err
	}
	return install(ctx, m)
}

func install(ctx context.Context, m material) (string, error) {
	dir, err := installDir(m)
	if err != nil {
		return "", err
	}
	nodeModules := filepath.Join(dir, "node_modules")
	if complete(dir) {
		return nodeModules, nil
	}
	installMu.Lock()
	defer installMu.Unlock()
	if err := os.MkdirAll(filepath.Dir(dir), 0o755); err != nil {
		return "", fmt.Errorf("refucrm: failed to create cache dir: %w", err)
	}
	unlock, err := peerproc.LockFile(ctx, dir+".lock", "install of the reference UCRM")
	if err != nil {
		return "", fmt.Errorf("refucrm: %w", err)
	}
	defer unlock()
	if complete(dir) { // another process installed while we waited
		return nodeModules, nil
	}
	if err := npmCI(ctx, m, dir); err != nil {
		return "", err
	}
	return nodeModules, nil
}

// npmCI runs npm ci in dir (emptied first) and marks it complete.
func npmCI(ctx context.Context, m material, dir string) error {
	pkg, err := fs.ReadFile(m.root, expressDir+"/package.json")
	if err != nil {
		return fmt.Errorf("refucrm: %w", err)
	}
	files := map[string][]byte{"package.json": pkg, "package-lock.json": packageLock}
	if err := peerproc.NpmCI(ctx, dir, files, completeMarker, installTimeout); err != nil {
		return fmt.Errorf("refucrm: %w", err)
	}
	return nil
}
