// Package prometheus reads fleet request and error counts from Prometheus
// with per-service PromQL templates.
package prometheus

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"text/template"
	"time"

	"github.com/prometheus/client_golang/api"
	v1 "github.com/prometheus/client_golang/api/prometheus/v1"
	promclient "github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/model"

	"github.com/bgctl/bg/controlplane/fleetmetrics"
)

// DefaultTimeout bounds one query when the caller's context has no deadline,
// so a wedged Prometheus cannot stall an analysis.
const DefaultTimeout = 10 * time.Second

// Source implements fleetmetrics.Source with instant queries.
type Source struct {
	api      v1.API
	mu       sync.RWMutex // guards services (SetTemplates)
	services map[string]parsed
	log      *slog.Logger
	// queryErrors counts failed queries; Register exports it.
	queryErrors *promclient.CounterVec
}

var _ fleetmetrics.Source = (*Source)(nil)

// New parses every service's templates; address is Prometheus's base URL,
// e.g. "http://127.0.0.1:9090". log receives query warnings; nil discards.
// rt, if not nil, carries every query (TLS and authentication, see
// config.PrometheusHTTP); nil uses client_golang's default.
func New(address string, templates map[string]Templates, log *slog.Logger, rt ...http.RoundTripper) (*Source, error) {
	u, err := url.Parse(address)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("prometheus address %q: want a URL such as http://127.0.0.1:9090", address)
	}
	ac := api.Config{Address: address}
	if len(rt) > 0 && rt[0] != nil {
		ac.RoundTripper = rt[0]
	}
	c, err := api.NewClient(ac)
	if err != nil {
		return nil, fmt.Errorf("prometheus address %q: %w", address, err)
	}
	s := &Source{api: v1.NewAPI(c), services: make(map[string]parsed, len(templates)), log: log,
		queryErrors: promclient.NewCounterVec(promclient.CounterOpts{
			Name: "bg_prometheus_query_errors_total",
			Help: "Analysis queries to Prometheus that failed or returned no usable value, by service.",
		}, []string{"service"}),
	}
	if s.log == nil {
		s.log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	for svc, ts := range templates {
		p, err := parseTemplates(svc, ts)
		if err != nil {
			return nil, err
		}
		s.services[svc] = p
		s.queryErrors.WithLabelValues(svc) // exported at zero before the first error
	}
	return s, nil
}

// SetTemplates replaces every service's templates (a config reload): all
// of them parse, or nothing changes.
func (s *Source) SetTemplates(templates map[string]Templates) error {
	next := make(map[string]parsed, len(templates))
	for svc, ts := range templates {
		p, err := parseTemplates(svc, ts)
		if err != nil {
			return err
		}
		next[svc] = p
	}
	s.mu.Lock()
	s.services = next
	s.mu.Unlock()
	for svc := range next {
		s.queryErrors.WithLabelValues(svc)
	}
	return nil
}

// Register exports the source's series (bg_prometheus_query_errors_total)
// on reg; a nil reg does nothing.
func (s *Source) Register(reg promclient.Registerer) error {
	if reg == nil {
		return nil
	}
	return reg.Register(s.queryErrors)
}

// Read runs the service's counter queries for one fleet at q.At (now when
// zero). Any failure, or a result that is not an instant vector of finite,
// non-negative values, wraps fleetmetrics.ErrUnavailable. No series is not
// an error: the Reading's map is empty.
func (s *Source) Read(ctx context.Context, q fleetmetrics.Query) (fleetmetrics.Reading, error) {
	s.mu.RLock()
	p, ok := s.services[q.Service]
	s.mu.RUnlock()
	if !ok {
		return fleetmetrics.Reading{}, fmt.Errorf("%w: no query templates for service %q", fleetmetrics.ErrUnavailable, q.Service)
	}
	at := q.At
	if at.IsZero() {
		at = time.Now()
	}
	d := NewTemplateData(q.Service, q.Color)
	var r fleetmetrics.Reading
	var err error
	if r.Requests, err = s.series(ctx, "requests", p.requests, d, at); err == nil {
		r.Errors, err = s.series(ctx, "errors", p.errors, d, at)
	}
	if err == nil && p.latency != nil {
		r.Latency, err = s.buckets(ctx, p.latency, d, at)
	}
	if err == nil && q.Scraped {
		r.Scraped, err = s.oldest(ctx, d, at, p.requests, p.errors)
	}
	if err != nil {
		s.queryErrors.WithLabelValues(q.Service).Inc()
		return fleetmetrics.Reading{}, err
	}
	return r, nil
}

// oldest is the oldest scrape time of the series the templates select, by
// PromQL's timestamp(): a counter read at At may be up to a scrape
// interval old, so a switch's starting point waits for values scraped
// after it began. (An aggregated template gives the evaluation time.)
func (s *Source) oldest(ctx context.Context, d TemplateData, at time.Time, ts ...*template.Template) (time.Time, error) {
	var oldest time.Time
	for _, t := range ts {
		expr, err := render(t, d)
		if err != nil {
			return time.Time{}, fmt.Errorf("%w: timestamp query for %s did not render: %v", fleetmetrics.ErrUnavailable, d.Cluster, err)
		}
		vec, err := s.run(ctx, "timestamp", "timestamp("+expr+")", d.Cluster, at)
		if err != nil {
			return time.Time{}, err
		}
		for _, smp := range vec {
			if t := time.UnixMilli(int64(math.Round(float64(smp.Value) * 1000))); oldest.IsZero() || t.Before(oldest) {
				oldest = t
			}
		}
	}
	return oldest, nil
}

