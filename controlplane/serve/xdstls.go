package serve

import (
	"fmt"
	"log/slog"

	"github.com/bgctl/bg/controlplane/config"
	"github.com/bgctl/bg/controlplane/xds"
)

// useXDSTLS turns on xds.tls, if configured: a certificate that does not
// load is a startup error.
func useXDSTLS(s *xds.Server, c config.XDSTLS, log *slog.Logger) error {
	if !c.Enabled() {
		log.Warn("xDS is served in plaintext: any client that reaches xds.listen can read every route and endpoint; set xds.tls for TLS or mTLS")
		return nil
	}
	if err := s.UseTLS(xds.TLSOptions{CertFile: c.CertFile, KeyFile: c.KeyFile, ClientCAFile: c.ClientCAFile,
		RequireClientCert: c.RequireClientCert, NodeIDFrom: c.NodeIDFrom}); err != nil {
		return fmt.Errorf("xds.tls: %w", err)
	}
	mode := "TLS"
	if c.ClientCAFile != "" {
		mode = "mTLS"
	}
	log.Info("xDS over "+mode, "cert_file", c.CertFile, "client_ca_file", c.ClientCAFile,
		"require_client_cert", c.RequireClientCert, "node_id_from", c.NodeIDFrom)
	return nil
}
