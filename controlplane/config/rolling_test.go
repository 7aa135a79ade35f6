package config

import (
	"strings"
	"testing"
	"time"

	"github.com/bgctl/bg/controlplane/model"
)

// Per-colour PromQL: the app's own counters labelled by colour, which tell
// a roll's new hosts from its old ones inside one cluster.
const (
	colourRequests = `app_requests_total{service="{{.Service}}",color="{{.Color}}"}`
	colourErrors   = `app_errors_total{service="{{.Service}}",color="{{.Color}}"}`
)

// rollingWith makes services[1] a rolling service judged on Prometheus
// with the given queries.
func rollingWith(requests, errs string) func(*Config) {
	return func(c *Config) {
		c.Prometheus.Address = "http://prometheus:9090"
		s := &c.Services[1]
		s.Strategy, s.Affinity.Header, s.Rolling = string(model.StrategyRolling), "x-session", DefaultRolling()
		s.Analysis.Requests, s.Analysis.Errors = requests, errs
	}
}

func TestValidateRollingQueries(t *testing.T) {
	perCluster := "per-cluster stats cannot tell them apart"
	runRuleCases(t, []ruleCase{
		{"rolling, prometheus, per-colour queries", rollingWith(colourRequests, colourErrors), "", ""},
		{"rolling, no prometheus: default queries fine (time and Consul health only)", func(c *Config) {
			rollingWith(DefaultRequestsQuery, DefaultErrorsQuery)(c)
			c.Prometheus.Address = ""
		}, "", ""},
		{"blue-green, prometheus, default queries", func(c *Config) { c.Prometheus.Address = "http://prometheus:9090" }, "", ""},
		{"rolling, prometheus, default requests", rollingWith(DefaultRequestsQuery, colourErrors), "services[1].analysis.requests", perCluster},
		{"rolling, prometheus, default errors", rollingWith(colourRequests, DefaultErrorsQuery), "services[1].analysis.errors", "default reads Envoy's per-cluster stats"},
		{"rolling, prometheus, by .Cluster", rollingWith(`app_requests_total{cluster="{{.Cluster}}"}`, colourErrors),
			"services[1].analysis.requests", "{{.Cluster}}"},
		{"rolling, prometheus, envoy_cluster_name built from .Color", rollingWith(
			`envoy_cluster_upstream_rq_total{envoy_cluster_name="{{.Service}}-{{.Color}}"}`, colourErrors),
			"services[1].analysis.requests", "envoy_cluster_name"},
		{"rolling, prometheus, no colour at all", rollingWith(`app_requests_total{service="{{.Service}}"}`, colourErrors),
			"services[1].analysis.requests", "{{.Color}}"},
		{"rolling, prometheus, colour by a template branch", rollingWith(
			`app_requests_total{version="{{if eq .Color "green"}}v2{{else}}v1{{end}}"}`, colourErrors), "", ""},
		// A windowed template gets the migration error, not a roll error as well.
		{"rolling, prometheus, windowed per-colour query", rollingWith(
			`sum(increase(app_requests_total{service="{{.Service}}",color="{{.Color}}"}[{{.Window}}]))`, colourErrors),
			"services[1].analysis.requests", "windowed templates are retired"},
		{"rolling, prometheus, budget shorter than rolling.interval", func(c *Config) {
			rollingWith(colourRequests, colourErrors)(c)
			c.Services[1].Rolling.Interval = 2 * time.Minute
		}, "services[1].analysis.unavailable_budget", "must be at least rolling.interval (2m0s)"},
		{"rolling, no prometheus, budget shorter than rolling.interval: not judged, fine", func(c *Config) {
			rollingWith(colourRequests, colourErrors)(c)
			c.Prometheus.Address = ""
			c.Services[1].Rolling.Interval = 2 * time.Minute
		}, "", ""},
	})
}

// The message says why, for someone who never read the roll's design.
func TestValidateRollingQueriesExplains(t *testing.T) {
	c := valid()
	rollingWith(DefaultRequestsQuery, DefaultErrorsQuery)(c)
	es := asErrors(t, c.Validate())
	if len(es) != 2 {
		t.Fatalf("want 2 errors, got:\n%v", es)
	}
	for _, want := range []string{"services[1].analysis.requests: ", "services[1].analysis.errors: ", "strategy rolling",
		"old colour's cluster (api-blue or api-green) carries both old and new hosts", `color="{{.Color}}"`} {
		if !strings.Contains(es.Error(), want) {
			t.Errorf("errors do not say %q:\n%v", want, es)
		}
	}
}

