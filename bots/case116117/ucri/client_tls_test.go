package ucri

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

// testCA issues certificates for the mutual-TLS test.
type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pool *x509.CertPool
}

func newTestCA(t *testing.T) *testCA {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return &testCA{cert: cert, key: key, pool: pool}
}

func (ca *testCA) issue(t *testing.T, cn string, usage x509.ExtKeyUsage) tls.Certificate {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		ExtKeyUsage: []x509.ExtKeyUsage{usage}, IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

// TestClientMutualTLS: a UCRM that requires a client certificate accepts the client that
// has one (ClientConfig.TLS) and refuses the one without.
func TestClientMutualTLS(t *testing.T) {
	ca := newTestCA(t)
	f := &fakeUCRM{t: t, tokenLifetime: 10 * time.Minute, clock: time.Now, valid: map[string]bool{}}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(f.serve))
	srv.TLS = &tls.Config{
		Certificates: []tls.Certificate{ca.issue(t, "ucrm", x509.ExtKeyUsageServerAuth)},
		ClientAuth:   tls.RequireAndVerifyClientCert, ClientCAs: ca.pool, MinVersion: tls.VersionTLS12,
	}
	srv.StartTLS()
	t.Cleanup(srv.Close)
	f.srv = srv
	clientCert := ca.issue(t, "leitstelle-a", x509.ExtKeyUsageClientAuth)
	tests := []struct {
		name    string
		tls     *tls.Config
		wantErr bool
	}{
		{"with client certificate", &tls.Config{RootCAs: ca.pool, Certificates: []tls.Certificate{clientCert}, MinVersion: tls.VersionTLS12}, false},
		{"without client certificate", &tls.Config{RootCAs: ca.pool, MinVersion: tls.VersionTLS12}, true},
		{"unknown server CA", &tls.Config{Certificates: []tls.Certificate{clientCert}, MinVersion: tls.VersionTLS12}, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := f.client(t, func(cfg *ClientConfig) { cfg.TLS = tc.tls })
			info, err := c.Info(t.Context())
			if tc.wantErr != (err != nil) {
				t.Fatalf("Info() = %+v, %v; want error %t", info, err, tc.wantErr)
			}
		})
	}
}
