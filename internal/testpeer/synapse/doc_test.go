package synapse

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
	mas "maunium.net/go/mautrix/appservice"

	"github.com/switchboard-matrix/switchboard/internal/testpeer/dendrite"
	"github.com/switchboard-matrix/switchboard/registration"
)

// docExample is the appservice docs/homeservers.md shows: the management bot plus one
// module's exclusive namespace, on the port of the example config.
var docExample = dendrite.Appservice{
	ID: "switchboard", Ephemeral: true,
	Namespaces: map[string]registration.Namespaces{
		"xmpp": {Users: []registration.Pattern{{Localpart: "_xmpp_.+", Exclusive: true}}},
	},
}

const docURL = "http://127.0.0.1:29300"

// regYAML renders reg the way registration.Save writes it, the tokens replaced by
// placeholders.
func regYAML(t *testing.T, reg *mas.Registration) string {
	t.Helper()
	reg.AppToken, reg.ServerToken = "<as_token>", "<hs_token>"
	b, err := yaml.Marshal(reg)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestDocSnippets: the configuration snippets of docs/homeservers.md are the ones the
// harnesses use: Synapse's experimental features (AppserviceConfigYAML), the registration
// StartWithAppservice writes for Synapse (Registration), and the one
// dendrite.StartWithAppservice writes for Dendrite (registration.Build without MSC keys).
func TestDocSnippets(t *testing.T) {
	toolDir, err := ToolDir()
	if err != nil {
		t.Skip(err)
	}
	path := filepath.Join(toolDir, "..", "..", "docs", "homeservers.md")
	doc, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	synReg, err := Registration(docExample, docURL)
	if err != nil {
		t.Fatal(err)
	}
	denReg, err := registration.Build(registration.BuildConfig{
		ID: docExample.ID, URL: docURL, BotLocalpart: "switchboard", Domain: "localhost", Ephemeral: true,
	}, docExample.Namespaces, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ name, want string }{
		{"synapse homeserver.yaml", AppserviceConfigYAML},
		{"synapse registration", regYAML(t, synReg)},
		{"dendrite registration", regYAML(t, denReg)},
	} {
		block := "```yaml\n" + tc.want + "```\n"
		if !strings.Contains(string(doc), block) {
			t.Errorf("%s lacks the %s snippet the harness uses; it is:\n%s", path, tc.name, block)
		}
	}
}
