package ingestbench

import (
	"context"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"time"

	"github.com/switchboard-matrix/switchboard/internal/testpeer/dendrite"
	"github.com/switchboard-matrix/switchboard/internal/testpeer/peerproc"
)

// nodeFiles are the Node baseline: server.js and the package files that pin
// matrix-appservice 2.0.0 (the lock made by npm install, without registry URLs).
//
//go:embed node/server.js node/package.json node/package-lock.json
var nodeFiles embed.FS

// nodeCompleteMarker is written into the install directory once npm ci succeeded.
const nodeCompleteMarker = ".switchboard-complete"

// nodeInstall is an installed Node baseline.
type nodeInstall struct {
	node    string // the node binary
	script  string // server.js
	modules string // its node_modules
}

// installNode installs matrix-appservice 2.0.0 once into the cache
// (CacheDir()/matrix-appservice-2.0.0-<hash of the package files>, npm ci with the committed
// lock; concurrent runs take a file lock) and writes server.js into dir.
func installNode(ctx context.Context, dir string) (*nodeInstall, error) {
	node, err := exec.LookPath("node")
	if err != nil {
		return nil, fmt.Errorf("ingestbench: node is not in PATH: %w", err)
	}
	pkg, _ := nodeFiles.ReadFile("node/package.json")
	lock, _ := nodeFiles.ReadFile("node/package-lock.json")
	script, _ := nodeFiles.ReadFile("node/server.js")
	h := sha256.New()
	h.Write(pkg)
	h.Write([]byte{0})
	h.Write(lock)
	cache := filepath.Join(dendrite.CacheDir(), "matrix-appservice-2.0.0-"+hex.EncodeToString(h.Sum(nil))[:16])
	n := &nodeInstall{node: node, script: filepath.Join(dir, "server.js"), modules: filepath.Join(cache, "node_modules")}
	if err := os.WriteFile(n.script, script, 0o644); err != nil {
		return nil, fmt.Errorf("ingestbench: %w", err)
	}
	if complete(cache) {
		return n, nil
	}
	if err := os.MkdirAll(filepath.Dir(cache), 0o755); err != nil {
		return nil, fmt.Errorf("ingestbench: failed to create the cache dir: %w", err)
	}
	unlock, err := peerproc.LockFile(ctx, cache+".lock", "install of matrix-appservice")
	if err != nil {
		return nil, fmt.Errorf("ingestbench: %w", err)
	}
	defer unlock()
	if complete(cache) { // another run installed while we waited
		return n, nil
	}
	if err := npmCI(ctx, cache, pkg, lock); err != nil {
		return nil, err
	}
	return n, nil
}

func complete(dir string) bool {
	_, err := os.Stat(filepath.Join(dir, nodeCompleteMarker))
	return err == nil
}

// npmCI runs npm ci in dir (emptied first) and marks it complete.
func npmCI(ctx context.Context, dir string, pkg, lock []byte) error {
	files := map[string][]byte{"package.json": pkg, "package-lock.json": lock}
	if err := peerproc.NpmCI(ctx, dir, files, nodeCompleteMarker, 5*time.Minute); err != nil {
		return fmt.Errorf("ingestbench: %w", err)
	}
	return nil
}
