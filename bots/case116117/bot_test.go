package case116117

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/switchboard-matrix/switchboard/bots/case116117/ucri"
)

func validLink() LinkConfig {
	return LinkConfig{
		Name: "b", OID: "1.2.3", UCRM: UCRMConfig{URL: "https://ucrm.example/ucrm/client/v0", Username: "u", Password: "p"},
		Dispatchers: []string{"@d:example.org"},
	}
}

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name string
		edit func(c *Config)
		want string // "" for valid
	}{
		{"valid", func(*Config) {}, ""},
		{"no links", func(c *Config) { c.Links = nil }, "links: at least one"},
		{"bad name", func(c *Config) { c.Links[0].Name = "B C" }, "links[0].name"},
		{"bad oid", func(c *Config) { c.Links[0].OID = "1..x" }, "links[0].oid"},
		{"duplicate", func(c *Config) { c.Links = append(c.Links, c.Links[0]) }, "used twice"},
		{"url with password", func(c *Config) { c.Links[0].UCRM.URL = "https://u:p@ucrm.example/" }, "credentials belong"},
		{"no password", func(c *Config) { c.Links[0].UCRM.Password = "" }, "username and password"},
		{"cert without key", func(c *Config) { c.Links[0].UCRM.ClientCert = "/x.pem" }, "go together"},
		{"no dispatchers", func(c *Config) { c.Links[0].Dispatchers = nil }, "dispatchers"},
		{"bad user", func(c *Config) { c.Links[0].Admins = []string{"admin"} }, "not a Matrix user ID"},
		{"room v11 id", func(c *Config) { c.Links[0].Rooms = []string{"!abc:example.org"} }, ""},
		{"room v12 id without server (Synapse)", func(c *Config) { c.Links[0].Rooms = []string{"!pWQf2JRyRFA3T0Ph0eHWGrwOFjA0oGKfEUUCOicXpCY"} }, ""},
		{"room alias", func(c *Config) { c.Links[0].Rooms = []string{"#work:example.org"} }, ""},
		{"alias without server", func(c *Config) { c.Links[0].Rooms = []string{"#work"} }, "not a room ID or alias"},
		{"bare name", func(c *Config) { c.Links[0].Rooms = []string{"work:example.org"} }, "not a room ID or alias"},
		{"lone bang", func(c *Config) { c.Links[0].Rooms = []string{"!"} }, "not a room ID or alias"},
		{"room id with space", func(c *Config) { c.Links[0].Rooms = []string{"!ab c"} }, "not a room ID or alias"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := Config{Links: []LinkConfig{validLink()}}
			tc.edit(&c)
			c.defaults()
			err := c.Validate()
			if tc.want == "" && err != nil || tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)) {
				t.Errorf("Validate() = %v; want %q", err, tc.want)
			}
		})
	}
}

func TestParseHandover(t *testing.T) {
	at := time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		name, fields, wantErr string
	}{
		{"full", "stichwort: A1, F2\nstrasse: Hauptstraße\nort: Beispielstadt\npatient: Muster, Erika\ngeschlecht: w\ngeburtsdatum: 31.12.1950\nalter: 75\nrmi: 360\nsonderrechte: ja", ""},
		{"coordinate only", "lat: 52,5\nlon: 13.4\npatient: Muster", ""},
		{"no patient", "strasse: Hauptstraße", "Patient"},
		{"no location", "patient: Muster", "Einsatzort"},
		{"unknown field", "farbe: rot", "unbekanntes Feld"},
		{"no colon", "Hauptstraße 1", "Feld: Wert"},
		{"bad date", "patient: X\ngeburtsdatum: gestern", "kein Datum"},
		{"bad gender", "patient: X\ngeschlecht: q", "nicht m, w oder d"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			inc, err := parseHandover(tc.fields, "550e8400-e29b-41d4-a716-446655440000", at)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v; want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if _, err := ucri.NewPayload(inc); err != nil {
				t.Errorf("the incident is not valid: %v", err)
			}
		})
	}
}

