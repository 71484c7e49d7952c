package kamailio

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/md5"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	_ "embed"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"text/template"
	"time"
)

// ConfigTemplate is the routing script's template (kamailio.cfg.tmpl), the example that
// docs/sip.md shows.
//
//go:embed kamailio.cfg.tmpl
var ConfigTemplate string

var cfgTemplate = template.Must(template.New("kamailio.cfg").Option("missingkey=error").Parse(ConfigTemplate))

// cfgData is what the template is executed with.
type cfgData struct {
	Debug                     int
	Domain, Host, ModulesDir  string
	UDPPort, TCPPort, TLSPort int
	DBDir                     string
	CertFile, KeyFile, CAFile string
	Bridge                    bool
	BridgeDomain, BridgeIP    string
	BridgeURI                 string // sip:host:port;transport=...
}

var (
	// hostRE is what a domain may be: lowercase DNS labels.
	hostRE = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*$`)
	// userRE is what a user name may be: RFC 3261 unreserved characters, no escapes, so
	// that it needs no quoting in a db_text row or a SIP URI.
	userRE = regexp.MustCompile(`^[A-Za-z0-9._~!*'()+-]{1,64}$`)
	// pathOK is what a path written into the config may hold.
	pathOK = regexp.MustCompile(`^[A-Za-z0-9/._+-]+$`)
)

// validate checks the options and fills in defaults.
func (o *Options) validate() error {
	if o.Domain == "" {
		o.Domain = DefaultDomain
	}
	if !hostRE.MatchString(o.Domain) {
		return fmt.Errorf("kamailio: domain %q is not a lowercase DNS name", o.Domain)
	}
	for u := range o.Users {
		if !userRE.MatchString(u) {
			return fmt.Errorf("kamailio: user name %q has characters the test peer does not support", u)
		}
	}
	if o.BridgeDomain == "" {
		if o.BridgeAddr != "" {
			return fmt.Errorf("kamailio: bridge address %s without a bridge domain", o.BridgeAddr)
		}
		return nil
	}
	if !hostRE.MatchString(o.BridgeDomain) || o.BridgeDomain == o.Domain {
		return fmt.Errorf("kamailio: bridge domain %q is not a lowercase DNS name other than %s", o.BridgeDomain, o.Domain)
	}
	host, port, err := net.SplitHostPort(o.BridgeAddr)
	if err != nil {
		return fmt.Errorf("kamailio: bridge address %q: %w", o.BridgeAddr, err)
	}
	if ip := net.ParseIP(host); ip == nil || ip.To4() == nil || port == "" || port == "0" {
		return fmt.Errorf("kamailio: bridge address %q must be an IPv4 address and a port", o.BridgeAddr)
	}
	if o.BridgeTransport == "" {
		o.BridgeTransport = "udp"
	}
	if !slices.Contains([]string{"udp", "tcp", "tls"}, o.BridgeTransport) {
		return fmt.Errorf("kamailio: bridge transport %q is not udp, tcp or tls", o.BridgeTransport)
	}
	return nil
}

// writeConfig renders kamailio.cfg for s into s.Dir.
func (s *Server) writeConfig() error {
	d := cfgData{
		Debug:      2,
		Domain:     s.Domain,
		Host:       loopback,
		ModulesDir: s.modules,
		UDPPort:    s.udpPort, TCPPort: s.tcpPort, TLSPort: s.tlsPort,
		DBDir:    filepath.Join(s.Dir, dbDir),
		CertFile: filepath.Join(s.Dir, certFile),
		KeyFile:  filepath.Join(s.Dir, keyFile),
		CAFile:   s.CAFile,
	}
	if s.opts.BridgeDomain != "" {
		host, _, _ := net.SplitHostPort(s.opts.BridgeAddr)
		d.Bridge, d.BridgeDomain, d.BridgeIP = true, s.opts.BridgeDomain, host
		d.BridgeURI = "sip:" + s.opts.BridgeAddr + ";transport=" + s.opts.BridgeTransport
	}
	for _, p := range []string{d.ModulesDir, d.DBDir, d.CertFile, d.KeyFile, d.CAFile} {
		if !pathOK.MatchString(p) {
			return fmt.Errorf("kamailio: path %q has characters a Kamailio config cannot hold", p)
		}
	}
	var b bytes.Buffer
	if err := cfgTemplate.Execute(&b, d); err != nil {
		return fmt.Errorf("kamailio: failed to render config: %w", err)
	}
	if err := os.WriteFile(filepath.Join(s.Dir, configFile), b.Bytes(), 0o644); err != nil {
		return fmt.Errorf("kamailio: failed to write config: %w", err)
	}
	return nil
}

// dbTables are the db_text tables the script uses: header line and version (Kamailio 5.6
// schema, as in /usr/share/kamailio/dbtext/kamailio; writeDB makes string columns
// nullable).
var dbTables = []struct{ name, header, version string }{
	{"subscriber", "id(int,auto) username(string) domain(string) password(string) ha1(string) ha1b(string)", "7"},
	{"presentity", "id(int,auto) username(string) domain(string) event(string) etag(string) expires(int) received_time(int) body(string) sender(string) priority(int) ruid(string,null)", "5"},
	{"active_watchers", "id(int,auto) presentity_uri(string) watcher_username(string) watcher_domain(string) to_user(string) to_domain(string) event(string) event_id(string,null) to_tag(string) from_tag(string) callid(string) local_cseq(int) remote_cseq(int) contact(string) record_route(string,null) expires(int) status(int) reason(string,null) version(int) socket_info(string) local_contact(string) from_user(string) from_domain(string) updated(int) updated_winfo(int) flags(int) user_agent(string,null)", "12"},
	{"watchers", "id(int,auto) presentity_uri(string) watcher_username(string) watcher_domain(string) event(string) status(int) reason(string,null) inserted_time(int)", "3"},
	{"xcap", "id(int,auto) username(string) domain(string) doc(string) doc_type(int) etag(string) source(int) doc_uri(string) port(int)", "4"},
}

// writeDB creates the db_text database: the schema version table, empty presence tables
// and the subscribers with their HA1 (the passwords themselves are not written).
func (s *Server) writeDB() error {
	dir := filepath.Join(s.Dir, dbDir)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("kamailio: failed to create db dir: %w", err)
	}
	var version strings.Builder
	version.WriteString("id(int,auto) table_name(string) table_version(int)\n")
	for _, t := range dbTables {
		fmt.Fprintf(&version, "0:%s:%s\n", t.name, t.version)
		// db_text stores an empty string as an empty field, which it reads back as
		// NULL: a NOT NULL string column would make the table unreadable after a
		// restart (presentity.sender is empty for a PUBLISH without one).
		content := strings.ReplaceAll(t.header, "(string)", "(string,null)") + "\n"
		if t.name == "subscriber" {
			users := make([]string, 0, len(s.opts.Users))
			for u := range s.opts.Users {
				users = append(users, u)
			}
			slices.Sort(users)
			for i, u := range users {
				content += fmt.Sprintf("%d:%s:%s::%s:\n", i+1, u, s.Domain, HA1(u, s.Domain, s.opts.Users[u]))
			}
		}
		if err := os.WriteFile(filepath.Join(dir, t.name), []byte(content), 0o600); err != nil {
			return fmt.Errorf("kamailio: failed to write db table %s: %w", t.name, err)
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "version"), []byte(version.String()), 0o600); err != nil {
		return fmt.Errorf("kamailio: failed to write db table version: %w", err)
	}
	return nil
}

