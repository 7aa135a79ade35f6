package config

import (
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestLoadAnalysisDefaults(t *testing.T) {
	c, err := Load(writeYAML(t, `
services:
  - name: absent
    port: 10000
  - name: null-block
    port: 10001
    analysis:
  - name: partial
    port: 10002
    analysis:
      interval: 5s
      steps: [10, 100]
      on_unavailable: hold
      confidence: ~ # null counts as absent
      latency:
        enabled: true
        unit: s
  - name: null-latency
    port: 10003
    analysis:
      latency: ~
`), nil)
	if err != nil {
		t.Fatal(err)
	}
	want := DefaultAnalysis()
	if want.Window != 0 || want.InsufficientBudget != 5*time.Minute || want.OnInsufficient != OnUnavailableRollback || want.Latency.Enabled {
		t.Errorf("defaults changed: window %v, insufficient %v/%s, latency on %v", want.Window, want.InsufficientBudget, want.OnInsufficient, want.Latency.Enabled)
	}
	if want.Requests != `envoy_cluster_upstream_rq_total{envoy_cluster_name="{{.Cluster}}"}` ||
		want.Errors != `envoy_cluster_upstream_rq_xx{envoy_cluster_name="{{.Cluster}}",envoy_response_code_class="5"}` {
		t.Errorf("default queries: %s, %s", want.Requests, want.Errors)
	}
	wantLat := Latency{Query: `envoy_cluster_upstream_rq_time_bucket{envoy_cluster_name="{{.Cluster}}"}`, Unit: "ms",
		Quantile: 0.99, Relative: 0.2, Absolute: 50 * time.Millisecond}
	if want.Latency != wantLat {
		t.Errorf("default latency %+v, want %+v", want.Latency, wantLat)
	}
	for _, i := range []int{0, 1, 3} {
		if got := c.Services[i].Analysis; !reflect.DeepEqual(got, want) {
			t.Errorf("services[%d].analysis = %+v, want defaults", i, got)
		}
	}
	partial := DefaultAnalysis()
	partial.Interval = 5 * time.Second
	partial.Steps = []int{10, 100}
	partial.OnUnavailable = OnUnavailableHold
	// Latency keys are defaulted one by one, like the block around them.
	partial.Latency.Enabled = true
	partial.Latency.Unit = "s"
	if got := c.Services[2].Analysis; !reflect.DeepEqual(got, partial) {
		t.Errorf("services[2].analysis = %+v\nwant %+v", got, partial)
	}
	if err := c.Validate(); err != nil {
		t.Errorf("Validate: %v", err)
	}
	// Each service owns its Steps.
	c.Services[0].Analysis.Steps[0] = 2
	if c.Services[1].Analysis.Steps[0] != 1 || DefaultAnalysis().Steps[0] != 1 {
		t.Error("Steps slice shared between services or with DefaultAnalysis")
	}
}

// Explicit zeros are values, not "absent": margin and bake may be 0, and a
// zero interval is reported rather than silently defaulted.
func TestLoadAnalysisExplicitZeros(t *testing.T) {
	c, err := Load(writeYAML(t, `
services:
  - name: web
    port: 10000
    analysis:
      margin: 0
      bake: 0s
      interval: 0s
      steps: []
      requests: ""
`), nil)
	if err != nil {
		t.Fatal(err)
	}
	a := c.Services[0].Analysis
	if a.Margin != 0 || a.Bake != 0 || a.Interval != 0 || len(a.Steps) != 0 || a.Requests != "" {
		t.Fatalf("explicit zeros replaced by defaults: %+v", a)
	}
	if a.Confidence != 0.99 || a.InsufficientBudget != 5*time.Minute || a.Errors != DefaultErrorsQuery || a.Latency != DefaultLatency() {
		t.Errorf("absent keys not defaulted: %+v", a)
	}
	want := Errors{
		{"services[0].analysis.requests", "required"},
		{"services[0].analysis.interval", "0s: must be at least 1s"},
		{"services[0].analysis.steps", "at least one step is required"},
	}
	if got := asErrors(t, c.Validate()); got.Error() != want.Error() {
		t.Fatalf("got:\n%v\nwant:\n%v", got, want)
	}
}

func TestLoadAnalysisEveryKey(t *testing.T) {
	c, err := Load(writeYAML(t, `
services:
  - name: web
    port: 10000
    analysis:
      requests: 'rq{svc="{{.Service}}",color="{{.Color}}"}'
      errors: 'err{cluster="{{.Cluster}}"}'
      interval: 15s
      steps: [10, 50, 100]
      bake: 30s
      min_requests: 50.5
      confidence: 0.95
      margin: 0.25
      unavailable_budget: 45s
      on_unavailable: hold
      insufficient_budget: 2m
      on_insufficient: hold
      rollback: gradual
      latency:
        enabled: true
        query: 'rq_seconds_bucket{svc="{{.Service}}",color="{{.Color}}"}'
        unit: s
        quantile: 0.95
        relative: 0.5
        absolute: 20ms
`), nil)
	if err != nil {
		t.Fatal(err)
	}
	want := Analysis{
		Requests:           `rq{svc="{{.Service}}",color="{{.Color}}"}`,
		Errors:             `err{cluster="{{.Cluster}}"}`,
		Interval:           15 * time.Second,
		Steps:              []int{10, 50, 100},
		Bake:               30 * time.Second,
		MinRequests:        50.5,
		Confidence:         0.95,
		Margin:             0.25,
		UnavailableBudget:  45 * time.Second,
		OnUnavailable:      OnUnavailableHold,
		InsufficientBudget: 2 * time.Minute,
		OnInsufficient:     OnUnavailableHold,
		Rollback:           RollbackGradual,
		Latency: Latency{Enabled: true, Query: `rq_seconds_bucket{svc="{{.Service}}",color="{{.Color}}"}`, Unit: "s",
			Quantile: 0.95, Relative: 0.5, Absolute: 20 * time.Millisecond},
	}
	if got := c.Services[0].Analysis; !reflect.DeepEqual(got, want) {
		t.Errorf("got  %+v\nwant %+v", got, want)
	}
	if err := c.Validate(); err != nil {
		t.Errorf("Validate: %v", err)
	}
	// No field of want equals its default, so every key was really read;
	// window is retired and has no value to read but zero.
	checkNoDefaults(t, want, DefaultAnalysis(), "Window")
	checkNoDefaults(t, want.Latency, DefaultLatency())
}

// checkNoDefaults fails for each field of got, but those skipped, that
// equals its default.
func checkNoDefaults[T any](t *testing.T, got, def T, skip ...string) {
	t.Helper()
	g, d := reflect.ValueOf(got), reflect.ValueOf(def)
	for i, f := range reflect.VisibleFields(g.Type()) {
		if slices.Contains(skip, f.Name) {
			continue
		}
		if reflect.DeepEqual(g.Field(i).Interface(), d.Field(i).Interface()) {
			t.Errorf("test value of %s equals the default", f.Name)
		}
	}
}

// The retired window is still read, so that validation names it and says
// how to migrate instead of calling it an unknown key; bg validate lists it
// with every other problem, a windowed template included.
func TestLoadAnalysisWindowRetired(t *testing.T) {
	c, err := Load(writeYAML(t, `
services:
  - name: web
    port: 10000
    analysis:
      requests: 'sum(increase(rq{cluster="{{.Cluster}}"}[{{.Window}}]))'
      window: 2m
      on_insufficient: later
      latency:
        enabled: true
        unit: us
`), nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := c.Services[0].Analysis.Window; got != 2*time.Minute {
		t.Fatalf("window = %v, want 2m read", got)
	}
	es := asErrors(t, c.Validate())
	paths := make([]string, len(es))
	for i, e := range es {
		paths[i] = e.Path
	}
	wantPaths := []string{"services[0].analysis.requests", "services[0].analysis.window",
		"services[0].analysis.on_insufficient", "services[0].analysis.latency.unit"}
	if !reflect.DeepEqual(paths, wantPaths) {
		t.Fatalf("errors at %v, want %v:\n%v", paths, wantPaths, es)
	}
	for i, want := range []string{"windowed templates are retired: the template uses .Window", "2m0s: window is retired", `"later"`, `"us"`} {
		if !strings.Contains(es[i].Message, want) {
			t.Errorf("%s: %q lacks %q", es[i].Path, es[i].Message, want)
		}
	}
	if !strings.Contains(es[1].Message, "remove the key") {
		t.Errorf("window message does not say to remove the key: %q", es[1].Message)
	}

	// window: 0s is the retired key's only harmless value.
	c, err = Load(writeYAML(t, "services:\n  - name: web\n    port: 10000\n    analysis:\n      window: 0s\n"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Validate(); err != nil {
		t.Errorf("window: 0s: %v", err)
	}
}

// Explicit zeros that mean something survive in the latency block: no
// relative or absolute slack. A zero quantile is reported, not defaulted.
func TestLoadLatencyExplicitZeros(t *testing.T) {
	c, err := Load(writeYAML(t, `
services:
  - name: web
    port: 10000
    analysis:
      latency:
        enabled: true
        relative: 0
        absolute: 0s
  - name: api
    port: 10001
    analysis:
      latency:
        enabled: true
        quantile: 0
        query: ""
`), nil)
	if err != nil {
		t.Fatal(err)
	}
	l := c.Services[0].Analysis.Latency
	if l.Relative != 0 || l.Absolute != 0 {
		t.Fatalf("explicit zero slack replaced by defaults: %+v", l)
	}
	if l.Quantile != 0.99 || l.Unit != "ms" || l.Query != DefaultLatency().Query {
		t.Errorf("absent latency keys not defaulted: %+v", l)
	}
	want := Errors{
		{"services[1].analysis.latency.query", "required"},
		{"services[1].analysis.latency.quantile", "0: must be between 0.5 and 1, exclusive"},
	}
	if got := asErrors(t, c.Validate()); got.Error() != want.Error() {
		t.Fatalf("got:\n%v\nwant:\n%v", got, want)
	}
}

func TestLoadLatencyUnknownKey(t *testing.T) {
	_, err := Load(writeYAML(t, "services:\n  - name: web\n    port: 10000\n    analysis:\n      latency:\n        p99: 50ms\n"), nil)
	if err == nil || !strings.Contains(err.Error(), "services[0].analysis.latency.p99: unknown key") {
		t.Errorf("got %v", err)
	}
}

// Analysis keys sit in list items, which viper cannot bind to environment
// variables; they are set in the file only.
func TestLoadAnalysisNotFromEnv(t *testing.T) {
	t.Setenv("BG_SERVICES_0_ANALYSIS_MARGIN", "5")
	c, err := Load(writeYAML(t, "services:\n  - name: web\n    port: 10000\n"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.Services[0].Analysis.Margin != 0.1 {
		t.Errorf("margin = %v: env unexpectedly reached a list item", c.Services[0].Analysis.Margin)
	}
}

func TestLoadPrometheusAddress(t *testing.T) {
	c, err := Load("", nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.Prometheus.Address != "" {
		t.Errorf("default prometheus.address = %q, want empty (not configured)", c.Prometheus.Address)
	}
	c, err = Load(writeYAML(t, "prometheus:\n  address: http://file:9090\n"),
		map[string]any{"prometheus.address": "http://flag:9090"})
	if err != nil {
		t.Fatal(err)
	}
	if c.Prometheus.Address != "http://flag:9090" {
		t.Errorf("prometheus.address = %q, want the override", c.Prometheus.Address)
	}
	_, err = Load(writeYAML(t, "prometheus:\n  adress: x\n"), nil)
	if err == nil || !strings.Contains(err.Error(), "prometheus.adress: unknown key") {
		t.Errorf("got %v", err)
	}
}