// TestNoPatientInTitle: the room name (state) carries classification and place only.
func TestNoPatientInTitle(t *testing.T) {
	inc, err := parseHandover("stichwort: A1\nstrasse: Hauptstraße\nort: Beispielstadt\npatient: Geheim, Erika\ntelefon: 0301234", "550e8400-e29b-41d4-a716-446655440000", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	title := caseTitle(inc)
	if title != "Fall A1 · Beispielstadt" || strings.Contains(title, "Geheim") {
		t.Errorf("title %q", title)
	}
	text, html := renderIncident(inc, "ELS A", false, roleIncoming)
	for _, want := range []string{"Erika Geheim", "Hauptstraße", "0301234", "!accept"} {
		if !strings.Contains(text, want) || !strings.Contains(html, want) {
			t.Errorf("the summary lacks %q:\n%s", want, text)
		}
	}
}

func TestPortalKey(t *testing.T) {
	for _, k := range []portalKey{{link: "b"}, {link: "b", caseID: "550e8400-e29b-41d4-a716-446655440000"}} {
		got, ok := parsePortalKey(k.String())
		if !ok || got != k {
			t.Errorf("parsePortalKey(%q) = %+v, %v", k, got, ok)
		}
	}
	for _, s := range []string{"", "admin:", "case:b", "mailbox:x", "case::x"} {
		if _, ok := parsePortalKey(s); ok {
			t.Errorf("parsePortalKey(%q) accepted", s)
		}
	}
}

// TestLinkInit: the files a link reads at Start give clear errors naming their key.
func TestLinkInit(t *testing.T) {
	dir := t.TempDir()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	der, _ := x509.MarshalPKCS8PrivateKey(key)
	good := filepath.Join(dir, "key.pem")
	_ = os.WriteFile(good, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600)
	junk := filepath.Join(dir, "junk.pem")
	_ = os.WriteFile(junk, []byte("not a key"), 0o600)
	tests := []struct {
		name string
		edit func(l *LinkConfig)
		want string
	}{
		{"signing key", func(l *LinkConfig) { l.SigningKey = good }, ""},
		{"unsigned", func(*LinkConfig) {}, ""},
		{"missing key file", func(l *LinkConfig) { l.SigningKey = filepath.Join(dir, "none.pem") }, "signing_key"},
		{"not a key", func(l *LinkConfig) { l.SigningKey = junk }, "signing_key"},
		{"missing certificate", func(l *LinkConfig) { l.UCRM.ClientCert, l.UCRM.ClientKey = junk, junk }, "client_cert"},
		{"missing CA file", func(l *LinkConfig) { l.UCRM.CAFile = filepath.Join(dir, "none.pem") }, "ca_file"},
		{"CA file without certificates", func(l *LinkConfig) { l.UCRM.CAFile = junk }, "no certificate"},
		{"plain http to a remote host", func(l *LinkConfig) { l.UCRM.URL = "http://ucrm.example/ucrm/client/v0" }, "ucrm"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := validLink()
			tc.edit(&cfg)
			err := newLink(&Bot{}, &cfg).init()
			if tc.want == "" && err != nil || tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)) {
				t.Errorf("init() = %v; want %q", err, tc.want)
			}
		})
	}
}

// FuzzParseHandover: a dispatcher's !handover text never panics the parser, and what it
// accepts has a patient and a place; NewPayload then either validates it or says why.
func FuzzParseHandover(f *testing.F) {
	f.Add("stichwort: A1\nstrasse: Hauptstraße\nort: Beispielstadt\npatient: Muster, Erika\ngeburtsdatum: 31.12.1950")
	f.Add("lat: 52,5\nlon: 13.4\npatient: X\nalter: -1\nplz: 12a")
	f.Add("patient: X\nstrasse: Y\nsonderrechte: vielleicht")
	f.Fuzz(func(t *testing.T, fields string) {
		inc, err := parseHandover(fields, "550e8400-e29b-41d4-a716-446655440000", time.Unix(0, 0))
		if err != nil {
			return
		}
		if len(inc.Patients) == 0 || inc.MissionLocation.Address == nil && inc.MissionLocation.Coordinate == nil {
			t.Fatalf("accepted without patient or place: %q", fields)
		}
		_, _ = ucri.NewPayload(inc)
		_ = caseTitle(inc)
		_, _ = renderIncident(inc, "peer", false, roleOutgoing)
	})
}

func TestUserText(t *testing.T) {
	_, dialErr := net.Dial("tcp", "127.0.0.1:1")
	tests := []struct {
		name string
		err  error
		want string
	}{
		{"refused", fmt.Errorf("ucri: receive: %w", &url.Error{Op: "Post", URL: "http://10.1.2.3/ucrm", Err: dialErr}), "keine Verbindung (connect: connection refused)"},
		{"ucri error", &ucri.Error{Code: 464, Reason: "invalid payload", Message: "/patients: missing"}, "ungültiger Inhalt (UCRI 464; technisch: /patients: missing)"},
		{"HTTP status", fmt.Errorf("ucri: receive: %w", &ucri.APIError{Op: "receive", Status: 503}), "die UCRM antwortete mit HTTP 503"},
		{"url in text", errors.New("failed at https://internal.example/x"), "failed at …"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := userText(tc.err); got != tc.want {
				t.Errorf("userText() = %q; want %q", got, tc.want)
			}
		})
	}
}
