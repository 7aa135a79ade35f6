package serve

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"log"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bgctl/bg/controlplane/config"
)

// testPKI is a CA and the certificates it signs, written as PEM files.
type testPKI struct {
	dir    string
	cert   *x509.Certificate
	key    *ecdsa.PrivateKey
	CAFile string
	serial int64
}

func newTestPKI(t *testing.T) *testPKI {
	t.Helper()
	p := &testPKI{dir: t.TempDir(), serial: 1}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	p.cert, _ = x509.ParseCertificate(der)
	p.key = key
	p.CAFile = filepath.Join(p.dir, "ca.pem")
	writePEM(t, p.CAFile, "CERTIFICATE", der)
	return p
}

// issue signs a leaf for names (DNS names or IPs) and returns its files.
func (p *testPKI) issue(t *testing.T, name string, usage x509.ExtKeyUsage, names ...string) (certFile, keyFile string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	p.serial++
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(p.serial), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{usage}}
	for _, n := range names {
		if ip := net.ParseIP(n); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, n)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, p.cert, &key.PublicKey, p.key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(p.dir, name+".pem"), filepath.Join(p.dir, name+"-key.pem")
	writePEM(t, certFile, "CERTIFICATE", der)
	writePEM(t, keyFile, "EC PRIVATE KEY", kder)
	return certFile, keyFile
}

func writePEM(t *testing.T, path, typ string, der []byte) {
	t.Helper()
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
}

// fakeConsulTLS is an HTTPS server that requires a client certificate
// from pki and records each request's ACL token.
func fakeConsulTLS(t *testing.T, pki *testPKI, serverName string) (addr string, tokens func() []string) {
	t.Helper()
	var mu sync.Mutex
	var seen []string
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		seen = append(seen, r.Header.Get("X-Consul-Token"))
		mu.Unlock()
		w.Header().Set("X-Consul-Index", "1")
		_, _ = w.Write([]byte(`"127.0.0.1:8300"`))
	}))
	certFile, keyFile := pki.issue(t, "server", x509.ExtKeyUsageServerAuth, serverName)
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(pki.cert)
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{cert}, ClientCAs: pool, ClientAuth: tls.RequireAndVerifyClientCert}
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // the refused handshakes are expected
	srv.StartTLS()
	t.Cleanup(srv.Close)
	return srv.Listener.Addr().String(), func() []string {
		mu.Lock()
		defer mu.Unlock()
		return append([]string(nil), seen...)
	}
}

// Every Consul client bg builds (watch, read, control: membership, KV,
// election and sessions, ACK reports) speaks TLS with consul.tls (CA,
// client certificate, server name) and sends the token from
// consul.token_file.
func TestConsulClientsUseTLSAndToken(t *testing.T) {
	pki := newTestPKI(t)
	addr, tokens := fakeConsulTLS(t, pki, "server.dc1.consul")
	certFile, keyFile := pki.issue(t, "bg", x509.ExtKeyUsageClientAuth, "bg")
	tokenFile := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(tokenFile, []byte("s3cr3t-from-file\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c := config.Consul{Address: addr, TokenFile: tokenFile,
		TLS: config.ConsulTLS{CAFile: pki.CAFile, CertFile: certFile, KeyFile: keyFile, ServerName: "server.dc1.consul"}}
	set, err := consulClients(c, nil)
	if err != nil {
		t.Fatal(err)
	}
	for use, cl := range map[string]interface {
		Leader() (string, error)
	}{"watch": set.Watch.Status(), "read": set.Read.Status(), "control": set.Control.Status()} {
		if _, err := cl.Leader(); err != nil {
			t.Errorf("%s client over TLS: %v", use, err)
		}
	}
	got := tokens()
	if len(got) != 3 {
		t.Fatalf("server saw %d requests, want 3", len(got))
	}
	for _, tok := range got {
		if tok != "s3cr3t-from-file" {
			t.Errorf("token %q, want the file's, trimmed", tok)
		}
	}
}

// Without the CA, or with the wrong server name, the clients refuse
// Consul's certificate: TLS settings are not decoration.
func TestConsulClientsCheckTheServerCertificate(t *testing.T) {
	pki := newTestPKI(t)
	addr, tokens := fakeConsulTLS(t, pki, "server.dc1.consul")
	certFile, keyFile := pki.issue(t, "bg", x509.ExtKeyUsageClientAuth, "bg")
	other := newTestPKI(t)
	for name, tc := range map[string]config.ConsulTLS{
		"other CA":          {CAFile: other.CAFile, CertFile: certFile, KeyFile: keyFile, ServerName: "server.dc1.consul"},
		"wrong server name": {CAFile: pki.CAFile, CertFile: certFile, KeyFile: keyFile, ServerName: "server.dc2.consul"},
	} {
		set, err := consulClients(config.Consul{Address: addr, Token: "tok", TLS: tc}, nil)
		if err != nil {
			t.Fatal(err)
		}
		_, err = set.Control.Status().Leader()
		if err == nil || !strings.Contains(err.Error(), "certificate") {
			t.Errorf("%s: err = %v, want a certificate error", name, err)
		}
	}
	// And without a client certificate the server refuses the handshake.
	set, err := consulClients(config.Consul{Address: addr, Token: "tok", TLS: config.ConsulTLS{CAFile: pki.CAFile, ServerName: "server.dc1.consul"}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := set.Control.Status().Leader(); err == nil {
		t.Error("no client certificate: request succeeded")
	}
	if n := len(tokens()); n != 0 {
		t.Errorf("%d requests reached the handler", n)
	}
}

func TestConsulClientsTokenFileErrors(t *testing.T) {
	_, err := consulClients(config.Consul{Address: "127.0.0.1:8500", TokenFile: filepath.Join(t.TempDir(), "missing")}, nil)
	if err == nil || !strings.Contains(err.Error(), "consul.token_file") {
		t.Fatalf("err = %v, want one naming consul.token_file", err)
	}
}
