package admin

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"log"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/bgctl/bg/controlplane/config"
)

// testCA signs certificates for the TLS tests.
type testCA struct {
	t    *testing.T
	dir  string
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	file string
}

func newTestCA(t *testing.T, name string) *testCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	ca := &testCA{t: t, dir: t.TempDir(), cert: cert, key: key}
	ca.file = filepath.Join(ca.dir, "ca.pem")
	writePEM(t, ca.file, "CERTIFICATE", der)
	return ca
}

var serial int64 = 100

// issue writes a server-and-client certificate for cn, valid for 127.0.0.1.
func (ca *testCA) issue(cn string) (certFile, keyFile string) {
	ca.t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		ca.t.Fatal(err)
	}
	serial++
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		ca.t.Fatal(err)
	}
	kder, _ := x509.MarshalECPrivateKey(key)
	certFile, keyFile = filepath.Join(ca.dir, cn+".pem"), filepath.Join(ca.dir, cn+"-key.pem")
	writePEM(ca.t, certFile, "CERTIFICATE", der)
	writePEM(ca.t, keyFile, "EC PRIVATE KEY", kder)
	return certFile, keyFile
}

func writePEM(t *testing.T, path, typ string, der []byte) {
	t.Helper()
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
}

func tlsClient(ca *testCA, certFile, keyFile string) *http.Client {
	conf := &tls.Config{RootCAs: x509.NewCertPool()}
	if ca != nil {
		conf.RootCAs.AddCert(ca.cert)
	}
	if certFile != "" {
		pair, err := tls.LoadX509KeyPair(certFile, keyFile)
		if err != nil {
			panic(err)
		}
		// Always sent: with Certificates, Go's client would send none that
		// the server's CA list does not name.
		conf.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return &pair, nil }
	}
	return &http.Client{Transport: &http.Transport{TLSClientConfig: conf}, Timeout: 5 * time.Second}
}

func TestAdminTLS(t *testing.T) {
	ca, other := newTestCA(t, "bg-ca"), newTestCA(t, "other-ca")
	cert, key := ca.issue("server")
	cliCert, cliKey := ca.issue("client")
	badCert, badKey := other.issue("intruder")
	confs, err := NewTLS(config.AdminTLS{CertFile: cert, KeyFile: key, ClientCAFile: ca.file}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	// As bg serve does: its own listener, not httptest's certificate.
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: Handler(newFake(), Options{Token: "s3cret", Gatherer: prometheus.NewRegistry(), Log: slog.New(slog.DiscardHandler)}),
		ErrorLog: log.New(io.Discard, "", 0)}
	go srv.Serve(tls.NewListener(lis, confs.Server))
	t.Cleanup(func() { srv.Close() })
	url := "https://" + lis.Addr().String()
	get := func(c *http.Client) (int, error) {
		req, _ := http.NewRequest("GET", url+"/healthz", nil)
		req.Header.Set("Authorization", "Bearer s3cret")
		resp, err := c.Do(req)
		if err != nil {
			return 0, err
		}
		resp.Body.Close()
		return resp.StatusCode, nil
	}
	if code, err := get(tlsClient(ca, "", "")); err != nil || code != http.StatusOK {
		t.Errorf("trusting the CA, no client certificate: %d %v; want 200 (client certificates are optional)", code, err)
	}
	if code, err := get(tlsClient(ca, cliCert, cliKey)); err != nil || code != http.StatusOK {
		t.Errorf("with a client certificate of the CA: %d %v", code, err)
	}
	if _, err := get(tlsClient(ca, badCert, badKey)); err == nil {
		t.Error("a client certificate of another CA was accepted")
	}
	if _, err := get(tlsClient(other, "", "")); err == nil {
		t.Error("a client that does not trust the CA connected")
	}
	// Plain HTTP to the TLS port gets nothing useful.
	plain := "http://" + lis.Addr().String() + "/healthz"
	if resp, err := http.Get(plain); err == nil {
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK {
			t.Error("plain HTTP got 200 from the TLS port")
		}
	}
	// Forwarded commands trust the client CA and present the certificate.
	if confs.Forward == nil || confs.Forward.GetClientCertificate == nil {
		t.Fatal("no forwarding TLS config")
	}
	fwd := &http.Client{Transport: &http.Transport{TLSClientConfig: confs.Forward}, Timeout: 5 * time.Second}
	if code, err := get(fwd); err != nil || code != http.StatusOK {
		t.Errorf("forwarding client: %d %v", code, err)
	}
}

