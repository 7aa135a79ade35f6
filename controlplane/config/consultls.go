package config

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net/url"
	"os"
	"strings"
)

// Secret is a string that never prints: fmt, slog and JSON all show
// "<redacted>" (or "" when empty), so a token in a Config cannot leak
// through a log line, an error or a status body. string(s) is the value.
type Secret string

const redacted = "<redacted>"

func (s Secret) show() string {
	if s == "" {
		return ""
	}
	return redacted
}

// String implements fmt.Stringer.
func (s Secret) String() string { return s.show() }

// GoString implements fmt.GoStringer (%#v).
func (s Secret) GoString() string { return fmt.Sprintf("%q", s.show()) }

// LogValue implements slog.LogValuer.
func (s Secret) LogValue() slog.Value { return slog.StringValue(s.show()) }

// MarshalJSON implements json.Marshaler.
func (s Secret) MarshalJSON() ([]byte, error) { return json.Marshal(s.show()) }

// MarshalText implements encoding.TextMarshaler (YAML, text logs).
func (s Secret) MarshalText() ([]byte, error) { return []byte(s.show()), nil }

// ConsulTLS is how bg reaches Consul's HTTPS API. With any field set, an
// address without a scheme is dialled over https; an http:// address is
// refused.
type ConsulTLS struct {
	// CAFile is the PEM bundle that signed Consul's server certificate;
	// empty uses the system roots.
	CAFile string `mapstructure:"ca_file"`
	// CertFile and KeyFile are bg's client certificate, for an agent with
	// verify_incoming; set both or neither.
	CertFile string `mapstructure:"cert_file"`
	KeyFile  string `mapstructure:"key_file"`
	// ServerName is the name checked in Consul's certificate when it is not
	// the address's host (e.g. server.dc1.consul).
	ServerName string `mapstructure:"server_name"`
}

// Enabled reports whether any TLS setting is given.
func (t ConsulTLS) Enabled() bool { return t != ConsulTLS{} }

// Scheme is the scheme bg uses for Consul: the address's own if it has
// one, else https when consul.tls is set, else http.
func (c Consul) Scheme() string {
	if u, err := url.Parse(c.Address); err == nil && (u.Scheme == "http" || u.Scheme == "https") {
		return u.Scheme
	}
	if c.TLS.Enabled() {
		return "https"
	}
	return "http"
}

// ResolveToken returns the ACL token: consul.token (BG_CONSUL_TOKEN) if
// set, else the trimmed contents of consul.token_file, else "". Errors
// name the file, never its contents.
func (c Consul) ResolveToken() (string, error) {
	if c.Token != "" || c.TokenFile == "" {
		return string(c.Token), nil
	}
	b, err := os.ReadFile(c.TokenFile)
	if err != nil {
		return "", fmt.Errorf("consul.token_file: %w", err)
	}
	tok := strings.TrimSpace(string(b))
	if tok == "" {
		return "", fmt.Errorf("consul.token_file %q: empty", c.TokenFile)
	}
	return tok, nil
}

// tokenSource says where the token comes from, for logs.
func (c Consul) tokenSource() string {
	switch {
	case c.Token != "":
		return "consul.token"
	case c.TokenFile != "":
		return "consul.token_file " + c.TokenFile
	}
	return "none"
}

// validateConsulSecurity checks consul.token_file and consul.tls. No
// message carries a token or the contents of a file.
func (c *Config) validateConsulSecurity(es *Errors) {
	cc := c.Consul
	if cc.TokenFile != "" {
		if cc.Token != "" {
			es.add("consul.token_file", "set together with consul.token (or BG_CONSUL_TOKEN): use one")
		} else if _, err := cc.ResolveToken(); err != nil {
			es.add("consul.token_file", "%s", strings.TrimPrefix(err.Error(), "consul.token_file: "))
		}
	}
	if !cc.TLS.Enabled() {
		return
	}
	if u, err := url.Parse(cc.Address); err == nil && u.Scheme == "http" {
		es.add("consul.address", "%q: http:// with consul.tls set; use https:// or host:port", cc.Address)
	}
	checkTLSFiles("consul.tls", cc.TLS.CAFile, cc.TLS.CertFile, cc.TLS.KeyFile, es)
}

// checkTLSFiles checks that a CA file holds a PEM certificate and that a
// certificate and key are given together and form a pair.
func checkTLSFiles(at, caFile, certFile, keyFile string, es *Errors) {
	if caFile != "" {
		if b, err := os.ReadFile(caFile); err != nil {
			es.add(at+".ca_file", "%v", err)
		} else if !x509.NewCertPool().AppendCertsFromPEM(b) {
			es.add(at+".ca_file", "%q: no PEM certificate", caFile)
		}
	}
	switch {
	case certFile != "" && keyFile == "":
		es.add(at+".key_file", "required with %s.cert_file", at)
	case certFile == "" && keyFile != "":
		es.add(at+".cert_file", "required with %s.key_file", at)
	case certFile != "":
		if _, err := tls.LoadX509KeyPair(certFile, keyFile); err != nil {
			var pe *os.PathError
			if !errors.As(err, &pe) {
				// crypto/tls's parse errors never quote key material.
				err = fmt.Errorf("%q and %q: %v", certFile, keyFile, err)
			}
			es.add(at+".cert_file", "%v", err)
		}
	}
}

// LogValue is what `bg serve` logs of its configuration: where it connects
// and how it authenticates, never a secret.
func (c *Config) LogValue() slog.Value {
	return slog.GroupValue(
		slog.Group("consul",
			slog.String("address", c.Consul.Address),
			slog.String("scheme", c.Consul.Scheme()),
			slog.String("token", c.Consul.tokenSource()),
			slog.Bool("tls", c.Consul.TLS.Enabled()),
			slog.String("ca_file", c.Consul.TLS.CAFile),
			slog.Bool("client_cert", c.Consul.TLS.CertFile != ""),
		),
		slog.Group("prometheus",
			slog.String("address", c.Prometheus.Address),
			slog.String("auth", c.Prometheus.HTTP.authKind()),
			slog.Bool("tls", c.Prometheus.HTTP.TLS != PrometheusTLS{}),
		),
		slog.String("xds", c.XDS.Listen),
		slog.String("admin", c.Admin.Listen),
		slog.Int("services", len(c.Services)),
	)
}

// securityDefaults are the keys of consultls.go and promhttp.go, merged
// into defaults so each is reachable from BG_* variables.
var securityDefaults = map[string]any{
	"consul.token_file":                        "",
	"consul.tls.ca_file":                       "",
	"consul.tls.cert_file":                     "",
	"consul.tls.key_file":                      "",
	"consul.tls.server_name":                   "",
	"prometheus.http.tls.ca_file":              "",
	"prometheus.http.tls.cert_file":            "",
	"prometheus.http.tls.key_file":             "",
	"prometheus.http.tls.server_name":          "",
	"prometheus.http.tls.insecure_skip_verify": false,
	"prometheus.http.bearer_token_file":        "",
	"prometheus.http.basic_auth.username":      "",
	"prometheus.http.basic_auth.password_file": "",
}

func init() { maps.Copy(defaults, securityDefaults) }
