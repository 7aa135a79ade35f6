package config

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// testCerts writes a self-signed certificate and its key (usable as a CA
// file and as a client pair) and returns their paths.
func testCerts(t *testing.T) (certFile, keyFile string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "bg test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IsCA: true, BasicConstraintsValid: true}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	writeFile(t, certFile, string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})))
	writeFile(t, keyFile, string(pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder})))
	return certFile, keyFile
}

func writeFile(t *testing.T, path, content string) string {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestConsulSecurityValid(t *testing.T) {
	cert, key := testCerts(t)
	tok := writeFile(t, filepath.Join(t.TempDir(), "tok"), "abc\n")
	c := valid()
	c.Consul.Address = "https://consul.internal:8501"
	c.Consul.TokenFile = tok
	c.Consul.TLS = ConsulTLS{CAFile: cert, CertFile: cert, KeyFile: key, ServerName: "server.dc1.consul"}
	c.Prometheus.Address = "https://prometheus.internal:9090"
	c.Prometheus.HTTP = PrometheusHTTP{TLS: PrometheusTLS{CAFile: cert, CertFile: cert, KeyFile: key},
		BasicAuth: PrometheusBasic{Username: "bg", PasswordFile: tok}}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	if got, err := c.Consul.ResolveToken(); err != nil || got != "abc" {
		t.Errorf("ResolveToken = %q, %v; want the file's token, trimmed", got, err)
	}
	// host:port with consul.tls is dialled over https.
	c.Consul.Address = "consul.internal:8501"
	if err := c.Validate(); err != nil || c.Consul.Scheme() != "https" {
		t.Errorf("host:port with tls: %v, scheme %s", err, c.Consul.Scheme())
	}
	c.Consul.TLS = ConsulTLS{}
	if s := c.Consul.Scheme(); s != "http" {
		t.Errorf("host:port without tls: scheme %s", s)
	}
}

func TestConsulSecurityErrors(t *testing.T) {
	cert, key := testCerts(t)
	otherCert, _ := testCerts(t)
	dir := t.TempDir()
	missing := filepath.Join(dir, "missing")
	empty := writeFile(t, filepath.Join(dir, "empty"), " \n")
	notPEM := writeFile(t, filepath.Join(dir, "notpem"), "hello")
	tok := writeFile(t, filepath.Join(dir, "tok"), "abc")
	cases := []struct {
		name  string
		edit  func(*Config)
		path  string
		match string
	}{
		{"token and token_file", func(c *Config) { c.Consul.Token = "x"; c.Consul.TokenFile = tok }, "consul.token_file", "set together with consul.token"},
		{"token_file missing", func(c *Config) { c.Consul.TokenFile = missing }, "consul.token_file", "no such file"},
		{"token_file empty", func(c *Config) { c.Consul.TokenFile = empty }, "consul.token_file", "empty"},
		{"tls over http://", func(c *Config) { c.Consul.Address = "http://consul:8501"; c.Consul.TLS.CAFile = cert }, "consul.address", "use https://"},
		{"ca_file missing", func(c *Config) { c.Consul.TLS.CAFile = missing }, "consul.tls.ca_file", "no such file"},
		{"ca_file not PEM", func(c *Config) { c.Consul.TLS.CAFile = notPEM }, "consul.tls.ca_file", "no PEM certificate"},
		{"cert without key", func(c *Config) { c.Consul.TLS.CertFile = cert }, "consul.tls.key_file", "required with consul.tls.cert_file"},
		{"key without cert", func(c *Config) { c.Consul.TLS.KeyFile = key }, "consul.tls.cert_file", "required with consul.tls.key_file"},
		{"cert and key mismatch", func(c *Config) { c.Consul.TLS.CertFile, c.Consul.TLS.KeyFile = otherCert, key }, "consul.tls.cert_file", "private key does not match"},
		{"prometheus.http without address", func(c *Config) { c.Prometheus.HTTP.BearerTokenFile = tok }, "prometheus.http", "set without prometheus.address"},
		{"bearer and basic", func(c *Config) {
			c.Prometheus.Address = "https://p:9090"
			c.Prometheus.HTTP.BearerTokenFile = tok
			c.Prometheus.HTTP.BasicAuth = PrometheusBasic{Username: "u", PasswordFile: tok}
		}, "prometheus.http.basic_auth", "use one"},
		{"basic without password_file", func(c *Config) {
			c.Prometheus.Address = "https://p:9090"
			c.Prometheus.HTTP.BasicAuth.Username = "u"
		}, "prometheus.http.basic_auth.password_file", "required"},
		{"password_file missing", func(c *Config) {
			c.Prometheus.Address = "https://p:9090"
			c.Prometheus.HTTP.BasicAuth = PrometheusBasic{Username: "u", PasswordFile: missing}
		}, "prometheus.http.basic_auth.password_file", "no such file"},
		{"bearer_token_file missing", func(c *Config) {
			c.Prometheus.Address = "https://p:9090"
			c.Prometheus.HTTP.BearerTokenFile = missing
		}, "prometheus.http.bearer_token_file", "no such file"},
		{"prometheus tls over http://", func(c *Config) {
			c.Prometheus.Address = "http://p:9090"
			c.Prometheus.HTTP.TLS.CAFile = cert
		}, "prometheus.http.tls", "use https://"},
		{"prometheus ca not PEM", func(c *Config) {
			c.Prometheus.Address = "https://p:9090"
			c.Prometheus.HTTP.TLS.CAFile = notPEM
		}, "prometheus.http.tls.ca_file", "no PEM certificate"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := valid()
			tc.edit(c)
			err := c.Validate()
			var es Errors
			if !errors.As(err, &es) {
				t.Fatalf("err = %v, want Errors", err)
			}
			for _, e := range es {
				if e.Path == tc.path && strings.Contains(e.Message, tc.match) {
					return
				}
			}
			t.Errorf("want %s: …%s…; got:\n%v", tc.path, tc.match, err)
		})
	}
}

