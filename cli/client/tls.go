package client

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strings"
)

// TLSFiles are the CLI's TLS settings for an https:// admin API: CAFile
// (PEM) verifies the server instead of the system roots; CertFile and
// KeyFile are a client certificate, for an API that verifies them.
type TLSFiles struct {
	CAFile, CertFile, KeyFile string
}

func (t TLSFiles) set() bool { return t.CAFile != "" || t.CertFile != "" || t.KeyFile != "" }

// ConfigError is a client setting that cannot work: a bad address or TLS
// file. Nothing was sent.
type ConfigError struct{ Err error }

func (e *ConfigError) Error() string { return e.Err.Error() }
func (e *ConfigError) Unwrap() error { return e.Err }

// config builds the TLS client config; nil when no file is set.
func (t TLSFiles) config() (*tls.Config, error) {
	if !t.set() {
		return nil, nil
	}
	conf := &tls.Config{MinVersion: tls.VersionTLS12}
	if t.CAFile != "" {
		data, err := os.ReadFile(t.CAFile)
		if err != nil {
			return nil, fmt.Errorf("--ca-file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(data) {
			return nil, fmt.Errorf("--ca-file %s: no PEM certificate", t.CAFile)
		}
		conf.RootCAs = pool
	}
	switch {
	case t.CertFile != "" && t.KeyFile != "":
		pair, err := tls.LoadX509KeyPair(t.CertFile, t.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("--cert/--key: %w", err)
		}
		// Always sent, as asked: Go would otherwise send none when the
		// server's list of CAs does not name its issuer, and the user
		// would not learn that the certificate is wrong.
		conf.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return &pair, nil }
	case t.CertFile != "":
		return nil, errors.New("--cert needs --key")
	case t.KeyFile != "":
		return nil, errors.New("--key needs --cert")
	}
	return conf, nil
}

// base is the URL prefix of Addr: host:port is http://, or https:// when
// TLS files are set; an http:// address with TLS files is an error.
func (c *Client) base() (string, error) {
	base := c.Addr
	switch {
	case strings.HasPrefix(base, "https://"):
	case strings.HasPrefix(base, "http://"):
		if c.TLS.set() {
			return "", errors.New("--ca-file, --cert and --key need an https:// address, not " + base)
		}
	case strings.Contains(base, "://"):
		return "", fmt.Errorf("address %s: the scheme must be http or https", base)
	case c.TLS.set():
		base = "https://" + base
	default:
		base = "http://" + base
	}
	return strings.TrimRight(base, "/"), nil
}

// httpClient is c.HTTP, or one with c.TLS's config.
func (c *Client) httpClient() (*http.Client, error) {
	if c.HTTP != nil {
		return c.HTTP, nil
	}
	c.once.Do(func() {
		conf, err := c.TLS.config()
		if err != nil {
			c.onceErr = err
			return
		}
		if conf == nil {
			c.hc = http.DefaultClient
			return
		}
		t := http.DefaultTransport.(*http.Transport).Clone()
		t.TLSClientConfig = conf
		c.hc = &http.Client{Transport: t}
	})
	return c.hc, c.onceErr
}
