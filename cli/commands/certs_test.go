package commands_test

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/bgctl/bg/controlplane/devcerts"
	"github.com/bgctl/bg/controlplane/xds"
)

func readCert(t *testing.T, path string) *x509.Certificate {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	blk, _ := pem.Decode(b)
	if blk == nil {
		t.Fatalf("%s: no PEM block", path)
	}
	c, err := x509.ParseCertificate(blk.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// bg certs dev writes a CA, a server certificate for 127.0.0.1 and
// localhost, and per node id a client certificate naming the node as
// SPIFFE ID and CN, all verifying against the CA; a second run reuses the
// CA and rotates the rest.
func TestCertsDev(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "certs")
	code, out, errOut := run(t, "certs", "dev", "--dir", dir, "--node-ids", "envoy-1, web-client")
	if code != 0 {
		t.Fatalf("exit %d\n%s%s", code, out, errOut)
	}
	for _, want := range []string{"wrote CA", "server.pem", "spiffe://bg.dev/envoy-1, CN=envoy-1", "web-client-key.pem"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	ca := readCert(t, filepath.Join(dir, devcerts.CAFile))
	if !ca.IsCA {
		t.Fatal("ca.pem is not a CA")
	}
	roots := x509.NewCertPool()
	roots.AddCert(ca)

	srv := readCert(t, filepath.Join(dir, devcerts.ServerFile))
	if _, err := srv.Verify(x509.VerifyOptions{Roots: roots, DNSName: "localhost", KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}); err != nil {
		t.Errorf("server certificate for localhost: %v", err)
	}
	if err := srv.VerifyHostname("127.0.0.1"); err != nil {
		t.Errorf("server certificate for 127.0.0.1: %v", err)
	}
	if srv.NotAfter.Before(time.Now().Add(300 * 24 * time.Hour)) {
		t.Errorf("server certificate expires %v", srv.NotAfter)
	}
	for _, node := range []string{"envoy-1", "web-client"} {
		certFile, keyFile := devcerts.ClientFiles(node)
		c := readCert(t, filepath.Join(dir, certFile))
		if _, err := c.Verify(x509.VerifyOptions{Roots: roots, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
			t.Errorf("%s: %v", node, err)
		}
		for _, from := range []string{xds.NodeIDFromSPIFFE, xds.NodeIDFromCN} {
			if got, err := xds.NodeIDOf(c, from); err != nil || got != node {
				t.Errorf("%s: node id from %s = %q, %v", node, from, got, err)
			}
		}
		if len(c.URIs) != 1 || c.URIs[0].String() != "spiffe://bg.dev/"+node {
			t.Errorf("%s: URIs %v", node, c.URIs)
		}
		if _, err := tls.LoadX509KeyPair(filepath.Join(dir, certFile), filepath.Join(dir, keyFile)); err != nil {
			t.Errorf("%s: key does not match: %v", node, err)
		}
		if st, err := os.Stat(filepath.Join(dir, keyFile)); err != nil || st.Mode().Perm() != 0o600 {
			t.Errorf("%s: key mode %v, %v; want 0600", node, st.Mode(), err)
		}
	}

	// Again: the same CA, a new server certificate that it verifies.
	code, out, errOut = run(t, "certs", "dev", "--dir", dir)
	if code != 0 || !strings.Contains(out, "reused CA") {
		t.Fatalf("second run: exit %d\n%s%s", code, out, errOut)
	}
	if again := readCert(t, filepath.Join(dir, devcerts.CAFile)); !again.Equal(ca) {
		t.Error("the CA changed")
	}
	srv2 := readCert(t, filepath.Join(dir, devcerts.ServerFile))
	if srv2.SerialNumber.Cmp(srv.SerialNumber) == 0 {
		t.Error("server certificate not rotated")
	}
	if _, err := srv2.Verify(x509.VerifyOptions{Roots: roots, DNSName: "localhost"}); err != nil {
		t.Errorf("rotated server certificate: %v", err)
	}
	if _, err := tls.LoadX509KeyPair(filepath.Join(dir, devcerts.ServerFile), filepath.Join(dir, devcerts.ServerKeyFile)); err != nil {
		t.Errorf("rotated server key: %v", err)
	}
}

func TestCertsDevRefuses(t *testing.T) {
	dir := t.TempDir()
	if code, _, errOut := run(t, "certs", "dev", "--dir", dir, "--node-ids", "../evil"); code == 0 || !strings.Contains(errOut, `node id "../evil"`) {
		t.Errorf("a node id with a path: exit %d %s", code, errOut)
	}
	if code, _, errOut := run(t, "certs", "dev"); code == 0 || !strings.Contains(errOut, "dir") {
		t.Errorf("without --dir: exit %d %s", code, errOut)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Errorf("refused run wrote %d files", len(entries))
	}
}