// HA1 is the digest secret MD5(user:realm:password) that the subscriber table stores.
func HA1(user, realm, password string) string {
	sum := md5.Sum([]byte(user + ":" + realm + ":" + password))
	return hex.EncodeToString(sum[:])
}

// writeCerts creates a CA and a server certificate for 127.0.0.1 and the domain, valid
// for a day, unless they exist (a given Dir reused).
func (s *Server) writeCerts() error {
	if _, err := os.Stat(filepath.Join(s.Dir, keyFile)); err == nil {
		return nil
	}
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return fmt.Errorf("kamailio: failed to generate CA key: %w", err)
	}
	now := time.Now()
	caTmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "Switchboard test CA for " + s.Domain},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		return fmt.Errorf("kamailio: failed to create CA: %w", err)
	}
	ca, err := x509.ParseCertificate(caDER)
	if err != nil {
		return fmt.Errorf("kamailio: failed to parse CA: %w", err)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return fmt.Errorf("kamailio: failed to generate server key: %w", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2),
		Subject:      pkix.Name{CommonName: s.Domain},
		DNSNames:     []string{s.Domain},
		IPAddresses:  []net.IP{net.ParseIP(loopback)},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		return fmt.Errorf("kamailio: failed to create server certificate: %w", err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return fmt.Errorf("kamailio: failed to encode server key: %w", err)
	}
	files := []struct {
		name, typ string
		der       []byte
		mode      os.FileMode
	}{
		{caFile, "CERTIFICATE", caDER, 0o644},
		{certFile, "CERTIFICATE", der, 0o644},
		{keyFile, "EC PRIVATE KEY", keyDER, 0o600},
	}
	for _, f := range files {
		data := pem.EncodeToMemory(&pem.Block{Type: f.typ, Bytes: f.der})
		if err := os.WriteFile(filepath.Join(s.Dir, f.name), data, f.mode); err != nil {
			return fmt.Errorf("kamailio: failed to write %s: %w", f.name, err)
		}
	}
	return nil
}
