// Package devcerts makes a development CA and the certificates of xDS over
// mTLS with crypto/x509 (no openssl): a server certificate for bg and one
// client certificate per node id, naming the node both as a SPIFFE ID
// (spiffe://bg.dev/NODE) and as its common name. For development and
// tests only: keys are ECDSA P-256 written unencrypted.
package devcerts

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"time"
)

// TrustDomain is the SPIFFE trust domain of client certificates.
const TrustDomain = "bg.dev"

// File names in the output directory.
const (
	CAFile        = "ca.pem"
	CAKeyFile     = "ca-key.pem"
	ServerFile    = "server.pem"
	ServerKeyFile = "server-key.pem"
)

// ClientFiles are the certificate and key file names of a node id.
func ClientFiles(nodeID string) (cert, key string) { return nodeID + ".pem", nodeID + "-key.pem" }

// Validity of what is issued.
const (
	caValidity   = 5 * 365 * 24 * time.Hour
	leafValidity = 365 * 24 * time.Hour
)

// nodeIDRE keeps node ids valid as a SPIFFE path segment and a file name.
var nodeIDRE = regexp.MustCompile(`^[A-Za-z0-9._-]+$`)

// CA signs certificates.
type CA struct {
	Cert *x509.Certificate
	Key  *ecdsa.PrivateKey
}

// Pair is an issued certificate and its key, in PEM.
type Pair struct {
	Cert            *x509.Certificate
	CertPEM, KeyPEM []byte
}

// NewCA makes a self-signed CA named name.
func NewCA(name string) (*CA, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	serial, err := newSerial()
	if err != nil {
		return nil, err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: name, Organization: []string{"bg development"}},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(caValidity),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, err
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	return &CA{Cert: cert, Key: key}, nil
}

// LoadCA reads a CA written by WriteCA.
func LoadCA(certFile, keyFile string) (*CA, error) {
	pair, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return nil, err
	}
	key, ok := pair.PrivateKey.(*ecdsa.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("%s: not an ECDSA key", keyFile)
	}
	cert, err := x509.ParseCertificate(pair.Certificate[0])
	if err != nil {
		return nil, err
	}
	if !cert.IsCA {
		return nil, fmt.Errorf("%s: not a CA certificate", certFile)
	}
	return &CA{Cert: cert, Key: key}, nil
}

// PEM is the CA certificate in PEM.
func (ca *CA) PEM() []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ca.Cert.Raw})
}

// Server issues a server certificate for hosts (IP addresses or DNS names).
func (ca *CA) Server(hosts ...string) (*Pair, error) {
	tmpl := &x509.Certificate{
		Subject:     pkix.Name{CommonName: "bg xDS server"},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	for _, h := range hosts {
		if ip := net.ParseIP(h); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, h)
		}
	}
	return ca.issue(tmpl)
}

// Client issues a client certificate for a node id: URI SAN
// spiffe://TrustDomain/NODE and CN=NODE.
func (ca *CA) Client(nodeID string) (*Pair, error) {
	if !nodeIDRE.MatchString(nodeID) {
		return nil, fmt.Errorf("node id %q: want letters, digits, '.', '-' or '_'", nodeID)
	}
	return ca.issue(&x509.Certificate{
		Subject:     pkix.Name{CommonName: nodeID},
		URIs:        []*url.URL{{Scheme: "spiffe", Host: TrustDomain, Path: "/" + nodeID}},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	})
}

func (ca *CA) issue(tmpl *x509.Certificate) (*Pair, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	if tmpl.SerialNumber, err = newSerial(); err != nil {
		return nil, err
	}
	now := time.Now()
	tmpl.NotBefore, tmpl.NotAfter = now.Add(-time.Hour), now.Add(leafValidity)
	tmpl.KeyUsage = x509.KeyUsageDigitalSignature
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Cert, &key.PublicKey, ca.Key)
	if err != nil {
		return nil, err
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, err
	}
	return &Pair{
		Cert:    cert,
		CertPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		KeyPEM:  pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}),
	}, nil
}

func newSerial() (*big.Int, error) {
	return rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
}

// WriteFile writes data atomically (a temporary file renamed over path),
// so a reader such as bg's certificate reload never sees half a file.
func WriteFile(path string, data []byte, perm os.FileMode) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Chmod(perm); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

// Write writes the pair as dir/cert and dir/key (the key 0600). The key
// is written first: a reader that sees the new certificate finds its key.
func (p *Pair) Write(dir, cert, key string) error {
	if err := WriteFile(filepath.Join(dir, key), p.KeyPEM, 0o600); err != nil {
		return err
	}
	return WriteFile(filepath.Join(dir, cert), p.CertPEM, 0o644)
}

// Result is what Dev wrote.
type Result struct {
	CA       *CA
	ReusedCA bool
	Server   *Pair
	Clients  map[string]*Pair
}

// Dev writes into dir a CA (ca.pem, ca-key.pem; an existing pair there is
// reused, so running it again rotates the other certificates under the
// same CA), a server certificate for serverHosts (server.pem,
// server-key.pem) and a client certificate per node id (NODE.pem,
// NODE-key.pem).
func Dev(dir string, serverHosts, nodeIDs []string) (*Result, error) {
	for _, n := range nodeIDs {
		if !nodeIDRE.MatchString(n) {
			return nil, fmt.Errorf("node id %q: want letters, digits, '.', '-' or '_'", n)
		}
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	res := &Result{Clients: map[string]*Pair{}}
	caCert, caKey := filepath.Join(dir, CAFile), filepath.Join(dir, CAKeyFile)
	ca, err := LoadCA(caCert, caKey)
	switch {
	case err == nil:
		res.ReusedCA = true
	case errors.Is(err, os.ErrNotExist):
		if ca, err = NewCA("bg development CA"); err != nil {
			return nil, err
		}
		keyDER, err := x509.MarshalPKCS8PrivateKey(ca.Key)
		if err != nil {
			return nil, err
		}
		if err := WriteFile(caKey, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
			return nil, err
		}
		if err := WriteFile(caCert, ca.PEM(), 0o644); err != nil {
			return nil, err
		}
	default:
		return nil, fmt.Errorf("existing CA in %s: %w", dir, err)
	}
	res.CA = ca
	if res.Server, err = ca.Server(serverHosts...); err != nil {
		return nil, err
	}
	if err := res.Server.Write(dir, ServerFile, ServerKeyFile); err != nil {
		return nil, err
	}
	for _, n := range nodeIDs {
		p, err := ca.Client(n)
		if err != nil {
			return nil, err
		}
		c, k := ClientFiles(n)
		if err := p.Write(dir, c, k); err != nil {
			return nil, err
		}
		res.Clients[n] = p
	}
	return res, nil
}
