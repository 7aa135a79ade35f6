package config

import (
	"maps"
	"slices"
	"strings"
)

// XDSTLS serves xDS over TLS, or mTLS with ClientCAFile. Certificates and
// the client CA are re-read when their files change.
type XDSTLS struct {
	// CertFile and KeyFile are the server's PEM certificate (chain) and key;
	// both set turns TLS on, neither leaves xDS in plaintext.
	CertFile string `mapstructure:"cert_file"`
	KeyFile  string `mapstructure:"key_file"`
	// ClientCAFile verifies client certificates (mTLS). Without
	// RequireClientCert a client may still connect without one.
	ClientCAFile      string `mapstructure:"client_ca_file"`
	RequireClientCert bool   `mapstructure:"require_client_cert"`
	// NodeIDFrom binds a stream's node id to its client certificate:
	// "spiffe" (the path of the spiffe:// URI SAN) or "cn" (Subject CN).
	// Empty: any node id is accepted.
	NodeIDFrom string `mapstructure:"node_id_from"`
}

// Enabled reports whether xDS is served over TLS.
func (t XDSTLS) Enabled() bool { return t.CertFile != "" || t.KeyFile != "" }

// NodeID sources of XDSTLS.NodeIDFrom.
const (
	NodeIDFromSPIFFE = "spiffe"
	NodeIDFromCN     = "cn"
)

var nodeIDSources = []string{"", NodeIDFromSPIFFE, NodeIDFromCN}

// xdsTLSDefaults are the xds.tls keys; init adds them to defaults (which
// also makes each reachable from BG_XDS_TLS_* variables).
var xdsTLSDefaults = map[string]any{
	"xds.tls.cert_file":           "",
	"xds.tls.key_file":            "",
	"xds.tls.client_ca_file":      "",
	"xds.tls.require_client_cert": false,
	"xds.tls.node_id_from":        "",
}

func init() { maps.Copy(defaults, xdsTLSDefaults) }

// validateXDSTLS checks xds.tls: cert_file and key_file come as a pair, and
// every option that needs client certificates has a client CA. The files
// are read by bg serve (a file that does not load stops it at startup), not
// here: bg validate may run where they are not, as in CI.
func (c *Config) validateXDSTLS(es *Errors) {
	t := c.XDS.TLS
	const p = "xds.tls."
	switch {
	case t.CertFile != "" && t.KeyFile == "":
		es.add(p+"key_file", "required with xds.tls.cert_file")
	case t.KeyFile != "" && t.CertFile == "":
		es.add(p+"cert_file", "required with xds.tls.key_file")
	}
	if !slices.Contains(nodeIDSources, t.NodeIDFrom) {
		es.add(p+"node_id_from", "%q: must be empty, spiffe or cn", t.NodeIDFrom)
	}
	if !t.Enabled() {
		for _, f := range []struct {
			key string
			set bool
		}{{"client_ca_file", t.ClientCAFile != ""}, {"require_client_cert", t.RequireClientCert}, {"node_id_from", t.NodeIDFrom != ""}} {
			if f.set {
				es.add(p+f.key, "needs xds.tls.cert_file and xds.tls.key_file (TLS is off)")
			}
		}
		return
	}
	if t.ClientCAFile == "" {
		if t.RequireClientCert {
			es.add(p+"require_client_cert", "needs xds.tls.client_ca_file to verify client certificates")
		}
		if t.NodeIDFrom != "" {
			es.add(p+"node_id_from", "%s: needs xds.tls.client_ca_file (node identity comes from verified client certificates)", strings.TrimSpace(t.NodeIDFrom))
		}
	}
}
