package baresip

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// Files inside UA.Dir.
const (
	configFile   = "config"
	accountsFile = "accounts"
	contactsFile = "contacts"
	logFile      = "baresip.log"
)

// writeConfig writes config, accounts and contacts into u.Dir (mode 0600: accounts holds
// the password). Only the modules needed for messaging, presence and remote control are
// loaded: no audio or video devices, no stdio UI.
func (u *UA) writeConfig() error {
	var b strings.Builder
	kv := func(key, value string) { fmt.Fprintf(&b, "%-24s%s\n", key, value) }
	kv("poll_method", "epoll")
	kv("sip_listen", u.SIPAddr)
	kv("call_local_timeout", "120")
	kv("call_max_calls", "1")
	kv("module_path", "/usr/lib/baresip/modules")
	kv("module", "ctrl_tcp.so")
	kv("module", "cons.so")
	kv("module_tmp", "account.so")
	kv("module_app", "contact.so")
	kv("module_app", "menu.so")
	kv("module_app", "presence.so")
	kv("module_app", "debug_cmd.so")
	kv("ctrl_tcp_listen", u.ctrlAddr)
	kv("cons_listen", u.consAddr)
	kv("net_interface", loopback)    // loopback only, also on machines without another interface
	kv("dns_server", loopback+":53") // no lookups leave the machine; the tests use IP URIs
	kv("menu_bell", "no")
	if err := writeFile(filepath.Join(u.Dir, configFile), b.String()); err != nil {
		return err
	}
	if err := writeFile(filepath.Join(u.Dir, accountsFile), u.accountLine()+"\n"); err != nil {
		return err
	}
	b.Reset()
	for _, c := range u.contacts {
		presence := "none"
		if c.presence {
			presence = "p2p"
		}
		fmt.Fprintf(&b, "<%s>;presence=%s\n", c.uri, presence)
	}
	return writeFile(filepath.Join(u.Dir, contactsFile), b.String())
}

// accountLine is the account's line in the accounts file.
func (u *UA) accountLine() string {
	var b strings.Builder
	fmt.Fprintf(&b, "<%s;transport=%s>", u.AOR, u.opts.Transport)
	b.WriteString(";answermode=manual;mwi=no;call_transfer=no")
	fmt.Fprintf(&b, ";regint=%d", int(u.opts.RegisterInterval.Seconds()))
	fmt.Fprintf(&b, ";pubint=%d", int(u.opts.PublishInterval.Seconds()))
	if u.opts.Password != "" {
		fmt.Fprintf(&b, ";auth_user=%s;auth_pass=%s", u.opts.Username, u.opts.Password)
	}
	if u.opts.Proxy != "" {
		fmt.Fprintf(&b, ";outbound=%s", strconv.Quote(u.opts.Proxy))
	}
	return b.String()
}

func writeFile(path, content string) error {
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		return fmt.Errorf("baresip: failed to write %s: %w", filepath.Base(path), err)
	}
	return nil
}
