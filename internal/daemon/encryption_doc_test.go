package daemon

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/switchboard-matrix/switchboard/internal/testpeer/synapse"
)

// TestEncryptionDocSnippets: docs/encryption.md shows the Synapse features the test harness
// enables and the registration keys switchboard -g writes with encryption enabled, and names
// every key of the encryption: section.
func TestEncryptionDocSnippets(t *testing.T) {
	doc, err := os.ReadFile(filepath.Join("..", "..", "docs", "encryption.md"))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	_, example, _ := runMain(t, nil, "-e")
	cfgPath := writeFile(t, dir, "config.yaml", strings.Replace(example, "encryption:\n    enabled: false\n", "encryption:\n    enabled: true\n", 1))
	regPath := filepath.Join(dir, "registration.yaml")
	if code, _, errOut := runMain(t, nil, "-c", cfgPath, "-r", regPath, "-g"); code != 0 {
		t.Fatalf("-g: exit %d: %s", code, errOut)
	}
	reg, err := os.ReadFile(regPath)
	if err != nil {
		t.Fatal(err)
	}
	keys := "de.sorunome.msc2409.push_ephemeral: true\nreceive_ephemeral: true\norg.matrix.msc3202: true\nio.element.msc4190: true\n"
	if !strings.HasSuffix(string(reg), keys) {
		t.Fatalf("the generated registration does not end with the keys the doc shows:\n%s", reg)
	}
	tests := []struct{ name, want string }{
		{"synapse homeserver.yaml", "```yaml\n" + synapse.AppserviceConfigYAML + "```\n"},
		{"registration keys", "```yaml\n" + keys + "```\n"},
	}
	for _, key := range []string{"enabled", "default", "require", "decrypt_timeout", "rotation.period", "rotation.messages", "pickle_key"} {
		tests = append(tests, struct{ name, want string }{"key " + key, "`encryption." + key + "`"})
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if !strings.Contains(string(doc), tt.want) {
				t.Errorf("docs/encryption.md lacks:\n%s", tt.want)
			}
		})
	}
}