// series runs one counter query: series labels → value.
func (s *Source) series(ctx context.Context, kind string, t *template.Template, d TemplateData, at time.Time) (map[string]float64, error) {
	vec, err := s.vector(ctx, kind, t, d, at)
	if err != nil {
		return nil, err
	}
	out := make(map[string]float64, len(vec))
	for _, smp := range vec {
		out[smp.Metric.String()] = float64(smp.Value)
	}
	return out, nil
}

// buckets runs the latency query: each series must carry a numeric `le`.
func (s *Source) buckets(ctx context.Context, t *template.Template, d TemplateData, at time.Time) (map[string]fleetmetrics.Bucket, error) {
	vec, err := s.vector(ctx, "latency", t, d, at)
	if err != nil {
		return nil, err
	}
	out := make(map[string]fleetmetrics.Bucket, len(vec))
	for _, smp := range vec {
		le, err := strconv.ParseFloat(string(smp.Metric[model.BucketLabel]), 64)
		if err != nil || math.IsNaN(le) {
			return nil, fmt.Errorf("%w: latency query for %s returned %s without a numeric le label; select histogram _bucket series",
				fleetmetrics.ErrUnavailable, d.Cluster, smp.Metric)
		}
		out[smp.Metric.String()] = fleetmetrics.Bucket{Le: le, Count: float64(smp.Value)}
	}
	return out, nil
}

// vector renders and runs one query and checks every value is a counter's.
func (s *Source) vector(ctx context.Context, kind string, t *template.Template, d TemplateData, at time.Time) (model.Vector, error) {
	expr, err := render(t, d)
	if err != nil {
		return nil, fmt.Errorf("%w: %s query for %s did not render: %v", fleetmetrics.ErrUnavailable, kind, d.Cluster, err)
	}
	return s.run(ctx, kind, expr, d.Cluster, at)
}

// run runs one query and checks every value is finite and non-negative.
func (s *Source) run(ctx context.Context, kind, expr, cluster string, at time.Time) (model.Vector, error) {
	fail := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s query for %s %s", fleetmetrics.ErrUnavailable, kind, cluster, fmt.Sprintf(format, args...))
	}
	v, err := s.query(ctx, expr, at)
	if err != nil {
		return nil, fmt.Errorf("%w: %s query for %s failed: %w [query: %s]", fleetmetrics.ErrUnavailable, kind, cluster, err, expr)
	}
	vec, ok := v.(model.Vector)
	if !ok {
		typ := "nothing"
		if v != nil {
			typ = "a " + v.Type().String()
		}
		return nil, fail("returned %s, want an instant vector of counters [query: %s]", typ, expr)
	}
	for _, smp := range vec {
		if f := float64(smp.Value); math.IsNaN(f) || math.IsInf(f, 0) || f < 0 {
			return nil, fail("returned %v for %s; counters are finite and non-negative [query: %s]", f, smp.Metric, expr)
		}
	}
	return vec, nil
}

// Check runs a trivial query, so a dry run proves Prometheus answers.
func (s *Source) Check(ctx context.Context) error {
	v, err := s.query(ctx, "vector(1)", time.Now())
	if err != nil {
		return fmt.Errorf("%w: prometheus check: %w", fleetmetrics.ErrUnavailable, err)
	}
	if f, why := one(v); why != "" || f != 1 {
		return fmt.Errorf("%w: prometheus check: vector(1) %s (value %v)", fleetmetrics.ErrUnavailable, why, f)
	}
	return nil
}

// query also tells Prometheus the deadline, so it stops evaluating a query
// nobody waits for any more.
func (s *Source) query(ctx context.Context, expr string, at time.Time) (model.Value, error) {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, DefaultTimeout)
		defer cancel()
	}
	dl, _ := ctx.Deadline()
	v, warns, _, err := s.api.Query(ctx, expr, at, v1.WithTimeout(serverTimeout(time.Until(dl))))
	for _, w := range warns {
		s.log.Warn("prometheus query warning", "query", expr, "warning", w)
	}
	return v, err
}

// serverTimeout is whole seconds because client_golang sends
// Duration.String() and Prometheus 2.x rejects fractions like "9.87s".
// Rounded down, so Prometheus gives up first and says "timeout".
func serverTimeout(d time.Duration) time.Duration {
	return max(d.Truncate(time.Second), time.Second)
}

// one extracts the single value of an instant query, or says why it can't.
func one(v model.Value) (float64, string) {
	vec, ok := v.(model.Vector)
	if !ok {
		typ := "nothing"
		if v != nil {
			typ = "a " + v.Type().String()
		}
		return 0, fmt.Sprintf("returned %s, want an instant vector of one series", typ)
	}
	switch len(vec) {
	case 0:
		return 0, "returned no series (no data in the window)"
	case 1:
	default:
		return 0, fmt.Sprintf("returned %d series; the template must aggregate them into one, e.g. with sum()", len(vec))
	}
	f := float64(vec[0].Value)
	switch {
	case math.IsNaN(f):
		return 0, "returned NaN"
	case math.IsInf(f, 0):
		return 0, fmt.Sprintf("returned %v", f)
	case f < 0:
		return 0, fmt.Sprintf("returned negative %v", f)
	}
	return f, ""
}
