package commands_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/bgctl/bg/cli/commands"
)

func writeConfig(t *testing.T, yaml string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "bg.yaml")
	if err := os.WriteFile(p, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// A config written for the retired analysis window: bg validate names the
// window and the windowed templates, each at its path with how to migrate,
// along with every other problem, and exits with a usage error.
func TestValidateRetiredWindow(t *testing.T) {
	path := writeConfig(t, `
services:
  - name: web
    port: 10000
    analysis:
      requests: 'sum(increase(envoy_cluster_upstream_rq_total{envoy_cluster_name="{{.Cluster}}"}[{{.Window}}]))'
      errors: 'sum(rate(app_errors_total{color="{{.Color}}"}[1m]))'
      window: 2m
      on_insufficient: wait
      latency:
        enabled: true
        unit: us
        quantile: 1
        absolute: -5ms
  - name: api
    port: 10000
`)
	code, out, errOut := run(t, "validate", "--config", path)
	expect(t, code, out, errOut, commands.ExitUsage,
		"invalid configuration:",
		"services[0].analysis.requests: windowed templates are retired: the template uses .Window",
		"services[0].analysis.errors: windowed templates are retired: the template uses rate",
		"select the counter itself",
		"services[0].analysis.window: 2m0s: window is retired",
		"remove the key",
		`services[0].analysis.on_insufficient: "wait": must be rollback or hold`,
		`services[0].analysis.latency.unit: "us": must be ms`,
		"services[0].analysis.latency.quantile: 1: must be between 0.5 and 1, exclusive",
		"services[0].analysis.latency.absolute: -5ms: must not be negative",
		"services[1].port: 10000 already used by services[0]",
	)
	if out != "" {
		t.Errorf("stdout: %q", out)
	}
	// Every problem once, in field order: the window comes after the queries.
	if i, j := strings.Index(errOut, "services[0].analysis.errors:"), strings.Index(errOut, "services[0].analysis.window:"); i < 0 || j < i {
		t.Errorf("errors out of order:\n%s", errOut)
	}
	if n := strings.Count(errOut, "services[0].analysis.window:"); n != 1 {
		t.Errorf("window reported %d times:\n%s", n, errOut)
	}
}

// The migrated form of the same service validates.
func TestValidateMigratedConfig(t *testing.T) {
	path := writeConfig(t, `
services:
  - name: web
    port: 10000
    analysis:
      requests: 'envoy_cluster_upstream_rq_total{envoy_cluster_name="{{.Cluster}}"}'
      errors: 'app_errors_total{color="{{.Color}}"}'
      insufficient_budget: 10s
      on_insufficient: hold
      latency:
        enabled: true
        relative: 0
        absolute: 0s
`)
	code, out, errOut := run(t, "validate", "--config", path)
	expect(t, code, out, errOut, commands.ExitOK)
	if out != "config is valid\n" {
		t.Errorf("stdout: %q", out)
	}
}

// Every example config in the repository validates; compose's takes its
// admin token from the environment, as docker-compose.yml passes it.
func TestValidateExamples(t *testing.T) {
	t.Setenv("BG_ADMIN_TOKEN", "test-token")
	for _, name := range []string{"bg.yaml", "minimal.yaml", "compose/bg.yaml"} {
		t.Run(name, func(t *testing.T) {
			code, out, errOut := run(t, "validate", "--config", filepath.Join("..", "..", "configs", name))
			expect(t, code, out, errOut, commands.ExitOK)
		})
	}
}

// bg validate lists every problem of a file at once, unknown keys (with a
// suggestion when one is close) together with values that do not decode and
// semantic errors, one per line with its field path, and exits 2.
func TestValidateListsEveryError(t *testing.T) {
	cases := []struct {
		name, yaml string
		want       []string
	}{{
		name: "unknown keys, a bad value and semantic errors",
		yaml: `
consul: {adress: consul:8500}
log: {level: loud}
logging: {level: debug}
services:
  - name: web
    port: 10000
  - name: api
    port: 70000
  - name: search
  - name: cart
    port: 10000
    analyis: {margin: 0.2}
    analysis: {bake: 60}
  - name: Bad_Name
    port: 0
releases:
  - name: checkout
    services: [web, billing]
`,
		want: []string{
			"services[3].analysis.bake: duration 60 has no unit (write e.g. 30s or 5m)",
			"consul.adress: unknown key (did you mean address?)",
			"logging: unknown key",
			"services[3].analyis: unknown key (did you mean analysis?)",
			"services[4].port: 0: must be in 1..65535 (leave port out for a service without an Envoy listener)",
			`log.level: "loud": must be one of debug, info, warn, error`,
			"services[1].port: 70000: must be in 1..65535 (leave port out for a service without an Envoy listener)",
			"services[3].port: 10000 already used by services[0]",
			`services[4].name: "Bad_Name": must be lowercase letters, digits and inner dashes`,
			`releases[0].services[1]: "billing": not a configured service`,
		},
	}, {
		name: "a typo alone",
		yaml: "services:\n  - name: web\n    prot: 10000\n",
		want: []string{"services[0].prot: unknown key (did you mean port?)"},
	}}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			code, out, errOut := run(t, "validate", "--config", writeConfig(t, tc.yaml))
			lines := make([]string, len(tc.want))
			for i, w := range tc.want {
				lines[i] = "  " + w
			}
			want := "invalid configuration:\n" + strings.Join(lines, "\n") + "\n"
			if code != commands.ExitUsage || out != "" || errOut != want {
				t.Errorf("exit %d, stdout %q, stderr:\n%s\nwant exit %d, stderr:\n%s", code, out, errOut, commands.ExitUsage, want)
			}
		})
	}
}

// A service without a port (proxyless gRPC clients only) is valid.
func TestValidatePortless(t *testing.T) {
	code, out, errOut := run(t, "validate", "--config", writeConfig(t, "services:\n  - name: web\n    port: 10000\n  - name: search\n    protocol: http2\n"))
	expect(t, code, out, errOut, commands.ExitOK)
}
