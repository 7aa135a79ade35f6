package config

import (
	"net/url"
	"os"

	commoncfg "github.com/prometheus/common/config"
)

// PrometheusHTTP is how bg authenticates to Prometheus and checks its
// certificate. It is a subset of Prometheus's own HTTP client
// configuration (github.com/prometheus/common/config), which builds the
// client: the same keys as a Prometheus scrape config, secrets in files
// only, so none sits in bg's config or environment.
type PrometheusHTTP struct {
	TLS PrometheusTLS `mapstructure:"tls"`
	// BearerTokenFile holds a token sent as "Authorization: Bearer ...",
	// re-read on every request (so it can be rotated).
	BearerTokenFile string          `mapstructure:"bearer_token_file"`
	BasicAuth       PrometheusBasic `mapstructure:"basic_auth"`
}

// PrometheusTLS checks Prometheus's certificate and presents bg's own.
type PrometheusTLS struct {
	CAFile     string `mapstructure:"ca_file"`
	CertFile   string `mapstructure:"cert_file"`
	KeyFile    string `mapstructure:"key_file"`
	ServerName string `mapstructure:"server_name"`
	// InsecureSkipVerify turns certificate checks off: tests only.
	InsecureSkipVerify bool `mapstructure:"insecure_skip_verify"`
}

// PrometheusBasic is HTTP basic auth; the password is read from a file on
// every request.
type PrometheusBasic struct {
	Username     string `mapstructure:"username"`
	PasswordFile string `mapstructure:"password_file"`
}

// Configured reports whether any setting is given; without one bg uses
// client_golang's default round tripper, as before these settings existed.
func (h PrometheusHTTP) Configured() bool { return h != PrometheusHTTP{} }

// ClientConfig is the Prometheus common HTTP client configuration for h
// (redirects followed, HTTP/2 on, as its defaults).
func (h PrometheusHTTP) ClientConfig() commoncfg.HTTPClientConfig {
	c := commoncfg.DefaultHTTPClientConfig
	c.TLSConfig = commoncfg.TLSConfig{
		CAFile: h.TLS.CAFile, CertFile: h.TLS.CertFile, KeyFile: h.TLS.KeyFile,
		ServerName: h.TLS.ServerName, InsecureSkipVerify: h.TLS.InsecureSkipVerify,
	}
	c.BearerTokenFile = h.BearerTokenFile
	if h.BasicAuth != (PrometheusBasic{}) {
		c.BasicAuth = &commoncfg.BasicAuth{Username: h.BasicAuth.Username, PasswordFile: h.BasicAuth.PasswordFile}
	}
	return c
}

func (h PrometheusHTTP) authKind() string {
	switch {
	case h.BearerTokenFile != "":
		return "bearer_token_file " + h.BearerTokenFile
	case h.BasicAuth != PrometheusBasic{}:
		return "basic_auth " + h.BasicAuth.Username
	}
	return "none"
}

// validatePrometheusHTTP checks prometheus.http. No message carries the
// contents of a file.
func (c *Config) validatePrometheusHTTP(es *Errors) {
	const at = "prometheus.http"
	h := c.Prometheus.HTTP
	if !h.Configured() {
		return
	}
	if c.Prometheus.Address == "" {
		es.add(at, "set without prometheus.address")
	}
	if h.BearerTokenFile != "" && h.BasicAuth != (PrometheusBasic{}) {
		es.add(at+".basic_auth", "set together with %s.bearer_token_file: use one", at)
	}
	checkReadable(at+".bearer_token_file", h.BearerTokenFile, es)
	if b := h.BasicAuth; b != (PrometheusBasic{}) {
		if b.Username == "" {
			es.add(at+".basic_auth.username", "required with %s.basic_auth.password_file", at)
		}
		if b.PasswordFile == "" {
			es.add(at+".basic_auth.password_file", "required with %s.basic_auth.username", at)
		}
		checkReadable(at+".basic_auth.password_file", b.PasswordFile, es)
	}
	if h.TLS != (PrometheusTLS{}) {
		if u, err := url.Parse(c.Prometheus.Address); err == nil && u.Scheme == "http" {
			es.add(at+".tls", "set but prometheus.address %q is http://; use https://", c.Prometheus.Address)
		}
		checkTLSFiles(at+".tls", h.TLS.CAFile, h.TLS.CertFile, h.TLS.KeyFile, es)
	}
	// Whatever the subset above misses, Prometheus's own checks catch.
	cc := h.ClientConfig()
	if err := cc.Validate(); err != nil {
		es.add(at, "%v", err)
	}
}

// checkReadable reports a file that cannot be opened; never its contents.
func checkReadable(at, path string, es *Errors) {
	if path == "" {
		return
	}
	f, err := os.Open(path)
	if err != nil {
		es.add(at, "%v", err)
		return
	}
	_ = f.Close()
}
