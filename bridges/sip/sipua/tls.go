package sipua

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"
)

// clientTLSConfig is the configuration of outgoing TLS connections: the
// system roots plus CAFile, certificates always verified (the server name
// is the proxy's host, set by sipgo per connection).
func (u *UA) clientTLSConfig() (*tls.Config, error) {
	roots, err := x509.SystemCertPool()
	if err != nil || roots == nil {
		roots = x509.NewCertPool()
	}
	if u.cfg.CAFile != "" {
		pem, err := os.ReadFile(u.cfg.CAFile)
		if err != nil {
			return nil, fmt.Errorf("sipua: ca_file: %w", err)
		}
		if !roots.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("sipua: ca_file %s: no PEM certificate found", u.cfg.CAFile)
		}
	}
	return &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12}, nil
}
