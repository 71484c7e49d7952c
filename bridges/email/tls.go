package email

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"os"
)

// tlsConfig is the client TLS configuration for a server: its host name checked against
// the certificate, by the system's CAs or those of ca_file.
func tlsConfig(s ServerConfig) (*tls.Config, error) {
	host, _, err := net.SplitHostPort(s.Address)
	if err != nil {
		host = s.Address
	}
	cfg := &tls.Config{ServerName: host, InsecureSkipVerify: s.InsecureSkipVerify, MinVersion: tls.VersionTLS12} // #nosec G402 -- opt-in for test servers
	if s.CAFile != "" {
		if cfg.RootCAs, err = loadCAFile(s.CAFile); err != nil {
			return nil, err
		}
	}
	return cfg, nil
}

// loadCAFile reads a PEM file of CA certificates.
func loadCAFile(path string) (*x509.CertPool, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("email: read the CA file: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(data) {
		return nil, errors.New("email: the CA file " + path + " holds no PEM certificate")
	}
	return pool, nil
}