// The new keys load from YAML and from BG_* variables; BG_CONSUL_TOKEN is
// the token.
func TestLoadConsulTLSAndPrometheusHTTP(t *testing.T) {
	t.Setenv("BG_CONSUL_TOKEN", "env-token")
	t.Setenv("BG_PROMETHEUS_HTTP_BASIC_AUTH_USERNAME", "bg")
	c, err := Load(writeYAML(t, `
consul:
  address: https://consul:8501
  tls: {ca_file: /ca.pem, cert_file: /c.pem, key_file: /k.pem, server_name: server.dc1.consul}
prometheus:
  address: https://prometheus:9090
  http:
    tls: {ca_file: /pca.pem, server_name: prom, insecure_skip_verify: true}
    basic_auth: {password_file: /pw}
`), nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.Consul.Token != "env-token" || c.Consul.TLS != (ConsulTLS{CAFile: "/ca.pem", CertFile: "/c.pem", KeyFile: "/k.pem", ServerName: "server.dc1.consul"}) {
		t.Errorf("consul = %#v", c.Consul)
	}
	want := PrometheusHTTP{TLS: PrometheusTLS{CAFile: "/pca.pem", ServerName: "prom", InsecureSkipVerify: true},
		BasicAuth: PrometheusBasic{Username: "bg", PasswordFile: "/pw"}}
	if c.Prometheus.HTTP != want {
		t.Errorf("prometheus.http = %+v", c.Prometheus.HTTP)
	}
	cc := c.Prometheus.HTTP.ClientConfig()
	if cc.TLSConfig.CAFile != "/pca.pem" || !cc.TLSConfig.InsecureSkipVerify || cc.BasicAuth == nil || cc.BasicAuth.PasswordFile != "/pw" || !cc.FollowRedirects {
		t.Errorf("client config = %+v", cc)
	}
}

func TestConsulTLSAndPrometheusHTTPOffByDefault(t *testing.T) {
	d, err := Load("", nil)
	if err != nil {
		t.Fatal(err)
	}
	if d.Prometheus.HTTP.Configured() || d.Prometheus.HTTP.TLS.InsecureSkipVerify || d.Consul.TLS.Enabled() || d.Consul.TokenFile != "" {
		t.Errorf("defaults turn on TLS, auth or insecure_skip_verify: %+v %+v", d.Consul, d.Prometheus)
	}
}

// Secrets never print: not in Validate's errors (what `bg validate` and
// `bg serve` print), not in the configuration `bg serve` logs, not through
// fmt or JSON of the Config.
func TestSecretsNeverPrinted(t *testing.T) {
	const consulToken = "consul-SECRET-7f3a"
	const promPassword = "prom-PASSWORD-91cc"
	const bearer = "prom-BEARER-55de"
	dir := t.TempDir()
	pw := writeFile(t, filepath.Join(dir, "pw"), promPassword)
	bt := writeFile(t, filepath.Join(dir, "bearer"), bearer)
	t.Setenv("BG_CONSUL_TOKEN", consulToken)
	path := writeYAML(t, fmt.Sprintf(`
consul:
  address: https://consul:8501
  token_file: %[1]s
  tls: {ca_file: %[1]s}
prometheus:
  address: http://prometheus:9090
  http:
    bearer_token_file: %[2]s
    basic_auth: {username: bg, password_file: %[1]s}
    tls: {ca_file: %[2]s, cert_file: %[2]s}
services:
  - name: web
    port: 10000
    protocol: http9
`, pw, bt))
	secrets := []string{consulToken, promPassword, bearer}
	check := func(what, out string) {
		t.Helper()
		for _, s := range secrets {
			if strings.Contains(out, s) {
				t.Errorf("%s shows a secret %q:\n%s", what, s, out)
			}
		}
	}
	// Many errors, several about the very files holding secrets.
	_, err := LoadValid(path, nil)
	if err == nil {
		t.Fatal("want errors")
	}
	for _, p := range []string{"consul.token_file", "consul.tls.ca_file", "prometheus.http.basic_auth", "prometheus.http.tls", "prometheus.http.tls.ca_file", "prometheus.http.tls.key_file", "services[0].protocol"} {
		if !strings.Contains(err.Error(), p+":") {
			t.Errorf("errors lack %s:\n%v", p, err)
		}
	}
	check("LoadValid's errors", err.Error())

	c, err := Load(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if string(c.Consul.Token) != consulToken {
		t.Fatalf("token = %q, want the env's", string(c.Consul.Token))
	}
	check("Validate", fmt.Sprint(c.Validate()))
	check("%v", fmt.Sprintf("%v", *c))
	check("%+v", fmt.Sprintf("%+v", *c))
	check("%#v", fmt.Sprintf("%#v", *c))
	check("%s of the token", fmt.Sprintf("%s %v %q", c.Consul.Token, c.Consul.Token, c.Consul.Token))
	b, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	check("JSON", string(b))
	for name, h := range map[string]func(*bytes.Buffer) slog.Handler{
		"text log": func(b *bytes.Buffer) slog.Handler { return slog.NewTextHandler(b, nil) },
		"JSON log": func(b *bytes.Buffer) slog.Handler { return slog.NewJSONHandler(b, nil) },
	} {
		var buf bytes.Buffer
		log := slog.New(h(&buf))
		log.Info("config", "config", c)                                 // what bg serve logs
		log.Info("consul", "consul", c.Consul, "token", c.Consul.Token) // and carelessly
		check(name, buf.String())
		if !strings.Contains(buf.String(), "consul.token") || !strings.Contains(buf.String(), "https") {
			t.Errorf("%s does not say where the token comes from or the scheme:\n%s", name, buf.String())
		}
	}
}