func TestLoadRollParamsJudged(t *testing.T) {
	yaml := func(prom, analysis string) string {
		s := "services:\n  - name: kv\n    port: 10000\n    strategy: rolling\n    affinity:\n      header: x-session\n" +
			"    rolling:\n      interval: 2s\n" + analysis +
			"  - name: web\n    port: 10001\n"
		if prom != "" {
			s += "prometheus:\n  address: " + prom + "\n"
		}
		return s
	}
	colour := "    analysis:\n      requests: '" + colourRequests + "'\n      errors: '" + colourErrors + "'\n" +
		"      unavailable_budget: 45s\n      on_unavailable: hold\n"

	c, err := Load(writeYAML(t, yaml("http://prometheus:9090", colour)), nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Validate(); err != nil {
		t.Fatalf("Validate: %v", err)
	}
	got := c.Services[0].Rolling.Params()
	if !got.Judged || got.UnavailableBudget != model.Duration(45*time.Second) || got.OnUnavailable != model.OnUnavailableHold {
		t.Errorf("judged rolling params = %+v, want judged, budget 45s, hold", got)
	}
	if err := got.Validate(); err != nil {
		t.Errorf("params do not validate: %v", err)
	}
	// web is blue-green with the default per-cluster queries: if Consul meta
	// makes it rolling, nothing can judge its rolls, so they are not judged.
	if p := c.Services[1].Rolling.Params(); p.Judged {
		t.Errorf("web (per-cluster queries) rolling params = %+v, want not judged", p)
	}

	// The same without Prometheus: time and Consul health only, said explicitly.
	c, err = Load(writeYAML(t, yaml("", colour)), nil)
	if err != nil {
		t.Fatal(err)
	}
	if p := c.Services[0].Rolling.Params(); p.Judged || p.UnavailableBudget != 0 || p.OnUnavailable != "" {
		t.Errorf("rolling params without prometheus = %+v, want not judged", p)
	}
	// BG_PROMETHEUS_ADDRESS counts like the file.
	t.Setenv("BG_PROMETHEUS_ADDRESS", "http://prometheus:9090")
	c, err = Load(writeYAML(t, yaml("", colour)), nil)
	if err != nil {
		t.Fatal(err)
	}
	if p := c.Services[0].Rolling.Params(); !p.Judged {
		t.Errorf("rolling params with BG_PROMETHEUS_ADDRESS = %+v, want judged", p)
	}
	// The defaults: rollback after one minute.
	c, err = Load(writeYAML(t, yaml("http://prometheus:9090",
		"    analysis:\n      requests: '"+colourRequests+"'\n      errors: '"+colourErrors+"'\n")), nil)
	if err != nil {
		t.Fatal(err)
	}
	if p := c.Services[0].Rolling.Params(); !p.Judged || p.UnavailableBudget != model.Duration(time.Minute) || p.OnUnavailable != model.OnUnavailableRollback {
		t.Errorf("default judged params = %+v", p)
	}
}

// How a roll is judged is derived, not a key of its own.
func TestRollJudgeIsNoKey(t *testing.T) {
	_, err := Load(writeYAML(t, "services:\n  - name: kv\n    port: 10000\n    rolling:\n      judge:\n        metrics: true\n"), nil)
	if err == nil || !strings.Contains(err.Error(), "services[0].rolling.judge") {
		t.Errorf("error %v, want services[0].rolling.judge: unknown key", err)
	}
}

// The full example's rolling service stays valid once Prometheus is set.
func TestFullExampleJudgedRollsValidate(t *testing.T) {
	c, err := Load(examplePath("bg.yaml"), map[string]any{"prometheus.address": "http://prometheus:9090"})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Validate(); err != nil {
		t.Fatalf("Validate:\n%v", err)
	}
	for _, s := range c.Services {
		if got, want := s.Rolling.Params().Judged, s.Name == "sessions"; got != want {
			t.Errorf("%s: rolls judged %v, want %v", s.Name, got, want)
		}
	}
}
