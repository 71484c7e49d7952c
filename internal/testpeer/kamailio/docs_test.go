package kamailio

import (
	"os"
	"strings"
	"testing"
)

// TestDocsShowTheTemplate keeps docs/sip.md's Kamailio example the config the tests use.
func TestDocsShowTheTemplate(t *testing.T) {
	doc, err := os.ReadFile("../../../docs/sip.md")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(doc), strings.TrimSpace(ConfigTemplate)) {
		t.Error("docs/sip.md does not show internal/testpeer/kamailio/kamailio.cfg.tmpl as it is: copy it again")
	}
}
