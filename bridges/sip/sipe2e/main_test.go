package sipe2e

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	mas "maunium.net/go/mautrix/appservice"

	"github.com/switchboard-matrix/switchboard/bots/management"
	"github.com/switchboard-matrix/switchboard/bridges/sip"
	"github.com/switchboard-matrix/switchboard/internal/testpeer/dendrite"
	"github.com/switchboard-matrix/switchboard/internal/testpeer/homeserver"
	"github.com/switchboard-matrix/switchboard/internal/testpeer/kamailio"
	"github.com/switchboard-matrix/switchboard/internal/testpeer/peerproc"
	"github.com/switchboard-matrix/switchboard/registration"
)

// One Dendrite and one Kamailio serve the whole package (tests run one after the other).
// Kamailio routes the bridge's domain to a port picked here, on which every test's bridge
// listens in turn (UDP and TCP).
var (
	kam        *kamailio.Server
	hs         *dendrite.Server
	reg        *mas.Registration
	regPath    string
	asPort     int
	workDir    string
	bridgePort int
)

const (
	domain       = "localhost"   // the homeserver's
	bridgeDomain = "matrix.test" // the bridge's SIP domain
	sipDomain    = kamailio.DefaultDomain
)

// users are the SIP users of the package's Kamailio and their passwords.
var users = map[string]string{
	"bob": "bob-pw", "carol": "carol-pw", "dave": "dave-pw", "erin": "erin-pw", "frank": "frank-pw",
	"grace": "grace-pw", "heidi": "heidi-pw", "ivan": "ivan-pw", "judy": "judy-pw", "mallory": "mallory-pw",
	"sipp": "sipp-pw", "answer": "answer-pw", "bench": "bench-pw", "crash": "crash-pw",
	// one per test file that needs its own (tests run one after the other, but registrations
	// and presence state outlive a test)
	"gateway": "gateway-pw", "tls": "tls-pw", "flood": "flood-pw", "hostile": "hostile-pw",
	"bare1": "bare1-pw", "bare2": "bare2-pw", "pres1": "pres1-pw", "pres2": "pres2-pw",
	"fail1": "fail1-pw", "fail2": "fail2-pw", "fail3": "fail3-pw", "fail4": "fail4-pw", "fail5": "fail5-pw",
	"start1": "start1-pw", "start2": "start2-pw", "bench2": "bench2-pw", "crash2": "crash2-pw",
	"scan": "scan-pw",
}

func TestMain(m *testing.M) {
	os.Exit(runMain(m))
}

func runMain(m *testing.M) int {
	for name, avail := range map[string]func() error{"Dendrite": dendrite.Available, "Kamailio": kamailio.Available} {
		if err := avail(); err != nil {
			if os.Getenv("SWITCHBOARD_REQUIRE_PEERS") == "1" {
				fmt.Fprintf(os.Stderr, "sipe2e: %s unavailable and SWITCHBOARD_REQUIRE_PEERS=1: %v\n", name, err)
				return 1
			}
			fmt.Printf("sipe2e: skipping: %s unavailable: %v\n", name, err)
			return 0
		}
	}
	var err error
	workDir, err = os.MkdirTemp("", "switchboard-sipe2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(workDir)
	if bridgePort, err = freeUDPTCPPort(); err != nil {
		fmt.Fprintln(os.Stderr, "sipe2e:", err)
		return 1
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	kam, err = kamailio.Start(ctx, kamailio.Options{
		Users: users, BridgeDomain: bridgeDomain, BridgeAddr: bridgeAddr(), BridgeTransport: "tcp",
		Dir: filepath.Join(workDir, "kamailio"),
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, "sipe2e: kamailio:", err)
		return 1
	}
	defer func() { _ = kam.Stop() }()
	appsvc, err := appserviceFor()
	if err != nil {
		fmt.Fprintln(os.Stderr, "sipe2e: bridge config:", err)
		return 1
	}
	h, err := dendrite.StartWithAppservice(ctx, workDir, appsvc)
	if err != nil {
		fmt.Fprintln(os.Stderr, "sipe2e:", err)
		return 1
	}
	hs, reg, regPath, asPort = h.Server, h.Registration, h.RegistrationPath, h.ASPort
	onHS = homeserver.DendriteEnv(h)
	defer func() { _ = hs.Stop() }()
	defer syn.Stop()
	code := m.Run()
	if code != 0 {
		fmt.Fprintf(os.Stderr, "dendrite log tail:\n%s\nkamailio log tail:\n%s\n", hs.LogTail(30), kam.LogTail(60))
	}
	return code
}

// bridgeAddr is where every test's bridge listens.
func bridgeAddr() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(bridgePort)) }

// freeUDPTCPPort is a loopback port free for both UDP and TCP right now.
func freeUDPTCPPort() (int, error) {
	for range 50 {
		port, err := peerproc.FreePort()
		if err != nil {
			return 0, err
		}
		c, err := net.ListenPacket("udp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
		if err == nil {
			_ = c.Close()
			return port, nil
		}
	}
	return 0, fmt.Errorf("no port free for UDP and TCP")
}

// appserviceFor is the package's registration, the same on both homeservers.
func appserviceFor() (dendrite.Appservice, error) {
	bridge, err := sip.New(bridgeConfig())
	if err != nil {
		return dendrite.Appservice{}, err
	}
	return dendrite.Appservice{
		ID: "switchboard-sipe2e", Ephemeral: true,
		Namespaces: map[string]registration.Namespaces{management.ID: {}, sip.ID: bridge.Namespaces()},
	}, nil
}

// bridgeConfig is the bridge's config for the package's Kamailio.
func bridgeConfig() sip.Config {
	return sip.Config{
		Domain: bridgeDomain,
		Listen: []sip.ListenConfig{
			{Transport: "udp", Address: bridgeAddr()},
			{Transport: "tcp", Address: bridgeAddr()},
		},
		Proxy:   kam.ProxyURI("tcp"),
		Domains: []string{sipDomain},
	}
}

// onHS is the homeserver of the running test: the package's Dendrite (set by TestMain)
// unless a Synapse variant runs (tests run one after the other).
var onHS homeserver.Env

// syn is the package's Synapse, started by the first Synapse variant.
var syn = homeserver.Lazy{
	Kind:       homeserver.Synapse,
	Dir:        func() string { return filepath.Join(workDir, "synapse") },
	Appservice: appserviceFor,
}

// onSynapse runs test with the package's Synapse as the test's homeserver. Without Synapse
// it skips, or fails when SWITCHBOARD_REQUIRE_PEERS=1.
func onSynapse(t *testing.T, test func(t *testing.T)) { homeserver.Use(t, &syn, &onHS, test) }
