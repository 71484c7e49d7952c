package linphone

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// writeConfig writes the linphonerc for one run: sipPort for UDP and TCP, the account,
// CPIM unless PlainText, the chat database. linphonec rewrites the file when it saves
// its state; each start writes it anew.
func (u *UA) writeConfig(sipPort int) error {
	o := u.opts
	domain := o.AOR[strings.IndexByte(o.AOR, '@')+1:]
	cpim := 1
	if o.PlainText {
		cpim = 0
	}
	var b strings.Builder
	fmt.Fprintf(&b, `[sip]
sip_port=%[1]d
sip_tcp_port=%[1]d
sip_tls_port=0
default_proxy=0
im_notif_policy=all
use_ipv6=0
register_only_when_network_is_up=0
guess_hostname=0

[net]
ipv6=0

[storage]
backend=1
uri=%[2]s

[sound]
echocancellation=0

[video]
capture=0
display=0
automatically_initiate=0
automatically_accept=0

[misc]
enable_basic_to_client_group_chat_room_migration=0
hide_empty_chat_rooms=0

[proxy_default_values]
cpim_in_basic_chat_rooms_enabled=%[3]d

[proxy_0]
reg_proxy=<%[4]s>
reg_route=<%[4]s;lr>
reg_identity=%[5]s
reg_expires=%[6]d
reg_sendregister=1
publish=0
cpim_in_basic_chat_rooms_enabled=%[3]d

[auth_info_0]
username=%[7]s
passwd=%[8]s
domain=%[9]s
`, sipPort, filepath.Join(u.Dir, dbFile), cpim, o.Proxy, o.AOR, int(o.RegisterInterval.Seconds()),
		o.Username, o.Password, domain)
	if err := os.WriteFile(filepath.Join(u.Dir, configFile), []byte(b.String()), 0o600); err != nil {
		return fmt.Errorf("linphone: failed to write config: %w", err)
	}
	return nil
}
