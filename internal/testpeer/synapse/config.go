package synapse

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"text/template"
)

// AppserviceConfigYAML is the part of homeserver.yaml that Switchboard needs from Synapse
// (besides app_service_config_files): the experimental appservice features. The keys are
// those the pinned Synapse reads in synapse/config/experimental.py; Synapse ignores unknown
// keys silently. docs/homeservers.md shows this very text (TestDocSnippets checks it).
//
//   - msc2409_to_device_messages_enabled: to-device messages for the appservice's users
//     in transactions (de.sorunome.msc2409.to_device), for registrations with
//     receive_ephemeral. Typing, receipts and presence need only the registration key.
//   - msc3202_transaction_extensions: device list changes, one-time key counts and unused
//     fallback key types in transactions, for registrations with org.matrix.msc3202.
//
// MSC3202 device masquerading (?device_id= with the appservice token) and MSC4190 device
// management (registration key io.element.msc4190) need no homeserver setting in this
// Synapse.
const AppserviceConfigYAML = `experimental_features:
  msc2409_to_device_messages_enabled: true
  msc3202_transaction_extensions: true
`

// configTemplate is the rest of the test homeserver's config: loopback, SQLite, no open
// registration (users are registered with the shared secret), no rate limits.
var configTemplate = template.Must(template.New("homeserver.yaml").Parse(`# Written by Switchboard's test harness (internal/testpeer/synapse).
server_name: {{.ServerName | printf "%q"}}
public_baseurl: {{.URL | printf "%q"}}
pid_file: {{.Dir}}/homeserver.pid
listeners:
  - port: {{.Port}}
    bind_addresses: ["127.0.0.1"]
    type: http
    tls: false
    x_forwarded: false
    resources:
      - names: [client, openid]
        compress: false
database:
  name: sqlite3
  args:
    database: {{.Dir}}/homeserver.db
media_store_path: {{.Dir}}/media_store
signing_key_path: {{.Dir}}/signing.key
trusted_key_servers: []
suppress_key_server_warning: true
report_stats: false
enable_metrics: false
macaroon_secret_key: {{.MacaroonSecret | printf "%q"}}
form_secret: {{.FormSecret | printf "%q"}}
registration_shared_secret: {{.RegistrationSharedSecret | printf "%q"}}
enable_registration: false
presence:
  enabled: true
url_preview_enabled: false
app_service_config_files:{{if not .RegistrationFiles}} []{{end}}
{{- range .RegistrationFiles}}
  - {{. | printf "%q"}}
{{- end}}
{{.Appservice -}}
# Tests register users and send messages fast; no rate limits.
rc_message: &unlimited {per_second: 100000, burst_count: 1000000}
rc_registration: *unlimited
rc_registration_token_validity: *unlimited
rc_login:
  address: *unlimited
  account: *unlimited
  failed_attempts: *unlimited
rc_admin_redaction: *unlimited
rc_joins:
  local: *unlimited
  remote: *unlimited
rc_joins_per_room: *unlimited
rc_3pid_validation: *unlimited
rc_invites:
  per_room: *unlimited
  per_user: *unlimited
  per_issuer: *unlimited
rc_third_party_invite: *unlimited
rc_key_requests: *unlimited
rc_media_create: *unlimited
rc_delayed_event_mgmt: *unlimited
rc_room_creation: *unlimited
rc_reports: *unlimited
rc_user_directory: *unlimited
rc_profile: *unlimited
rc_presence:
  per_user: *unlimited
`))

// configData fills configTemplate.
type configData struct {
	ServerName, URL, Dir                                 string
	Port                                                 int
	MacaroonSecret, FormSecret, RegistrationSharedSecret string
	RegistrationFiles                                    []string
	Appservice                                           string
}

// renderConfig returns the homeserver.yaml of d.
func renderConfig(d configData) ([]byte, error) {
	d.Appservice = AppserviceConfigYAML
	var b bytes.Buffer
	if err := configTemplate.Execute(&b, d); err != nil {
		return nil, fmt.Errorf("synapse: config: %w", err)
	}
	return b.Bytes(), nil
}

// secretsFile keeps the secrets of a Dir across restarts and reuses of the Dir.
const secretsFile = "secrets"

// loadSecrets returns the macaroon, form and registration secrets of dir, creating them.
func loadSecrets(dir string) (macaroon, form, registration string, err error) {
	path := filepath.Join(dir, secretsFile)
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		var s []string
		for range 3 {
			v, err := randomHex(24)
			if err != nil {
				return "", "", "", err
			}
			s = append(s, v)
		}
		b = []byte(s[0] + "\n" + s[1] + "\n" + s[2] + "\n")
		if err := os.WriteFile(path, b, 0o600); err != nil {
			return "", "", "", fmt.Errorf("synapse: failed to write secrets: %w", err)
		}
	} else if err != nil {
		return "", "", "", fmt.Errorf("synapse: failed to read secrets: %w", err)
	}
	lines := bytes.Fields(b)
	if len(lines) != 3 {
		return "", "", "", fmt.Errorf("synapse: %s is damaged", path)
	}
	return string(lines[0]), string(lines[1]), string(lines[2]), nil
}

// writeSigningKey writes a Synapse signing key (ed25519) to path unless one exists.
func writeSigningKey(path string) error {
	if _, err := os.Stat(path); err == nil {
		return nil
	}
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return fmt.Errorf("synapse: failed to make a signing key: %w", err)
	}
	version, err := randomHex(2)
	if err != nil {
		return err
	}
	line := "ed25519 a_" + version + " " + base64.RawStdEncoding.EncodeToString(priv.Seed()) + "\n"
	if err := os.WriteFile(path, []byte(line), 0o600); err != nil {
		return fmt.Errorf("synapse: failed to write the signing key: %w", err)
	}
	return nil
}

func randomHex(n int) (string, error) {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("synapse: failed to make a secret: %w", err)
	}
	return hex.EncodeToString(b), nil
}
