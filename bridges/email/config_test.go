package email_test

import (
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/switchboard-matrix/switchboard/bridges/email"
	"github.com/switchboard-matrix/switchboard/config"
)

func TestParseConfig(t *testing.T) {
	const valid = `enabled: true
mailboxes:
  - name: poststelle
    address: poststelle@example.org
    imap: {address: "imap.example.org:993", tls: implicit, username: u, password: p}
    smtp: {address: "smtp.example.org:587", username: u, password: s3cret}
`
	tests := []struct {
		name  string
		text  string
		wants []string
	}{
		{name: "valid", text: valid},
		{name: "no mailboxes", text: "enabled: true", wants: []string{"modules.email.mailboxes: at least one mailbox"}},
		{name: "bad name and address", text: strings.Replace(strings.Replace(valid, "name: poststelle", "name: 'post stelle'", 1), "poststelle@example.org", "not-an-address", 1),
			wants: []string{"mailboxes[0].name", "mailboxes[0].address"}},
		{name: "bad tls", text: strings.Replace(valid, "tls: implicit", "tls: sometimes", 1), wants: []string{"mailboxes[0].imap.tls"}},
		{name: "missing password", text: strings.Replace(valid, "password: s3cret", "password: ''", 1), wants: []string{"mailboxes[0].smtp: username and password are required"}},
		{name: "unknown key", text: valid + "colour: blue\n", wants: []string{"colour"}},
		{name: "missing CA file", text: strings.Replace(valid, "tls: implicit,", "tls: implicit, ca_file: /nonexistent/ca.pem,", 1), wants: []string{"mailboxes[0].imap.ca_file"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var section config.ModuleConfig
			if err := yaml.Unmarshal([]byte(tc.text), &section); err != nil {
				t.Fatal(err)
			}
			cfg, err := email.ParseConfig(section)
			if len(tc.wants) == 0 {
				if err != nil {
					t.Fatal(err)
				}
				mb := cfg.Mailboxes[0]
				if mb.Folder != "INBOX" || mb.SMTP.TLS != "starttls" || mb.DisplayName != mb.Address || cfg.Prefix != email.DefaultPrefix ||
					cfg.MaxMailBytes != email.DefaultMaxMailBytes || mb.DateAsEventTime == nil || !*mb.DateAsEventTime {
					t.Errorf("defaults not applied: %+v", cfg)
				}
				return
			}
			if err == nil {
				t.Fatal("no error")
			}
			for _, want := range tc.wants {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q does not mention %q", err, want)
				}
			}
			if strings.Contains(err.Error(), "s3cret") {
				t.Errorf("error shows a password: %v", err)
			}
		})
	}
}
