package config

import (
	"reflect"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

func TestPermissionsDefaultToTheHomeserversDomain(t *testing.T) {
	tests := []struct {
		name       string
		yaml       string
		management []string
		xmpp       []string
		admins     []string
	}{
		{"defaults", "modules: {xmpp: {enabled: true}}", []string{"*:localhost"}, []string{"*:localhost"}, nil},
		{"explicit lists win", `
management: {admins: ["@op:localhost"], permissions: ["@op:localhost", "*:partner.org"]}
modules: {xmpp: {enabled: true, permissions: ["*"]}}`,
			[]string{"@op:localhost", "*:partner.org"}, []string{"*"}, []string{"@op:localhost"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := Parse([]byte("homeserver: {address: http://127.0.0.1:8008, domain: localhost}\n" + tt.yaml))
			if err != nil {
				t.Fatal(err)
			}
			got := cfg.Permissions()
			if !reflect.DeepEqual(got[ManagementModuleID], tt.management) || !reflect.DeepEqual(got["xmpp"], tt.xmpp) {
				t.Errorf("Permissions() = %v, want management %v, xmpp %v", got, tt.management, tt.xmpp)
			}
			if !reflect.DeepEqual(cfg.Management.Admins, tt.admins) {
				t.Errorf("admins = %v, want %v (no default admins)", cfg.Management.Admins, tt.admins)
			}
		})
	}
}

func TestNoDefaultAdmins(t *testing.T) {
	cfg, err := Parse([]byte("homeserver: {address: http://127.0.0.1:8008, domain: localhost}\n"))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Management.IsAdmin("@alice:localhost") {
		t.Error("a local user is an admin by default")
	}
}

func TestModulePermissionsAreNotTheModulesKey(t *testing.T) {
	var m ModuleConfig
	if err := yaml.Unmarshal([]byte("enabled: true\npermissions: ['@a:x', '*:y']\nprefix: p\n"), &m); err != nil {
		t.Fatal(err)
	}
	var opts struct {
		Prefix string `yaml:"prefix"`
	}
	if err := m.Decode(&opts); err != nil {
		t.Fatalf("strict Decode sees the common key: %v", err)
	}
	if !reflect.DeepEqual(m.Permissions, []string{"@a:x", "*:y"}) || opts.Prefix != "p" {
		t.Errorf("permissions %v, prefix %q", m.Permissions, opts.Prefix)
	}
	out, err := yaml.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	var back ModuleConfig
	if err := yaml.Unmarshal(out, &back); err != nil || !reflect.DeepEqual(back.Permissions, m.Permissions) {
		t.Errorf("round trip: %v %v\n%s", back.Permissions, err, out)
	}
}

func TestInvalidPermissionsAreReportedWithTheirKey(t *testing.T) {
	_, err := Parse([]byte(`
homeserver: {address: http://127.0.0.1:8008, domain: localhost}
management: {permissions: ["alice"]}
modules: {xmpp: {enabled: true, permissions: ["*:"]}}
`))
	if err == nil {
		t.Fatal("invalid permissions accepted")
	}
	for _, want := range []string{"management.permissions[0]", "modules.xmpp.permissions[0]"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error does not name %s: %v", want, err)
		}
	}
}
