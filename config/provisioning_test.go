package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestProvisioningProblems(t *testing.T) {
	long := strings.Repeat("k", MinSharedSecretLength)
	tests := []struct {
		name string
		yaml string
		want string // "" for none
	}{
		{name: "off by default", yaml: ""},
		{name: "openid only", yaml: "provisioning: {enabled: true}"},
		{name: "secret only", yaml: "provisioning: {enabled: true, openid: false, shared_secret: " + long + "}"},
		{name: "nothing accepted", yaml: "provisioning: {enabled: true, openid: false}", want: "provisioning.enabled: needs provisioning.shared_secret or provisioning.openid: true"},
		{name: "short secret", yaml: "provisioning: {enabled: true, shared_secret: hunter2}", want: "provisioning.shared_secret: must be at least 32 characters"},
		{name: "no metrics listener", yaml: "metrics: {enabled: false}\nprovisioning: {enabled: true}", want: "provisioning.enabled: needs metrics.enabled: true"},
		{name: "bad openid url", yaml: "provisioning: {enabled: true, openid_url: 'ftp://x'}", want: "provisioning.openid_url: must be an http:// or https:// URL"},
		{name: "unknown key", yaml: "provisioning: {enabled: true, secret: x}", want: "provisioning.secret: unknown key"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse([]byte(minimal + tt.yaml + "\n"))
			switch {
			case tt.want == "" && err != nil:
				t.Fatalf("unexpected problem: %v", err)
			case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
				t.Fatalf("problems %v, want %q", err, tt.want)
			case err != nil && strings.Contains(err.Error(), "hunter2"):
				t.Errorf("the secret leaked: %v", err)
			}
		})
	}
}

// TestProvisioningSecretFromEnvironment: the shared secret's variable applies even without
// a provisioning section in the file, and its _file forms work.
func TestProvisioningSecretFromEnvironment(t *testing.T) {
	long := strings.Repeat("e", MinSharedSecretLength)
	t.Setenv("SWITCHBOARD_PROVISIONING_SHARED_SECRET", long)
	c, err := Parse([]byte(minimal + "\n"))
	if err != nil {
		t.Fatal(err)
	}
	if c.Provisioning.SharedSecret != long {
		t.Errorf("shared secret %q, want the variable's", c.Provisioning.SharedSecret)
	}
	t.Setenv("SWITCHBOARD_PROVISIONING_SHARED_SECRET", "")
	file := filepath.Join(t.TempDir(), "secret")
	if err := os.WriteFile(file, []byte(long+"f\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err = Parse([]byte(minimal + "provisioning:\n  enabled: true\n  shared_secret_file: " + file + "\n"))
	if err != nil {
		t.Fatal(err)
	}
	if c.Provisioning.SharedSecret != long+"f" {
		t.Errorf("shared secret %q, want the file's", c.Provisioning.SharedSecret)
	}
}
