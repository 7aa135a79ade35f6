package prometheus

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/bgctl/bg/controlplane/model"
)

func TestValidateTemplate(t *testing.T) {
	for _, ok := range []string{
		EnvoyRequests, EnvoyErrors, EnvoyLatency,
		`x{s="{{.Service}}",c="{{.Color}}"}`,
		`http_requests_total{job="{{ .Service }}-{{ .Color }}"}`,
		// Names that merely contain a retired word are counters like any other.
		`ratelimit_hits_total{cluster="{{.Cluster}}"}`,
		`errors_increased_total{cluster="{{.Cluster}}"}`,
	} {
		if err := ValidateTemplate(ok); err != nil {
			t.Errorf("ValidateTemplate(%q) = %v", ok, err)
		}
	}
	for _, bad := range []string{"", "  ", `{{.Cluster`, `{{.Nope}}`, `{{nofunc .Cluster}}`, `{{if false}}x{{end}}`} {
		if err := ValidateTemplate(bad); err == nil {
			t.Errorf("ValidateTemplate(%q) succeeded", bad)
		} else if errors.Is(err, ErrRetiredTemplate) {
			t.Errorf("ValidateTemplate(%q) = %v, a syntax error called retired", bad, err)
		}
	}
}

// TestValidateTemplateRefusesWindowedTemplates: templates written for the
// windowed judge are refused with how to migrate, however they are spaced.
func TestValidateTemplateRefusesWindowedTemplates(t *testing.T) {
	for tmpl, uses := range map[string]string{
		`sum(increase(x{cluster="{{.Cluster}}"}[{{.Window}}]))`: ".Window",
		`x{cluster="{{ .Window }}"}`:                            ".Window",
		`x{cluster="{{- .Window -}}"}`:                          ".Window",
		`sum(increase(x[1m]))`:                                  "increase",
		"sum(increase\t(x[1m]))":                                "increase",
		`rate(x[5m])`:                                           "rate",
		`rate (x[5m])`:                                          "rate",
		"sum by (pod) (\n  rate (\n x[5m]))":                    "rate",
		`irate(x[5m])`:                                          "rate", // irate( contains rate(
		`delta(x[5m])`:                                          "delta",
		`sum_over_time(x[5m])`:                                  "_over_time",
	} {
		err := ValidateTemplate(tmpl)
		if !errors.Is(err, ErrRetiredTemplate) {
			t.Errorf("ValidateTemplate(%q) = %v, want ErrRetiredTemplate", tmpl, err)
			continue
		}
		msg := err.Error()
		for _, want := range []string{
			"windowed templates are retired",
			"the template uses " + uses + ",",
			"counts the difference since the switch began",
			"analysis.window is gone",
			"select the counter itself, per series",
			"becomes `x{cluster=\"{{.Cluster}}\"}`",
		} {
			if !strings.Contains(msg, want) {
				t.Errorf("ValidateTemplate(%q) = %q, want it to contain %q", tmpl, msg, want)
			}
		}
	}
}

func TestNewTemplateData(t *testing.T) {
	for c, want := range map[model.Color]TemplateData{
		model.Blue:  {Service: "web", Color: "blue", Cluster: "web-blue"},
		model.Green: {Service: "web", Color: "green", Cluster: "web-green"},
	} {
		if d := NewTemplateData("web", c); d != want {
			t.Errorf("NewTemplateData(web, %s) = %+v, want %+v", c, d, want)
		}
	}
}

func TestEnvoyTemplatesRender(t *testing.T) {
	d := NewTemplateData("web", model.Green)
	for tmpl, want := range map[string]string{
		EnvoyRequests: `envoy_cluster_upstream_rq_total{envoy_cluster_name="web-green"}`,
		EnvoyErrors:   `envoy_cluster_upstream_rq_xx{envoy_cluster_name="web-green",envoy_response_code_class="5"}`,
		EnvoyLatency:  `envoy_cluster_upstream_rq_time_bucket{envoy_cluster_name="web-green"}`,
	} {
		p, err := parseTemplate("t", tmpl)
		if err != nil {
			t.Fatal(err)
		}
		if got, err := render(p, d); err != nil || got != want {
			t.Errorf("render(%q) = %q, %v; want %q", tmpl, got, err, want)
		}
	}
}

func TestServerTimeout(t *testing.T) {
	for in, want := range map[time.Duration]time.Duration{
		0:                       time.Second,
		300 * time.Millisecond:  time.Second,
		5500 * time.Millisecond: 5 * time.Second,
		time.Minute:             time.Minute,
	} {
		if got := serverTimeout(in); got != want {
			t.Errorf("serverTimeout(%v) = %v, want %v", in, got, want)
		}
	}
}
