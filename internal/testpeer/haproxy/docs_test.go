package haproxy

import (
	"os"
	"strings"
	"testing"
)

// TestDocsShowTheConfig keeps docs/high-availability.md's HAProxy configuration the one
// the tests run, for the two machines the document describes.
func TestDocsShowTheConfig(t *testing.T) {
	doc, err := os.ReadFile("../../../docs/high-availability.md")
	if err != nil {
		t.Fatal(err)
	}
	opts := Options{Listen: "10.0.0.5:29300", Backends: []Backend{
		{Name: "switchboard-1", Addr: "10.0.0.11:29300", CheckPort: 29301},
		{Name: "switchboard-2", Addr: "10.0.0.12:29300", CheckPort: 29301},
	}}
	if err := opts.validate(); err != nil {
		t.Fatal(err)
	}
	cfg, err := opts.config()
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(doc), strings.TrimSpace(cfg)) {
		t.Errorf("docs/high-availability.md does not show the configuration the tests run; copy it again:\n%s", cfg)
	}
}
