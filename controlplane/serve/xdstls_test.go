package serve

import (
	"bytes"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"

	"github.com/bgctl/bg/controlplane/config"
	"github.com/bgctl/bg/controlplane/devcerts"
	"github.com/bgctl/bg/controlplane/xds"
)

// xds.tls reaches the server: plaintext is warned about, mTLS is logged,
// and a certificate that does not load stops bg serve with the key's name.
func TestUseXDSTLS(t *testing.T) {
	dir := t.TempDir()
	if _, err := devcerts.Dev(dir, []string{"127.0.0.1"}, nil); err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	log := slog.New(slog.NewTextHandler(&buf, nil))
	if err := useXDSTLS(xds.NewServer(log, nil), config.XDSTLS{}, log); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(buf.String(), "level=WARN") || !strings.Contains(buf.String(), "plaintext") {
		t.Errorf("plaintext xDS not warned about: %s", buf.String())
	}
	buf.Reset()
	c := config.XDSTLS{CertFile: filepath.Join(dir, devcerts.ServerFile), KeyFile: filepath.Join(dir, devcerts.ServerKeyFile),
		ClientCAFile: filepath.Join(dir, devcerts.CAFile), RequireClientCert: true, NodeIDFrom: "spiffe"}
	if err := useXDSTLS(xds.NewServer(log, nil), c, log); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(buf.String(), `msg="xDS over mTLS"`) || !strings.Contains(buf.String(), "node_id_from=spiffe") {
		t.Errorf("mTLS not logged: %s", buf.String())
	}
	c.KeyFile = c.ClientCAFile // not the certificate's key
	if err := useXDSTLS(xds.NewServer(log, nil), c, log); err == nil || !strings.HasPrefix(err.Error(), "xds.tls: ") {
		t.Errorf("a key that does not match: %v, want an xds.tls error", err)
	}
}
