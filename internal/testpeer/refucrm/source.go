// Package refucrm runs PMeV's reference UCRM (the Node/express-js proof of concept of the
// UCRI2 project) as an independent test peer for the 116117 bot, beside the fake of
// internal/testpeer/ucrm. It is used by tests only.
//
// The reference's sources come from ../shared/ucri2 beside the repository when present,
// else from the unchanged copy in upstream/ (see upstream/README.md); the app schemas then
// come from the bot's own verbatim copy (bots/case116117/ucri/spec). Install runs npm ci
// with the committed package-lock.json once into the cache
// (CacheDir()/refucrm-<hash>/node_modules, locked against concurrent installs). Start
// assembles the sources in the server's directory, writes a config derived from the
// reference's standalone.config.js (the given participants with their public keys and
// incident_transfer_with_patient 1.0, a fresh key of its own for its delivery reports) and
// runs node main.js on a free port until the Client API answers. (main.js binds the port
// on every interface, not only loopback; the harness does not change the reference.)
//
//	srv := refucrm.StartTest(t, refucrm.Options{Participants: []refucrm.Participant{...}})
//	cli := srv.Centre(t, oid, key) // another dispatch centre, driven from Go
//
// Verify and Sign run the reference's own signing code (shared-js/crypto.js) on an
// envelope, so tests can check Switchboard's signatures against it.
//
// The reference keeps everything in memory: Restart empties its queues and numbers
// sequenceId from 1 again, as reference UCRMs in the wild do.
package refucrm

import (
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"runtime"
	"strings"

	"github.com/switchboard-matrix/switchboard/bots/case116117/ucri/spec"
)

// upstream is the unchanged copy of the reference's sources and API spec.
//
//go:embed all:upstream
var upstream embed.FS

// packageLock pins the reference's npm dependencies (made with npm install
// --package-lock-only --omit-lockfile-registry-resolved from its package.json, so npm ci
// installs from whichever registry npm is configured for).
//
//go:embed package-lock.json
var packageLock []byte

// Paths inside the reference's tree, as main.js expects them (it reads ../../../api/crm/2.0.0
// and ../../../apps from the express-js directory).
const (
	expressDir  = "reference-implementations/ucrm/express-js"
	sharedJSDir = "reference-implementations/shared-js"
	apiDir      = "api/crm/2.0.0"
	appsDir     = "apps"
)

// sharedRoot returns ../shared/ucri2 beside the repository, located from this source
// file, or "" when it is not there.
func sharedRoot() string {
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		return ""
	}
	dir := filepath.Join(filepath.Dir(file), "..", "..", "..", "..", "shared", "ucri2")
	if fi, err := os.Stat(filepath.Join(dir, expressDir, "main.js")); err != nil || !fi.Mode().IsRegular() {
		return ""
	}
	return filepath.Clean(dir)
}

// material is where the reference's files come from.
type material struct {
	// name says which, for logs: the shared folder's path or "the copy in upstream/".
	name string
	// root holds expressDir, sharedJSDir and apiDir.
	root fs.FS
	// apps holds <appId>/<appVersion>/<schemaId>.schema.json.
	apps fs.FS
}

// useCopy makes findMaterial ignore ../shared/ucri2 (for the test of the copy).
var useCopy = false

// findMaterial prefers ../shared/ucri2 and falls back to the copy kept in the repository,
// whose app schemas are the bot's own verbatim copy.
func findMaterial() (material, error) {
	if dir := sharedRoot(); dir != "" && !useCopy {
		root := os.DirFS(dir)
		apps, err := fs.Sub(root, appsDir)
		if err != nil {
			return material{}, fmt.Errorf("refucrm: %w", err)
		}
		return material{name: dir, root: root, apps: apps}, nil
	}
	root, err := fs.Sub(upstream, "upstream")
	if err != nil {
		return material{}, fmt.Errorf("refucrm: %w", err)
	}
	apps, err := fs.Sub(spec.FS, appsDir)
	if err != nil {
		return material{}, fmt.Errorf("refucrm: %w", err)
	}
	return material{name: "the copy in internal/testpeer/refucrm/upstream", root: root, apps: apps}, nil
}

// writeTree assembles a runnable reference tree in dir: the express-js and shared-js
// sources, the API spec and the app schemas, writable (main.js rewrites its copy of the
// spec), and express-js/node_modules as a link to the installed modules.
func (m material) writeTree(dir, nodeModules string) error {
	copies := []struct {
		src fs.FS
		at  string // below src
		dst string // below dir
	}{
		{m.root, expressDir, expressDir},
		{m.root, sharedJSDir, sharedJSDir},
		{m.root, apiDir, apiDir},
		{m.apps, ".", appsDir},
	}
	for _, c := range copies {
		if err := copyDir(c.src, c.at, filepath.Join(dir, filepath.FromSlash(c.dst))); err != nil {
			return fmt.Errorf("refucrm: failed to copy %s from %s: %w", c.dst, m.name, err)
		}
	}
	if err := os.WriteFile(filepath.Join(dir, expressDir, cryptoScript), cryptoJS, 0o644); err != nil {
		return fmt.Errorf("refucrm: %w", err)
	}
	link := filepath.Join(dir, expressDir, "node_modules")
	if err := os.Symlink(nodeModules, link); err != nil && !errors.Is(err, fs.ErrExist) {
		return fmt.Errorf("refucrm: failed to link node_modules: %w", err)
	}
	return nil
}

// copyDir copies the regular files below at in src into dst (0644 files, 0755 dirs),
// leaving out node_modules and what main.js generates.
func copyDir(src fs.FS, at, dst string) error {
	return fs.WalkDir(src, at, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel := p
		if at != "." {
			rel = strings.TrimPrefix(strings.TrimPrefix(p, at), "/")
		} else if p == "." {
			rel = ""
		}
		if d.IsDir() {
			switch path.Base(p) {
			case "node_modules", "transport-layer-spec", "app-spec":
				if p != at {
					return fs.SkipDir
				}
			}
			return os.MkdirAll(filepath.Join(dst, filepath.FromSlash(rel)), 0o755)
		}
		if !d.Type().IsRegular() {
			return nil
		}
		b, err := fs.ReadFile(src, p)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(dst, filepath.FromSlash(rel)), b, 0o644)
	})
}
