package sip_test

import (
	"fmt"

	"gopkg.in/yaml.v3"

	"github.com/switchboard-matrix/switchboard/bridges/sip"
	"github.com/switchboard-matrix/switchboard/config"
)

// The bridge is built from its section of the Switchboard config; New does no I/O, the
// SIP listeners start with the module's Start.
func Example() {
	var section config.ModuleConfig
	_ = yaml.Unmarshal([]byte(`
enabled: true
domain: matrix.example.org
listen: [{transport: tcp, address: "127.0.0.1:5070"}]
proxy: "sip:proxy.example.org:5060;transport=tcp"
domains: ["example.org"]
`), &section)
	cfg, err := sip.ParseConfig(section)
	if err != nil {
		fmt.Println(err)
		return
	}
	bridge, err := sip.New(cfg)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(bridge.ID(), cfg.MaxMessageBytes, bridge.Namespaces().Users[0].Localpart)
	// Output: sip 65536 _sip_.+
}
