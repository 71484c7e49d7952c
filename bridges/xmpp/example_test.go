package xmpp_test

import (
	"fmt"

	"gopkg.in/yaml.v3"

	"github.com/switchboard-matrix/switchboard/bridges/xmpp"
	"github.com/switchboard-matrix/switchboard/config"
)

// The bridge is built from its section of the Switchboard config; New does no I/O, the
// connection starts with the module's Start.
func Example() {
	var section config.ModuleConfig
	_ = yaml.Unmarshal([]byte(`
enabled: true
component:
  address: 127.0.0.1:5347
  domain: matrix.example.org
  secret: change-me
`), &section)
	cfg, err := xmpp.ParseConfig(section)
	if err != nil {
		fmt.Println(err)
		return
	}
	bridge, err := xmpp.New(cfg)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(bridge.ID(), cfg.Component.ServerDomain, bridge.Namespaces().Users[0].Localpart)
	// Output: xmpp example.org _xmpp_.+
}
