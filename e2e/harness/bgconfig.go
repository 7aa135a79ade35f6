package harness

import (
	"fmt"
	"os"
	"path/filepath"
)

// BGConfig is what a test or the demo varies in a `bg serve` config.
type BGConfig struct {
	ConsulAddr, XDSAddr, AdminAddr string
	Token                          string // admin.token; empty leaves the loopback API open
	Service                        string
}

// WriteBGConfig writes a config for one http2 (gRPC) service and returns its path.
func WriteBGConfig(t TB, c BGConfig) string {
	t.Helper()
	token := ""
	if c.Token != "" {
		token = "\n  token: " + c.Token
	}
	cfg := fmt.Sprintf(`consul:
  address: %s
  wait: 30s
xds:
  listen: %s
admin:
  listen: %s%s
switch:
  timeout: 20s
services:
  - name: %s
    port: 10000
    protocol: http2
`, c.ConsulAddr, c.XDSAddr, c.AdminAddr, token, c.Service)
	path := filepath.Join(t.TempDir(), "bg.yaml")
	if err := os.WriteFile(path, []byte(cfg), 0o644); err != nil {
		t.Fatalf("write bg config: %v", err)
	}
	return path
}
