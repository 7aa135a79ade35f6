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
	// Services, when set, are the configured services instead of Service
	// (with Analysis, Latency and ServiceYAML): several http2 services, each
	// judged on its own counters when PrometheusURL is set.
	Services []BGService
	// TopYAML is extra top-level YAML (e.g. "release:" or "releases:"),
	// written as is at the end.
	TopYAML string
	// ConsulYAML is extra YAML lines under consul: (e.g. tls, token_file),
	// indented as its keys.
	ConsulYAML string
	// AdminYAML is extra YAML lines under admin: (e.g. tls, tokens),
	// indented as its keys.
	AdminYAML string
}

// BGService is one service of a multi-service config (BGConfig.Services).
type BGService struct {
	Name string
	// Port is the service's listener port; 0: 10000 + its index.
	Port int
	// DependsOn names the services it calls.
	DependsOn []string
	// Analysis is extra YAML for its analysis, one "key: value" per line
	// (used when BGConfig.PrometheusURL is set).
	Analysis string
	// YAML is extra YAML lines for the service itself, as ServiceYAML.
	YAML string
}

// WriteBGConfig writes a config for http2 (gRPC) services (one, Service,
// unless Services is set) and returns its path.
func WriteBGConfig(t TB, c BGConfig) string {
	t.Helper()
	token := ""
	if c.Token != "" {
		token = "\n  token: " + c.Token
	}
	if a := indentYAML(c.AdminYAML, "  "); a != "" {
		token += "\n" + strings.TrimRight(a, "\n")
	}
	cfg := fmt.Sprintf(`consul:
  address: %s
  wait: 30s
%sxds:
  listen: %s
admin:
  listen: %s%s
switch:
  timeout: 20s
leader:
  lock_delay: 1s
services:
`, c.ConsulAddr, indentYAML(c.ConsulYAML, "  "), c.XDSAddr, c.AdminAddr, token)
	if len(c.Services) == 0 {
		cfg += serviceYAML(c, BGService{Name: c.Service, Port: 10000, Analysis: c.Analysis, YAML: c.ServiceYAML}, c.Latency)
	}
	for i, s := range c.Services {
		if s.Port == 0 {
			s.Port = 10000 + i
		}
		cfg += serviceYAML(c, s, false)
	}
	if c.PrometheusURL != "" {
		cfg += "prometheus:\n  address: " + c.PrometheusURL + "\n"
	}
	if top := strings.TrimSpace(c.TopYAML); top != "" {
		cfg += top + "\n"
	}
	path := filepath.Join(t.TempDir(), "bg.yaml")
	if err := os.WriteFile(path, []byte(cfg), 0o644); err != nil {
		t.Fatalf("write bg config: %v", err)
	}
	return path
}

// serviceYAML is one "- name:" entry of services.
func serviceYAML(c BGConfig, s BGService, latency bool) string {
	cfg := fmt.Sprintf("  - name: %s\n    port: %d\n    protocol: http2\n", s.Name, s.Port)
	if len(s.DependsOn) > 0 {
		cfg += "    depends_on: [" + strings.Join(s.DependsOn, ", ") + "]\n"
	}
	for _, line := range strings.Split(strings.TrimRight(s.YAML, "\n "), "\n") {
		if strings.TrimSpace(line) != "" {
			cfg += "    " + line + "\n"
		}
	}
	if c.PrometheusURL == "" {
		return cfg
	}
	cfg += "    analysis:\n"
	cfg += "      requests: '" + AppRequestsTemplate + "'\n"
	cfg += "      errors: '" + AppErrorsTemplate + "'\n"
	for _, line := range strings.Split(strings.TrimSpace(s.Analysis), "\n") {
		if line = strings.TrimSpace(line); line != "" {
			cfg += "      " + line + "\n"
		}
	}
	if latency {
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
	return cfg
}

// indentYAML indents each non-blank line of y by in, newline-terminated.
func indentYAML(y, in string) string {
	var out string
	for _, line := range strings.Split(strings.TrimRight(y, "\n "), "\n") {
		if strings.TrimSpace(line) != "" {
			out += in + line + "\n"
		}
	}
	return out
}
