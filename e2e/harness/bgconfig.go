package harness

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// BGConfig is what a test or the demo varies in a `bg serve` config.
type BGConfig struct {
	ConsulAddr, XDSAddr, AdminAddr string
	Token                          string // admin.token; empty leaves the loopback API open
	Service                        string
	// PrometheusURL, when set, enables progressive switches judged on the
	// backends' own counters (AppRequestsTemplate, AppErrorsTemplate).
	PrometheusURL string
	// Analysis is extra YAML for services[0].analysis, one "key: value" per line.
	Analysis string
	// Latency also judges latency on the backends' histogram
	// (AppLatencyTemplate, unit s), with LatencyYAML's extra "key: value"
	// lines (e.g. "absolute: 20ms") under analysis.latency. Analysis must
	// then not have a latency key of its own.
	Latency     bool
	LatencyYAML string
	// ServiceYAML is extra YAML lines for services[0] itself (e.g. strategy,
	// rolling, affinity), indented as under "- name:".
	ServiceYAML string
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
leader:
  lock_delay: 1s
services:
  - name: %s
    port: 10000
    protocol: http2
`, c.ConsulAddr, c.XDSAddr, c.AdminAddr, token, c.Service)
	for _, line := range strings.Split(strings.TrimRight(c.ServiceYAML, "\n "), "\n") {
		if strings.TrimSpace(line) != "" {
			cfg += "    " + line + "\n"
		}
	}
	if c.PrometheusURL != "" {
		cfg += "    analysis:\n"
		cfg += "      requests: '" + AppRequestsTemplate + "'\n"
		cfg += "      errors: '" + AppErrorsTemplate + "'\n"
		for _, line := range strings.Split(strings.TrimSpace(c.Analysis), "\n") {
			if line = strings.TrimSpace(line); line != "" {
				cfg += "      " + line + "\n"
			}
		}
		if c.Latency {
			cfg += "      latency:\n"
			cfg += "        enabled: true\n"
			cfg += "        query: '" + AppLatencyTemplate + "'\n"
			cfg += "        unit: s\n"
			for _, line := range strings.Split(strings.TrimSpace(c.LatencyYAML), "\n") {
				if line = strings.TrimSpace(line); line != "" {
					cfg += "        " + line + "\n"
				}
			}
		}
		cfg += "prometheus:\n  address: " + c.PrometheusURL + "\n"
	}
	path := filepath.Join(t.TempDir(), "bg.yaml")
	if err := os.WriteFile(path, []byte(cfg), 0o644); err != nil {
		t.Fatalf("write bg config: %v", err)
	}
	return path
}
