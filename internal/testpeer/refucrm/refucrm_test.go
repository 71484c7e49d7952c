package refucrm

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/switchboard-matrix/switchboard/bots/case116117/ucri"
)

const (
	oidA = "1.2.3.4.5.6"
	oidB = "1.2.3.4.5.8"
)

var keyA, keyB = mustKey(), mustKey()

func mustKey() *rsa.PrivateKey {
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		panic(err)
	}
	return k
}

// twoCentres starts a reference UCRM with the standalone config's two client accounts
// (userA1 → A, userA2 → B), each with its own key.
func twoCentres(t *testing.T) (*Server, *Centre, *Centre) {
	t.Helper()
	srv := StartTest(t, Options{Participants: []Participant{
		{OID: oidA, Username: "userA1", Password: "test", Key: &keyA.PublicKey},
		{OID: oidB, Username: "userA2", Password: "test", Key: &keyB.PublicKey},
	}})
	a, err := srv.Centre(oidA, "userA1", "test", keyA)
	if err != nil {
		t.Fatal(err)
	}
	b, err := srv.Centre(oidB, "userA2", "test", keyB)
	if err != nil {
		t.Fatal(err)
	}
	return srv, a, b
}

func incident(id string) map[string]any {
	return map[string]any{
		"sharedIncidentId": id, "classifications": []string{"A1"}, "issue": "Atemnot", "flashingLights": false,
		"sentByDispatcherAt": "2024-01-01T10:05:08Z", "startTimestamp": "2024-01-01T09:55:15Z",
		"missionLocation": map[string]any{"address": map[string]any{"street": "Musterstrasse", "houseNumber": "15b", "postalCode": "12345", "city": "Musterhausen", "country": "DE"}},
		"patients":        []any{map[string]any{"name": "Mustermann", "surname": "Hans", "dateOfBirth": "1980-12-30"}},
	}
}

