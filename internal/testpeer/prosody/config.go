package prosody

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// writeConfig writes cfg.lua for s into s.Dir (mode 0600: it holds the component secret).
func (s *Server) writeConfig() error {
	if err := os.MkdirAll(filepath.Join(s.Dir, certsDir), 0o755); err != nil {
		return fmt.Errorf("prosody: failed to create certs dir: %w", err)
	}
	var b strings.Builder
	kv := func(key, value string) { fmt.Fprintf(&b, "%s = %s\n", key, value) }
	kv("run_as_root", "true") // ignored unless we are root; Debian's prosody refuses root otherwise
	kv("daemonize", "false")
	kv("pidfile", luaString(filepath.Join(s.Dir, pidFile)))
	kv("data_path", luaString(s.Dir))
	kv("certificates", luaString(filepath.Join(s.Dir, certsDir)))
	kv("interfaces", luaList(loopback))
	kv("local_interfaces", luaList(loopback))
	kv("c2s_ports", "{"+strconv.Itoa(s.c2sPort)+"}")
	kv("c2s_interfaces", luaList(loopback))
	kv("c2s_direct_tls_ports", "{}")
	kv("legacy_ssl_ports", "{}")
	kv("component_ports", "{"+strconv.Itoa(s.componentPort)+"}")
	kv("component_interfaces", luaList(loopback))
	kv("authentication", luaString("internal_plain"))
	kv("c2s_require_encryption", "false")
	kv("allow_unencrypted_plain_auth", "true")
	kv("modules_disabled", luaList("s2s", "posix"))
	// Without this, Prosody's Nagle delay meets the bridge's delayed ACK after each
	// confirming ping: ~20-40 ms per stanza to the component (docs/xmpp.md).
	kv("network_settings", "{ nagle = false }")
	modules := []string{"roster", "saslauth", "disco", "ping", "mam", "carbons", "offline", "vcard_legacy", "pep"}
	if s.UploadDomain != "" {
		modules = append(modules, "http")
		kv("http_ports", "{"+strconv.Itoa(s.httpPort)+"}")
		kv("http_interfaces", luaList(loopback))
		kv("https_ports", "{}")
		kv("http_external_url", luaString(s.UploadURL+"/"))
		kv("http_default_host", luaString(s.UploadDomain)) // requests to 127.0.0.1 reach the upload service
	} else {
		kv("http_ports", "{}")
		kv("https_ports", "{}")
	}
	kv("modules_enabled", luaList(modules...))
	kv("log", `{{levels={min="info"},to="console"}}`)

	fmt.Fprintf(&b, "\nVirtualHost %s\n", luaString(s.Domain))
	fmt.Fprintf(&b, "\nComponent %s %s\n", luaString(s.MUCDomain), luaString("muc"))
	kv("\tmodules_enabled", luaList("muc_mam"))
	kv("\tmuc_room_locking", "false")               // rooms are usable at once, no configuration form
	kv("\tmuc_room_default_public_jids", "true")    // occupants' real JIDs are visible (non-anonymous)
	kv("\tmuc_room_default_change_subject", "true") // occupants may change the subject
	fmt.Fprintf(&b, "\nComponent %s\n", luaString(s.ComponentDomain))
	kv("\tcomponent_secret", luaString(s.ComponentSecret))
	if s.UploadDomain != "" {
		fmt.Fprintf(&b, "\nComponent %s %s\n", luaString(s.UploadDomain), luaString("http_file_share"))
	}
	if err := os.WriteFile(filepath.Join(s.Dir, configFile), []byte(b.String()), 0o600); err != nil {
		return fmt.Errorf("prosody: failed to write config: %w", err)
	}
	return nil
}

// luaString quotes v as a Lua string literal; any byte outside printable ASCII, and the
// quote and backslash, is written as a decimal escape.
func luaString(v string) string {
	var b strings.Builder
	b.WriteByte('"')
	for i := 0; i < len(v); i++ {
		c := v[i]
		if c < 0x20 || c >= 0x7f || c == '"' || c == '\\' {
			fmt.Fprintf(&b, "\\%03d", c)
			continue
		}
		b.WriteByte(c)
	}
	b.WriteByte('"')
	return b.String()
}

// luaList renders vs as a Lua table of strings.
func luaList(vs ...string) string {
	q := make([]string, len(vs))
	for i, v := range vs {
		q[i] = luaString(v)
	}
	return "{" + strings.Join(q, ", ") + "}"
}
