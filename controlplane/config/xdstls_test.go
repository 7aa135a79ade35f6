package config

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func TestXDSTLSValidate(t *testing.T) {
	dir := t.TempDir()
	file := func(name string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte("pem"), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	cert, key, ca := file("cert.pem"), file("key.pem"), file("ca.pem")
	missing := filepath.Join(dir, "missing.pem")
	cases := []struct {
		name string
		tls  XDSTLS
		want map[string]string // path -> substring of the message; nil: valid
	}{
		{"off", XDSTLS{}, nil},
		{"tls", XDSTLS{CertFile: cert, KeyFile: key}, nil},
		{"mtls", XDSTLS{CertFile: cert, KeyFile: key, ClientCAFile: ca, RequireClientCert: true, NodeIDFrom: "spiffe"}, nil},
		{"cn", XDSTLS{CertFile: cert, KeyFile: key, ClientCAFile: ca, NodeIDFrom: "cn"}, nil},
		{"cert without key", XDSTLS{CertFile: cert}, map[string]string{"xds.tls.key_file": "required with xds.tls.cert_file"}},
		{"key without cert", XDSTLS{KeyFile: key}, map[string]string{"xds.tls.cert_file": "required with xds.tls.key_file"}},
		{"files not read", XDSTLS{CertFile: missing, KeyFile: missing, ClientCAFile: dir}, nil},
		{"bad node_id_from", XDSTLS{CertFile: cert, KeyFile: key, ClientCAFile: ca, NodeIDFrom: "uri"}, map[string]string{"xds.tls.node_id_from": `"uri": must be empty, spiffe or cn`}},
		{"require without ca", XDSTLS{CertFile: cert, KeyFile: key, RequireClientCert: true}, map[string]string{"xds.tls.require_client_cert": "needs xds.tls.client_ca_file"}},
		{"node id without ca", XDSTLS{CertFile: cert, KeyFile: key, NodeIDFrom: "cn"}, map[string]string{"xds.tls.node_id_from": "needs xds.tls.client_ca_file"}},
		{"client options without tls", XDSTLS{ClientCAFile: ca, RequireClientCert: true, NodeIDFrom: "spiffe"}, map[string]string{
			"xds.tls.client_ca_file": "TLS is off", "xds.tls.require_client_cert": "TLS is off", "xds.tls.node_id_from": "TLS is off"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cfg := valid()
			cfg.XDS.TLS = c.tls
			err := cfg.Validate()
			if c.want == nil {
				if err != nil {
					t.Fatalf("Validate: %v", err)
				}
				return
			}
			var es Errors
			if !errors.As(err, &es) {
				t.Fatalf("Validate = %v, want Errors", err)
			}
			got := map[string]string{}
			for _, e := range es {
				got[e.Path] = e.Message
			}
			if len(got) != len(c.want) {
				t.Errorf("errors %v, want paths of %v", es, c.want)
			}
			for path, sub := range c.want {
				if msg, ok := got[path]; !ok || !strings.Contains(msg, sub) {
					t.Errorf("%s: %q, want it to contain %q (all: %v)", path, msg, sub, es)
				}
			}
		})
	}
}

// The keys load from a file and from BG_XDS_TLS_* variables.
func TestXDSTLSLoad(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "bg.yaml")
	yaml := "xds:\n  tls:\n    cert_file: /c.pem\n    key_file: /k.pem\n    client_ca_file: /ca.pem\n    node_id_from: cn\n"
	if err := os.WriteFile(path, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("BG_XDS_TLS_REQUIRE_CLIENT_CERT", "true")
	t.Setenv("BG_XDS_TLS_NODE_ID_FROM", "spiffe")
	c, err := Load(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	want := XDSTLS{CertFile: "/c.pem", KeyFile: "/k.pem", ClientCAFile: "/ca.pem", RequireClientCert: true, NodeIDFrom: "spiffe"}
	if !reflect.DeepEqual(c.XDS.TLS, want) {
		t.Errorf("xds.tls = %+v, want %+v", c.XDS.TLS, want)
	}
	if !c.XDS.TLS.Enabled() || (XDSTLS{}).Enabled() {
		t.Error("Enabled")
	}
	if _, err := Load(filepath.Join(dir, "missing"), nil); err == nil {
		t.Error("missing file loaded")
	}
	// A typo is an unknown key with a suggestion.
	if err := os.WriteFile(path, []byte("xds:\n  tls:\n    cert_fil: /c.pem\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(path, nil); err == nil || !strings.Contains(err.Error(), "xds.tls.cert_fil") {
		t.Errorf("typo: %v", err)
	}
}
