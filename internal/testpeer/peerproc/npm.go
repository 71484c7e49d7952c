package peerproc

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"time"
)

// NpmCI installs a Node package's dependencies into dir: it empties dir, writes files
// (package.json and package-lock.json at least) into it, runs `npm ci` without dev
// dependencies, install scripts, audit or funding messages, within timeout, and then writes
// the empty file marker, by which a later run knows the install is complete. Callers hold
// a LockFile around it so that concurrent test binaries install once.
func NpmCI(ctx context.Context, dir string, files map[string][]byte, marker string, timeout time.Duration) error {
	npm, err := exec.LookPath("npm")
	if err != nil {
		return fmt.Errorf("npm is not in PATH: %w", err)
	}
	if err := os.RemoveAll(dir); err != nil {
		return fmt.Errorf("failed to clear %s: %w", dir, err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	for name, data := range files {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o644); err != nil {
			return err
		}
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, npm, "ci", "--omit=dev", "--ignore-scripts", "--no-audit", "--no-fund", "--loglevel=warn")
	cmd.Dir = dir
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("npm ci in %s failed: %w\n%s", dir, err, Tail(out.Bytes(), 30))
	}
	return os.WriteFile(filepath.Join(dir, marker), nil, 0o644)
}
