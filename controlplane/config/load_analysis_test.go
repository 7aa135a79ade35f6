package config

import (
	"reflect"
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
`), nil)
	if err != nil {
		t.Fatal(err)
	}
	want := DefaultAnalysis()
	for _, i := range []int{0, 1} {
		if got := c.Services[i].Analysis; !reflect.DeepEqual(got, want) {
			t.Errorf("services[%d].analysis = %+v, want defaults", i, got)
		}
	}
	partial := DefaultAnalysis()
	partial.Interval = 5 * time.Second
	partial.Steps = []int{10, 100}
	partial.OnUnavailable = OnUnavailableHold
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
	if a.Confidence != 0.99 || a.Window != time.Minute || a.Errors != DefaultErrorsQuery {
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
      requests: 'sum(increase(rq{svc="{{.Service}}",color="{{.Color}}"}[{{.Window}}]))'
      errors: 'sum(increase(err{cluster="{{.Cluster}}"}[{{.Window}}]))'
      interval: 15s
      window: 2m
      steps: [10, 50, 100]
      bake: 30s
      min_requests: 50.5
      confidence: 0.95
      margin: 0.25
      unavailable_budget: 45s
      on_unavailable: hold
      rollback: gradual
`), nil)
	if err != nil {
		t.Fatal(err)
	}
	want := Analysis{
		Requests:          `sum(increase(rq{svc="{{.Service}}",color="{{.Color}}"}[{{.Window}}]))`,
		Errors:            `sum(increase(err{cluster="{{.Cluster}}"}[{{.Window}}]))`,
		Interval:          15 * time.Second,
		Window:            2 * time.Minute,
		Steps:             []int{10, 50, 100},
		Bake:              30 * time.Second,
		MinRequests:       50.5,
		Confidence:        0.95,
		Margin:            0.25,
		UnavailableBudget: 45 * time.Second,
		OnUnavailable:     OnUnavailableHold,
		Rollback:          RollbackGradual,
	}
	if got := c.Services[0].Analysis; !reflect.DeepEqual(got, want) {
		t.Errorf("got  %+v\nwant %+v", got, want)
	}
	if err := c.Validate(); err != nil {
		t.Errorf("Validate: %v", err)
	}
	// No field of want equals its default, so every key was really read.
	def := reflect.ValueOf(DefaultAnalysis())
	for i, f := range reflect.VisibleFields(reflect.TypeOf(want)) {
		if reflect.DeepEqual(reflect.ValueOf(want).Field(i).Interface(), def.Field(i).Interface()) {
			t.Errorf("test value of %s equals the default", f.Name)
		}
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
