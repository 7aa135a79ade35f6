package config

import (
	"strings"
	"testing"
)

// LoadValid reports every problem of a file at once: unknown keys (with a
// suggestion when one is close), values that do not decode and the semantic
// errors of the rest, each once, with its field path.
func TestLoadValidListsEveryError(t *testing.T) {
	cases := []struct {
		name, yaml string
		want       []string // every error, in order
		wantNot    []string
	}{{
		name: "unknown keys beside semantic errors",
		yaml: `
consul:
  adress: consul:8500
  wait: soon
prometheus:
  address: http://prom:9090
logging: {level: debug}
log: {level: loud}
switch: {timeout: -1s}
services:
  - name: Web_1
    port: 10000
  - name: api
    port: 70000
    protocl: http2
  - name: cart
    port: 10000
    analyis: {margin: 0.2}
    analysis:
      steps: [1, half, 100]
releases:
  - name: checkout
    services: [api, billing]
`,
		want: []string{
			// values that did not decode, then unknown keys (sorted), then Validate's
			`consul.wait: "soon" is not a duration`,
			"services[2].analysis.steps[1]: ",
			"consul.adress: unknown key (did you mean address?)",
			"logging: unknown key",
			"services[1].protocl: unknown key (did you mean protocol?)",
			"services[2].analyis: unknown key (did you mean analysis?)",
			`switch.timeout: must be positive, got -1s`,
			`log.level: "loud": must be one of debug, info, warn, error`,
			`services[0].name: "Web_1": must be lowercase letters, digits and inner dashes`,
			"services[1].port: 70000: must be in 1..65535",
			"services[2].port: 10000 already used by services[0]",
			`releases[0].services[1]: "billing": not a configured service`,
		},
		// The undecodable wait is not also out of range; the steps that
		// did not decode are not also judged.
		wantNot: []string{"consul.wait: 0s", "services[2].analysis.steps:", "logging: unknown key (did you mean"},
	}, {
		name: "unknown keys only",
		yaml: "xds: {lisen: 127.0.0.1:1}\nservices:\n  - name: web\n    prot: 10000\n",
		want: []string{
			"services[0].prot: unknown key (did you mean port?)",
			"xds.lisen: unknown key (did you mean listen?)",
		},
	}, {
		name: "semantic errors only",
		yaml: "admin: {listen: 0.0.0.0:9090}\nservices: []\n",
		want: []string{
			"admin.token: required when admin.listen is not loopback (0.0.0.0:9090)",
			"services: at least one service is required",
		},
	}}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c, err := LoadValid(writeYAML(t, tc.yaml), nil)
			if c != nil || err == nil {
				t.Fatalf("LoadValid = %v, %v; want only an error", c, err)
			}
			es := asErrors(t, err)
			if len(es) != len(tc.want) {
				t.Errorf("%d errors, want %d:\n%v", len(es), len(tc.want), err)
			}
			for i, w := range tc.want {
				if i >= len(es) || !strings.HasPrefix(es[i].Error(), w) {
					t.Errorf("error %d: want %q, all:\n%v", i, w, err)
				}
			}
			lines := strings.Split(err.Error(), "\n")
			if len(lines) != len(es) {
				t.Errorf("%d lines for %d errors:\n%v", len(lines), len(es), err)
			}
			for _, n := range tc.wantNot {
				if strings.Contains(err.Error(), n) {
					t.Errorf("reports %q:\n%v", n, err)
				}
			}
		})
	}
}

// Load still stops at file problems, now listing them all with suggestions.
func TestLoadListsDecodeErrorsAndUnknownKeys(t *testing.T) {
	_, err := Load(writeYAML(t, "consul: {wait: soon, adress: x}\nservices: [{name: web, prot: 1}]\n"), nil)
	es := asErrors(t, err)
	want := []string{`consul.wait: "soon" is not a duration (write e.g. 30s or 5m)`, "consul.adress: unknown key (did you mean address?)",
		"services[0].prot: unknown key (did you mean port?)"}
	if len(es) != len(want) {
		t.Fatalf("got %v", err)
	}
	for i, w := range want {
		if es[i].Error() != w {
			t.Errorf("error %d = %q, want %q", i, es[i].Error(), w)
		}
	}
}

// A valid file loads through LoadValid as through Load.
func TestLoadValidValid(t *testing.T) {
	c, err := LoadValid(writeYAML(t, fileYAML), nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.Services[1].ConsulService != "api-v2" || c.Consul.KVPrefix != "traffic/" {
		t.Errorf("loaded %+v", c)
	}
}

// Errors that stop reading are returned alone, as by Load.
func TestLoadValidFatal(t *testing.T) {
	if _, err := LoadValid(writeYAML(t, "consul: [\n"), nil); err == nil || !strings.Contains(err.Error(), "parse config") {
		t.Errorf("malformed: %v", err)
	}
	if _, err := LoadValid("", map[string]any{"xds.lisen": "x"}); err == nil || !strings.Contains(err.Error(), "overrides: unknown keys: xds.lisen") {
		t.Errorf("override: %v", err)
	}
}

func TestSuggestKey(t *testing.T) {
	for path, want := range map[string]string{
		"services[2].analyis":            "analysis",
		"services[0].prot":               "port",
		"consul.color.blue_tags":         "blue_tag",
		"services[0].analysis.latency.q": "",
		"services[0].analysis.margine":   "margin",
		"releases[0].gates[1].timout":    "timeout",
		"history.retain":                 "", // three edits from retention
		"logging":                        "",
		"nosuch.key":                     "",
	} {
		if got := suggestKey(path); got != want {
			t.Errorf("suggestKey(%q) = %q, want %q", path, got, want)
		}
	}
}

// port is optional: absent (or null) is no Envoy listener; given, it must be
// a real port, so an explicit 0 is refused, once.
func TestLoadPortOptional(t *testing.T) {
	c, err := LoadValid(writeYAML(t, "services:\n  - name: grpc-only\n  - name: nulled\n    port: null\n  - name: web\n    port: 10000\n"), nil)
	if err != nil {
		t.Fatal(err)
	}
	for i, want := range []int{0, 0, 10000} {
		if got := c.Services[i].Port; got != want {
			t.Errorf("services[%d] listener port %d, want %d", i, got, want)
		}
	}
	for yaml, want := range map[string]string{
		"port: 0":      "services[0].port: 0: must be in 1..65535 (leave port out for a service without an Envoy listener)",
		"port: 65536":  "services[0].port: 65536: must be in 1..65535",
		"port: -5":     "services[0].port: -5: must be in 1..65535",
		"port: eighty": "services[0].port: cannot parse",
	} {
		_, err := LoadValid(writeYAML(t, "services:\n  - name: web\n    "+yaml+"\n"), nil)
		if err == nil || !strings.HasPrefix(err.Error(), want) || strings.Count(err.Error(), "\n") != 0 {
			t.Errorf("%s: %v, want one error %q", yaml, err, want)
		}
	}
}