// pollUntil polls c until n messages arrived in all (10 s at most).
func pollUntil(t *testing.T, c *Centre, n int) []ucri.ReceivedMessage {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, err := c.Poll(context.Background()); err != nil {
			t.Fatal(err)
		}
		if got := c.Received(); len(got) >= n {
			return got
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s received %d messages, want %d", c.OID, len(c.Received()), n)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestUpstreamCopyMatchesShared: the copy in upstream/ is byte for byte the reference
// material in ../shared/ucri2 (when it is beside the repository).
func TestUpstreamCopyMatchesShared(t *testing.T) {
	root := sharedRoot()
	if root == "" {
		t.Skip("../shared/ucri2 is not beside the repository")
	}
	n := 0
	err := fs.WalkDir(upstream, "upstream", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel("upstream", filepath.FromSlash(p))
		if rel == "README.md" {
			return nil // ours, naming the origin
		}
		want, err := os.ReadFile(filepath.Join(root, rel))
		if err != nil {
			t.Errorf("%s: %v", rel, err)
			return nil
		}
		got, _ := fs.ReadFile(upstream, p)
		if !bytes.Equal(got, want) {
			t.Errorf("upstream/%s differs from %s", rel, filepath.Join(root, rel))
		}
		n++
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	// Everything the reference needs beside the app schemas is in the copy.
	for _, dir := range []string{expressDir, sharedJSDir, apiDir} {
		_ = filepath.WalkDir(filepath.Join(root, dir), func(p string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return err
			}
			rel, _ := filepath.Rel(root, p)
			if filepath.Ext(p) == ".json" && filepath.Dir(rel) == filepath.FromSlash(apiDir) {
				return nil // the bundled JSON and the error codes: not used by the reference
			}
			if filepath.Base(p) == ".spectral.yaml" {
				return nil // main.js leaves it out
			}
			if _, err := fs.Stat(upstream, "upstream/"+filepath.ToSlash(rel)); err != nil {
				t.Errorf("%s is missing from upstream/", rel)
			}
			return nil
		})
	}
	t.Logf("%d files compared", n)
}

// TestReferenceRunsFromTheCopy: without ../shared (as on CI) the reference runs from
// upstream/ and the bot's app schemas, and carries a case.
func TestReferenceRunsFromTheCopy(t *testing.T) {
	useCopy = true
	defer func() { useCopy = false }()
	_, a, b := twoCentres(t)
	if _, err := a.Send(context.Background(), oidB, ucri.AppIncidentWithPatient, "incident", incident(ucri.NewMessageID()), ucri.AckNone); err != nil {
		t.Fatal(err)
	}
	pollUntil(t, b, 1)
}

// TestReferenceCarriesSignedCase: A's case reaches B through the reference with its
// signature intact; the signature made by Switchboard's Go code (ucri.Sign) verifies with
// the reference's own code, a changed copy does not; B's commit makes the reference send A
// a delivery report that verifies with ucri.Verify and the UCRM's key.
func TestReferenceCarriesSignedCase(t *testing.T) {
	srv, a, b := twoCentres(t)
	ctx := context.Background()
	sent, err := a.Send(ctx, oidB, ucri.AppIncidentWithPatient, "incident", incident(ucri.NewMessageID()), ucri.AckAll)
	if err != nil {
		t.Fatal(err)
	}
	got := pollUntil(t, b, 1)[0]
	if got.MessageID != sent.MessageID || got.Signature != sent.Signature || got.SequenceID != 1 {
		t.Fatalf("B received %+v", got)
	}
	hash, err := srv.Verify(ctx, got.Envelope, []string{got.Destination}, &keyA.PublicKey)
	if err != nil {
		t.Fatalf("the reference refuses ucri.Sign's signature: %v", err)
	}
	if want := ucri.SigningHash(&got.Envelope, got.Destination); hash != want {
		t.Errorf("the reference hashes %s, ucri %s", hash, want)
	}
	if err := ucri.Verify(&got.Envelope, got.Destination, &keyA.PublicKey); err != nil {
		t.Errorf("ucri.Verify refuses the received case: %v", err)
	}
	changed := got.Envelope
	changed.Payload.Data += " "
	if _, err := srv.Verify(ctx, changed, []string{got.Destination}, &keyA.PublicKey); !errors.Is(err, ErrRefused) {
		t.Errorf("the reference took a changed payload: %v", err)
	}
	if _, err := srv.Verify(ctx, got.Envelope, []string{oidA}, &keyA.PublicKey); !errors.Is(err, ErrRefused) {
		t.Errorf("the reference took the signature for another destination: %v", err)
	}
	if _, err := srv.Verify(ctx, got.Envelope, []string{got.Destination}, &keyB.PublicKey); !errors.Is(err, ErrRefused) {
		t.Errorf("the reference took the signature with another key: %v", err)
	}

	report := pollUntil(t, a, 1)[0]
	var ds map[string]any
	_ = json.Unmarshal([]byte(report.Payload.Data), &ds)
	if report.Source != srv.OwnOID || report.Payload.SchemaID != "message_delivery_status" || ds["refMessageId"] != sent.MessageID || ds["statusCode"] != 200.0 {
		t.Fatalf("A received %+v", report)
	}
	if err := ucri.Verify(&report.Envelope, report.Destination, &srv.Key.PublicKey); err != nil {
		t.Errorf("ucri.Verify refuses the reference's delivery report: %v", err)
	}
}

// TestReferenceSignatureVerifiesInGo: a signature made by the reference's own code
// verifies with ucri.Verify, and not for a changed message.
func TestReferenceSignatureVerifiesInGo(t *testing.T) {
	srv, _, _ := twoCentres(t)
	data, _ := json.Marshal(incident(ucri.NewMessageID()))
	env := ucri.Envelope{
		MessageID: ucri.NewMessageID(), Source: oidA,
		Payload: ucri.Payload{AppID: ucri.AppIncidentWithPatient, AppVersion: "1.0", SchemaID: "incident", ContentType: ucri.ContentTypeJSON, Data: string(data) + "\u00e4\u2028<&>\"\\"},
	}
	sig, err := srv.Sign(context.Background(), env, []string{oidB}, keyA)
	if err != nil {
		t.Fatal(err)
	}
	env.Signature = sig
	if err := ucri.Verify(&env, oidB, &keyA.PublicKey); err != nil {
		t.Errorf("ucri.Verify refuses the reference's signature: %v", err)
	}
	env.Source = oidB
	if err := ucri.Verify(&env, oidB, &keyA.PublicKey); err == nil {
		t.Error("ucri.Verify took the reference's signature for a changed source")
	}
}

// TestReferenceRestartRenumbers: a restart empties the reference's queues and numbers
// sequenceId from 1 again, on the same port, with tokens still valid.
func TestReferenceRestartRenumbers(t *testing.T) {
	srv, a, b := twoCentres(t)
	ctx := context.Background()
	for range 2 {
		if _, err := a.Send(ctx, oidB, ucri.AppIncidentWithPatient, "incident", incident(ucri.NewMessageID()), ucri.AckNone); err != nil {
			t.Fatal(err)
		}
	}
	got := pollUntil(t, b, 2)
	if got[0].SequenceID != 1 || got[1].SequenceID != 2 {
		t.Fatalf("sequence IDs %d, %d", got[0].SequenceID, got[1].SequenceID)
	}
	url := srv.URL
	if err := srv.Restart(ctx); err != nil {
		t.Fatal(err)
	}
	if srv.URL != url {
		t.Errorf("URL %s after the restart, was %s", srv.URL, url)
	}
	sent, err := a.Send(ctx, oidB, ucri.AppIncidentWithPatient, "incident", incident(ucri.NewMessageID()), ucri.AckNone)
	if err != nil {
		t.Fatal(err)
	}
	got = pollUntil(t, b, 3)
	if got[2].MessageID != sent.MessageID || got[2].SequenceID != 1 {
		t.Errorf("after the restart: message %s with sequenceId %d, want %s with 1", got[2].MessageID, got[2].SequenceID, sent.MessageID)
	}
}
