package prometheus

import (
	"errors"
	"fmt"
	"strings"
	"text/template"
	"time"

	"github.com/prometheus/common/model"

	bgmodel "github.com/bgctl/bg/controlplane/model"
)

// Templates are one service's two PromQL text/templates, rendered with
// TemplateData. Each must evaluate to exactly one series, so aggregate with
// sum(): a query that returns several series is an error, not summed here.
type Templates struct {
	Requests string
	Errors   string
}

// Envoy cluster stats, as Envoy's /stats/prometheus names them.
const (
	// EnvoyRequests has no fallback on purpose: rq_total exists from the
	// moment Envoy has the cluster, so no series means Prometheus does not
	// scrape that Envoy (or the cluster name is wrong), and that is "no data".
	EnvoyRequests = `sum(increase(envoy_cluster_upstream_rq_total{envoy_cluster_name="{{.Cluster}}"}[{{.Window}}]))`
	// EnvoyErrors needs `or vector(0)`: Envoy creates the 5xx series at the
	// cluster's first 5xx, so a healthy fleet has no series at all. The price:
	// a typo here reads as zero errors; increase() skips the series' first
	// value and extrapolates a young series differently from rq_total, so the
	// ratio is rough until the 5xx series spans the window.
	EnvoyErrors = `sum(increase(envoy_cluster_upstream_rq_xx{envoy_cluster_name="{{.Cluster}}",envoy_response_code_class="5"}[{{.Window}}])) or vector(0)`
)

// EnvoyTemplates are the defaults for a service behind Envoy.
var EnvoyTemplates = Templates{Requests: EnvoyRequests, Errors: EnvoyErrors}

// TemplateData is what a template sees.
type TemplateData struct {
	Service string // "web"
	Color   string // "green"
	Cluster string // bg's xDS cluster, "web-green"
	Window  string // a PromQL duration, "30s", "1m30s"
}

// NewTemplateData fills TemplateData for one fleet and window.
func NewTemplateData(service string, c bgmodel.Color, window time.Duration) TemplateData {
	return TemplateData{
		Service: service,
		Color:   string(c),
		Cluster: bgmodel.ClusterName(service, c),
		// Go's "1m30.5s" is no PromQL duration; model.Duration prints "1m30s500ms".
		Window: model.Duration(window).String(),
	}
}

// sampleData renders templates at validation time.
var sampleData = NewTemplateData("web", bgmodel.Green, time.Minute)

// ValidateTemplate parses tmpl and renders it with sample data, so config
// validation catches syntax errors and unknown fields before a switch.
func ValidateTemplate(tmpl string) error {
	_, err := parseTemplate("query", tmpl)
	return err
}

func parseTemplate(name, tmpl string) (*template.Template, error) {
	if strings.TrimSpace(tmpl) == "" {
		return nil, errors.New("empty template")
	}
	t, err := template.New(name).Option("missingkey=error").Parse(tmpl)
	if err != nil {
		return nil, err
	}
	out, err := render(t, sampleData)
	if err != nil {
		return nil, err
	}
	if strings.TrimSpace(out) == "" {
		return nil, errors.New("template renders an empty query")
	}
	return t, nil
}

func render(t *template.Template, d TemplateData) (string, error) {
	var b strings.Builder
	if err := t.Execute(&b, d); err != nil {
		return "", err
	}
	return b.String(), nil
}

// parsed is one service's ready templates.
type parsed struct {
	requests, errors *template.Template
}

func parseTemplates(service string, ts Templates) (parsed, error) {
	r, err := parseTemplate(service+" requests", ts.Requests)
	if err != nil {
		return parsed{}, fmt.Errorf("service %q: requests template: %w", service, err)
	}
	e, err := parseTemplate(service+" errors", ts.Errors)
	if err != nil {
		return parsed{}, fmt.Errorf("service %q: errors template: %w", service, err)
	}
	return parsed{requests: r, errors: e}, nil
}