func TestAdminTLSReloadsChangedFiles(t *testing.T) {
	ca := newTestCA(t, "bg-ca")
	cert, key := ca.issue("first")
	now := time.Unix(1_700_000_000, 0)
	kp := &keyPair{cert: cert, key: key, log: slog.New(slog.DiscardHandler), now: func() time.Time { return now }}
	if err := kp.load(); err != nil {
		t.Fatal(err)
	}
	cn := func() string {
		c, _ := kp.getCertificate(nil)
		leaf, err := x509.ParseCertificate(c.Certificate[0])
		if err != nil {
			t.Fatal(err)
		}
		return leaf.Subject.CommonName
	}
	if got := cn(); got != "first" {
		t.Fatalf("CN %q", got)
	}
	// Rotate: new files at the same paths.
	c2, k2 := ca.issue("second")
	for from, to := range map[string]string{c2: cert, k2: key} {
		data, _ := os.ReadFile(from)
		if err := os.WriteFile(to, data, 0o600); err != nil {
			t.Fatal(err)
		}
		future := now.Add(time.Minute)
		_ = os.Chtimes(to, future, future)
	}
	if got := cn(); got != "first" {
		t.Fatalf("reloaded before a second passed: %q", got)
	}
	now = now.Add(1100 * time.Millisecond)
	if got := cn(); got != "second" {
		t.Fatalf("after rotation: CN %q, want second", got)
	}
	// A broken pair keeps the last good one.
	if err := os.WriteFile(cert, []byte("garbage"), 0o600); err != nil {
		t.Fatal(err)
	}
	_ = os.Chtimes(cert, now.Add(2*time.Minute), now.Add(2*time.Minute))
	now = now.Add(1100 * time.Millisecond)
	if got := cn(); got != "second" {
		t.Fatalf("after a broken write: CN %q, want second kept", got)
	}
}

// A follower forwards commands to the leader over https, presenting its
// certificate; the leader authenticates the token again and names it.
func TestForwardingOverTLS(t *testing.T) {
	ca := newTestCA(t, "bg-ca")
	cert, key := ca.issue("replica")
	confs, err := NewTLS(config.AdminTLS{CertFile: cert, KeyFile: key, ClientCAFile: ca.file}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	creds := []config.AdminCredential{{Name: "ci", Scope: config.ScopeOperate, SHA256: config.HashToken("op")}}
	serve := func(h http.Handler) string {
		lis, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		srv := &http.Server{Handler: h, ErrorLog: log.New(io.Discard, "", 0)}
		go srv.Serve(tls.NewListener(lis, confs.Server))
		t.Cleanup(func() { srv.Close() })
		return lis.Addr().String()
	}
	leaderCtrl, followerCtrl := newFake(), newFake()
	leaderAddr := serve(Handler(leaderCtrl, Options{Tokens: creds, Gatherer: prometheus.NewRegistry(), Log: slog.New(slog.DiscardHandler), DefaultTimeout: time.Second}))
	followerAddr := serve(Handler(followerCtrl, Options{Tokens: creds, Gatherer: prometheus.NewRegistry(), Log: slog.New(slog.DiscardHandler), DefaultTimeout: time.Second,
		Forward: confs.Forward, Leader: func(context.Context) (string, bool, error) { return leaderAddr, false, nil }}))
	req, _ := http.NewRequest("POST", "https://"+followerAddr+"/v1/services/web/switch", strings.NewReader(`{"to":"green"}`))
	req.Header.Set("Authorization", "Bearer op")
	resp, err := tlsClient(ca, "", "").Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("forwarded switch: %d %s", resp.StatusCode, body)
	}
	if calls := followerCtrl.Calls(); len(calls) != 0 {
		t.Errorf("the follower acted: %v", calls)
	}
	if calls := leaderCtrl.Calls(); len(calls) != 1 || calls[0] != "Switch" {
		t.Fatalf("leader calls %v, want [Switch]", calls)
	}
	leaderCtrl.mu.Lock()
	defer leaderCtrl.mu.Unlock()
	if len(leaderCtrl.actors) != 1 || !strings.Contains(leaderCtrl.actors[0], "(token ci, ") {
		t.Errorf("leader's actor %q, want the token ci", leaderCtrl.actors)
	}
}
