// Package main is the fakeucrm command. It runs the test suite's fake UCRM for
// scripts/demo, so that the 116117 bot can be tried without a dispatch centre's real UCRI2
// adapter. It registers two centres: "switchboard" (the bot's link; its credentials and
// signing key are written to -dir, the key kept across runs) and "Leitstelle A (Demo)",
// played by this command. A small control API on -control lets a person act as centre A:
//
//	POST /incident   A hands a sample case over to the bot's centre
//	GET  /received   what A received (the bot's answers), as JSON lines
//
// It is a demo and test tool: everything but the bot's key lives in memory.
package main

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"flag"
	"fmt"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"github.com/google/uuid"

	"github.com/switchboard-matrix/switchboard/internal/testpeer/ucrm"
)

// The demo centres.
const (
	OIDBot  = "1.2.276.0.76.3.1.2"
	OIDA    = "1.2.276.0.76.3.1.1"
	userBot = "switchboard"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:8090", "address of the UCRM Client API")
	control := flag.String("control", "127.0.0.1:8091", "address of the control API (centre A)")
	dir := flag.String("dir", ".", "directory for the bot's credentials and signing key")
	flag.Parse()
	if err := run(*listen, *control, *dir); err != nil {
		fmt.Fprintln(os.Stderr, "fakeucrm:", err)
		os.Exit(1)
	}
}

func run(listen, control, dir string) error {
	botKey, err := loadOrCreateKey(filepath.Join(dir, "signing.pem"))
	if err != nil {
		return err
	}
	password, err := loadOrCreateSecret(filepath.Join(dir, "password"))
	if err != nil {
		return err
	}
	keyA, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return err
	}
	srv := ucrm.New(ucrm.Options{Addr: listen})
	srv.AddParticipant(ucrm.Participant{OID: OIDBot, Username: userBot, Password: password, OperatorName: "116117 Demo (Switchboard)", ShortName: "KV Demo", Key: &botKey.PublicKey})
	srv.AddParticipant(ucrm.Participant{OID: OIDA, Username: "leitstelle-a", Password: uuid.NewString(), OperatorName: "Leitstelle A (Demo)", ShortName: "ELS A", Key: &keyA.PublicKey})
	if err := srv.Start(); err != nil {
		return err
	}
	defer srv.Close()
	a := srv.Peer(OIDA, keyA)

	var mu sync.Mutex
	var received []json.RawMessage
	mux := http.NewServeMux()
	mux.HandleFunc("GET /health", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprintln(w, "ok") })
	mux.HandleFunc("POST /incident", func(w http.ResponseWriter, r *http.Request) {
		caseID := uuid.NewString()
		msgID, err := a.Send(r.Context(), OIDBot, ucrm.AppIncident, "incident", sampleIncident(caseID), "ALL")
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		fmt.Fprintf(w, "handed over case %s (messageId %s) from Leitstelle A to %s\n", caseID, msgID, OIDBot)
	})
	mux.HandleFunc("GET /received", func(w http.ResponseWriter, r *http.Request) {
		items, err := a.Receive(r.Context(), 0)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		mu.Lock()
		received = append(received, items...)
		all := append([]json.RawMessage(nil), received...)
		mu.Unlock()
		w.Header().Set("Content-Type", "application/x-ndjson")
		for _, m := range all {
			_, _ = w.Write(append(m, '\n'))
		}
	})
	hs := &http.Server{Addr: control, Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	errc := make(chan error, 1)
	go func() { errc <- hs.ListenAndServe() }()
	fmt.Printf("fakeucrm: ready: Client API %s, control http://%s, bot OID %s\n", srv.URL(), control, OIDBot)

	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
	select {
	case <-sig:
	case err := <-errc:
		if !errors.Is(err, http.ErrServerClosed) {
			return err
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return hs.Shutdown(ctx)
}

// sampleIncident is a case like the official example of incident_transfer_with_patient.
func sampleIncident(caseID string) map[string]any {
	return map[string]any{
		"sharedIncidentId": caseID, "classifications": []string{"A1"}, "issue": "Atemnot",
		"sentByDispatcherAt": time.Now().UTC().Format(time.RFC3339),
		"missionLocation": map[string]any{
			"address": map[string]any{"street": "Musterstraße", "houseNumber": "15b", "postalCode": "12345", "city": "Musterhausen"},
		},
		"patients": []any{map[string]any{
			"name": "Mustermann", "surname": "Hans", "phone": "+49 30 123456", "gender": "Male", "dateOfBirth": "1980-12-30",
			"initialAssessment": map[string]any{"rmi": "360", "additionalInformation": "unspezifischer Notfall"},
		}},
		"informers": []any{map[string]any{"name": "Musterfrau", "surname": "Heike", "phone": "+49 30 234567"}},
	}
}

func loadOrCreateKey(path string) (*rsa.PrivateKey, error) {
	if b, err := os.ReadFile(path); err == nil {
		block, _ := pem.Decode(b)
		if block == nil {
			return nil, fmt.Errorf("%s: no PEM block", path)
		}
		k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		rk, ok := k.(*rsa.PrivateKey)
		if !ok {
			return nil, fmt.Errorf("%s: not an RSA key", path)
		}
		return rk, nil
	}
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, err
	}
	der, _ := x509.MarshalPKCS8PrivateKey(k)
	return k, os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600)
}

func loadOrCreateSecret(path string) (string, error) {
	if b, err := os.ReadFile(path); err == nil && len(b) > 0 {
		return string(b), nil
	}
	s := uuid.NewString()
	return s, os.WriteFile(path, []byte(s), 0o600)
}
