package casee2e

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	mas "maunium.net/go/mautrix/appservice"

	"github.com/switchboard-matrix/switchboard/bots/case116117"
	"github.com/switchboard-matrix/switchboard/bots/management"
	"github.com/switchboard-matrix/switchboard/internal/testpeer/dendrite"
	"github.com/switchboard-matrix/switchboard/internal/testpeer/homeserver"
	"github.com/switchboard-matrix/switchboard/internal/testpeer/ucrm"
	"github.com/switchboard-matrix/switchboard/registration"
)

// One Dendrite and one fake UCRM serve the whole package (tests run one after the other).
// The bot's links are centres B (and B2 in the crash test), the test plays centre A.
var (
	hs      *dendrite.Server
	srv     *ucrm.Server
	reg     *mas.Registration
	asPort  int
	workDir string

	keyA, keyB, keyC *rsa.PrivateKey
	keyBPath         string
	peerA            *ucrm.Peer
	peerC            *ucrm.Peer // the centre cases are handed over to from Matrix
)

const (
	domain = "localhost"
	oidA   = "1.2.276.0.76.3.1.1"
	oidB   = "1.2.276.0.76.3.1.2"
	oidC   = "1.2.276.0.76.3.1.3"
	userB  = "els-b"
	passB  = "secret-b"
	linkB  = "b"
)

func TestMain(m *testing.M) {
	os.Exit(runMain(m))
}

func runMain(m *testing.M) int {
	if err := dendrite.Available(); err != nil {
		if os.Getenv("SWITCHBOARD_REQUIRE_PEERS") == "1" {
			fmt.Fprintf(os.Stderr, "casee2e: Dendrite unavailable and SWITCHBOARD_REQUIRE_PEERS=1: %v\n", err)
			return 1
		}
		fmt.Printf("casee2e: skipping: Dendrite unavailable: %v\n", err)
		return 0
	}
	var err error
	if workDir, err = os.MkdirTemp("", "switchboard-casee2e-"); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(workDir)
	for _, k := range []**rsa.PrivateKey{&keyA, &keyB, &keyC} {
		if *k, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
	}
	keyBPath = filepath.Join(workDir, "b.pem")
	der, _ := x509.MarshalPKCS8PrivateKey(keyB)
	if err := os.WriteFile(keyBPath, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	srv = ucrm.New(ucrm.Options{})
	srv.AddParticipant(ucrm.Participant{OID: oidA, Username: "els-a", Password: "secret-a", OperatorName: "Leitstelle A", ShortName: "ELS A", Key: &keyA.PublicKey})
	srv.AddParticipant(ucrm.Participant{OID: oidB, Username: userB, Password: passB, OperatorName: "116117 B", ShortName: "KV B", Key: &keyB.PublicKey})
	srv.AddParticipant(ucrm.Participant{OID: oidC, Username: "els-c", Password: "secret-c", OperatorName: "Rettungsleitstelle C", ShortName: "ELS C", Key: &keyC.PublicKey})
	if err := srv.Start(); err != nil {
		fmt.Fprintln(os.Stderr, "casee2e: ucrm:", err)
		return 1
	}
	defer srv.Close()
	peerA = srv.Peer(oidA, keyA)
	peerC = srv.Peer(oidC, keyC)

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	h, err := dendrite.StartWithAppservice(ctx, workDir, appserviceFor())
	if err != nil {
		fmt.Fprintln(os.Stderr, "casee2e:", err)
		return 1
	}
	hs, reg, asPort = h.Server, h.Registration, h.ASPort
	onHS = homeserver.DendriteEnv(h)
	defer func() { _ = hs.Stop() }()
	defer syn.Stop()
	return m.Run()
}

// appserviceFor is the package's registration, the same on both homeservers.
func appserviceFor() dendrite.Appservice {
	bot, _ := case116117.New(case116117.Config{Links: []case116117.LinkConfig{{Name: "x", OID: "1.2", UCRM: case116117.UCRMConfig{URL: "http://127.0.0.1:1", Username: "u", Password: "p"}, Dispatchers: []string{"@a:b"}}}})
	return dendrite.Appservice{
		ID: "switchboard-casee2e", Namespaces: map[string]registration.Namespaces{management.ID: {}, case116117.ID: bot.Namespaces()},
	}
}

func getenv(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}
