package harness

import (
	"encoding/json"
	"fmt"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/xds"
)

// XDSClientTLS are a client's files for xDS over TLS: the bootstrap's
// channel_creds {type: "tls"} of gRFC A65, which grpc-go's xds package
// registers. CertFile and KeyFile are optional (mTLS).
type XDSClientTLS struct {
	CAFile, CertFile, KeyFile string
}

// BootstrapTLS is Bootstrap with TLS channel credentials; nil is Bootstrap.
func BootstrapTLS(xdsAddr, nodeID string, c *XDSClientTLS) []byte {
	if c == nil {
		return Bootstrap(xdsAddr, nodeID)
	}
	cfg := map[string]string{"ca_certificate_file": c.CAFile}
	if c.CertFile != "" {
		cfg["certificate_file"], cfg["private_key_file"] = c.CertFile, c.KeyFile
	}
	b, err := json.Marshal(map[string]any{
		"xds_servers": []any{map[string]any{
			"server_uri":      xdsAddr,
			"channel_creds":   []any{map[string]any{"type": "tls", "config": cfg}},
			"server_features": []string{"xds_v3"},
		}},
		"node": map[string]string{"id": nodeID},
	})
	if err != nil {
		panic(err)
	}
	return b
}

// dialXDS is DialXDS with optional TLS to the management server; the
// calls to the backends stay plaintext.
func dialXDS(xdsAddr, nodeID, service string, c *XDSClientTLS, opts ...grpc.DialOption) (*grpc.ClientConn, error) {
	rb, err := xds.NewXDSResolverWithConfigForTesting(BootstrapTLS(xdsAddr, nodeID, c))
	if err != nil {
		return nil, fmt.Errorf("xds resolver: %w", err)
	}
	opts = append([]grpc.DialOption{
		grpc.WithResolvers(rb),
		grpc.WithTransportCredentials(insecure.NewCredentials()),
	}, opts...)
	return grpc.NewClient("xds:///"+service, opts...)
}
