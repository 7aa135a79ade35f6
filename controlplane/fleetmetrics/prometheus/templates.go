package prometheus

import (
	"errors"
	"fmt"
	"strings"
	"text/template"

	bgmodel "github.com/bgctl/bg/controlplane/model"
)

// Templates are one service's PromQL text/templates, rendered with
// TemplateData. Each selects counters per series, with no increase(),
// rate() or range: bg reads them at two instants and counts the difference
// per series itself, so counts are exact and start when the switch began.
// Keep series apart (do not sum() across processes): a reset of one
// process is only visible in its own series.
type Templates struct {
	Requests string
	Errors   string
	// Latency selects histogram bucket counters (`_bucket` series with an
	// `le` label); empty: latency is not judged.
	Latency string
}

// Envoy cluster stats, as Envoy's /stats/prometheus names them.
const (
	// EnvoyRequests: rq_total exists from the moment Envoy has the
	// cluster, so no series means Prometheus does not scrape that Envoy
	// (or the cluster name is wrong): no data.
	EnvoyRequests = `envoy_cluster_upstream_rq_total{envoy_cluster_name="{{.Cluster}}"}`
	// EnvoyErrors: Envoy creates the 5xx series at the cluster's first 5xx,
	// so a healthy fleet has none; a series born mid-switch counts whole.
	EnvoyErrors = `envoy_cluster_upstream_rq_xx{envoy_cluster_name="{{.Cluster}}",envoy_response_code_class="5"}`
	// EnvoyLatency is Envoy's upstream request time histogram, in ms.
	EnvoyLatency = `envoy_cluster_upstream_rq_time_bucket{envoy_cluster_name="{{.Cluster}}"}`
)

// EnvoyTemplates are the defaults for a service behind Envoy.
var EnvoyTemplates = Templates{Requests: EnvoyRequests, Errors: EnvoyErrors}

// TemplateData is what a template sees.
type TemplateData struct {
	Service string // "web"
	Color   string // "green"
	Cluster string // bg's xDS cluster, "web-green"
}

// NewTemplateData fills TemplateData for one fleet.
func NewTemplateData(service string, c bgmodel.Color) TemplateData {
	return TemplateData{Service: service, Color: string(c), Cluster: bgmodel.ClusterName(service, c)}
}

// sampleData renders templates at validation time.
var sampleData = NewTemplateData("web", bgmodel.Green)

// ValidateTemplate parses tmpl and renders it with sample data, so config
// validation catches syntax errors and unknown fields before a switch. A
// template written for bg before exact counts (a {{.Window}}, increase()
// or rate()) is refused with how to migrate it.
func ValidateTemplate(tmpl string) error {
	if err := retired(tmpl); err != nil {
		return err
	}
	_, err := parseTemplate("query", tmpl)
	return err
}

// ErrRetiredTemplate is wrapped by the error for a windowed template.
var ErrRetiredTemplate = errors.New("windowed templates are retired")

func retired(tmpl string) error {
	compact := strings.Join(strings.Fields(tmpl), "")
	for _, f := range []string{".Window", "increase(", "rate(", "irate(", "delta(", "_over_time("} {
		if strings.Contains(compact, f) {
			return fmt.Errorf("%w: the template uses %s, but bg now reads counters at two instants and counts "+
				"the difference since the switch began (analysis.window is gone); select the counter itself, "+
				"per series: e.g. `sum(increase(x{cluster=\"{{.Cluster}}\"}[{{.Window}}]))` becomes `x{cluster=\"{{.Cluster}}\"}`",
				ErrRetiredTemplate, strings.TrimSuffix(f, "("))
		}
	}
	return nil
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

// parsed is one service's ready templates; latency is nil when not judged.
type parsed struct {
	requests, errors, latency *template.Template
}

func parseTemplates(service string, ts Templates) (parsed, error) {
	for kind, t := range map[string]string{"requests": ts.Requests, "errors": ts.Errors, "latency": ts.Latency} {
		if err := retired(t); err != nil {
			return parsed{}, fmt.Errorf("service %q: %s template: %w", service, kind, err)
		}
	}
	r, err := parseTemplate(service+" requests", ts.Requests)
	if err != nil {
		return parsed{}, fmt.Errorf("service %q: requests template: %w", service, err)
	}
	e, err := parseTemplate(service+" errors", ts.Errors)
	if err != nil {
		return parsed{}, fmt.Errorf("service %q: errors template: %w", service, err)
	}
	out := parsed{requests: r, errors: e}
	if strings.TrimSpace(ts.Latency) != "" {
		if out.latency, err = parseTemplate(service+" latency", ts.Latency); err != nil {
			return parsed{}, fmt.Errorf("service %q: latency template: %w", service, err)
		}
	}
	return out, nil
}
