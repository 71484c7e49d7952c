package registration

import (
	"fmt"
	"os"
	"path/filepath"

	"gopkg.in/yaml.v3"
	"maunium.net/go/mautrix/appservice"
)

// fileMode is the registration file's mode: it holds the tokens.
const fileMode = 0o600

// Load reads a registration file. A missing file gives an error matching fs.ErrNotExist; a
// file that is not a registration wraps [ErrInvalidFile]. Tokens are not checked: [Build]
// generates the missing ones.
func Load(path string) (*appservice.Registration, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("registration: failed to read %s: %w", path, err)
	}
	reg := &appservice.Registration{}
	if err := yaml.Unmarshal(data, reg); err != nil {
		return nil, fmt.Errorf("%w: %s: %w", ErrInvalidFile, path, err)
	}
	return reg, nil
}

// Save writes reg to path atomically: to a temporary file in the same directory, synced,
// then renamed over path, so that a crash leaves either the old file or the new one. The file
// has mode 0600, also when it replaces one with a wider mode.
func Save(path string, reg *appservice.Registration) (err error) {
	data, err := yaml.Marshal(reg)
	if err != nil {
		return fmt.Errorf("registration: failed to encode: %w", err)
	}
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("registration: failed to create a temporary file in %s: %w", dir, err)
	}
	defer func() {
		if err != nil {
			_ = tmp.Close()
			_ = os.Remove(tmp.Name())
		}
	}()
	if err = tmp.Chmod(fileMode); err != nil {
		return fmt.Errorf("registration: failed to set the mode of %s: %w", tmp.Name(), err)
	}
	if _, err = tmp.Write(data); err != nil {
		return fmt.Errorf("registration: failed to write %s: %w", tmp.Name(), err)
	}
	if err = tmp.Sync(); err != nil {
		return fmt.Errorf("registration: failed to sync %s: %w", tmp.Name(), err)
	}
	if err = tmp.Close(); err != nil {
		return fmt.Errorf("registration: failed to close %s: %w", tmp.Name(), err)
	}
	if err = os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("registration: failed to replace %s: %w", path, err)
	}
	// The rename replaced any older file, but chmod again in case path is reached another way.
	if err := os.Chmod(path, fileMode); err != nil {
		return fmt.Errorf("registration: failed to set the mode of %s: %w", path, err)
	}
	// Make the rename durable; not every system can sync a directory, so this is best effort.
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		_ = d.Close()
	}
	return nil
}
