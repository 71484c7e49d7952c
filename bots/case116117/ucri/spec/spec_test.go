package spec

import (
	"bytes"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestCopiesMatchOfficial checks that the embedded files are byte-for-byte the official
// ones in ../shared/ucri2 (the reference material beside the repository).
func TestCopiesMatchOfficial(t *testing.T) {
	root := filepath.Join("..", "..", "..", "..", "..", "shared", "ucri2")
	if _, err := os.Stat(root); err != nil {
		t.Skipf("the official UCRI2 files are not beside the repository (%s): %v", root, err)
	}
	err := fs.WalkDir(FS, ".", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		official := filepath.Join(root, filepath.FromSlash(path))
		if strings.HasPrefix(path, "api/") {
			official = filepath.Join(root, "api", "crm", "2.0.0", strings.TrimPrefix(path, "api/"))
		}
		want, err := os.ReadFile(official)
		if err != nil {
			t.Errorf("%s: %v", path, err)
			return nil
		}
		got, _ := FS.ReadFile(path)
		if !bytes.Equal(got, want) {
			t.Errorf("%s differs from %s", path, official)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
