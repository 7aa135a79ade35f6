// Package prometheus reads fleet request and error counts from Prometheus
// with per-service PromQL templates.
package prometheus

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net/http"
	"net/url"
	"strconv"
	"strings"
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

// ReadLabel is the label a Read's one query adds to each series to say
// which template it came from; templates must not select series that
// carry it.
const ReadLabel = "bg_read"

// arm is one template's part of a Read's query.
type arm struct {
	kind string // requests, errors, latency, or one of those + " scraped"
	expr string // the rendered template, wrapped in timestamp() for scraped
}

// Read reads one fleet at q.At (now when zero) with one instant query: the
// requests, errors and latency templates (and, for q.Scraped, timestamp()
// of the first two) joined with `or`, each arm tagged with ReadLabel.
// One query, because Prometheus shows a query each scrape whole or not at
// all (TSDB isolation), while separate queries at one instant can each see
// a different scrape: a scrape's samples carry its start time but become
// visible only when it is committed, so a scrape landing between two
// queries shows in the later one only, and the errors would then count a
// scrape interval more traffic than the requests.
//
// Any failure, or a result that is not an instant vector of finite,
// non-negative values, wraps fleetmetrics.ErrUnavailable. When the joined
// query is refused, each template is run alone to say which one is wrong.
// No series is not an error: the Reading's map is empty.
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
	r, err := s.read(ctx, p, NewTemplateData(q.Service, q.Color), at, q.Scraped)
	if err != nil {
		s.queryErrors.WithLabelValues(q.Service).Inc()
		return fleetmetrics.Reading{}, err
	}
	return r, nil
}

func (s *Source) read(ctx context.Context, p parsed, d TemplateData, at time.Time, scraped bool) (fleetmetrics.Reading, error) {
	arms, err := p.arms(d, scraped)
	if err != nil {
		return fleetmetrics.Reading{}, err
	}
	parts := make([]string, len(arms))
	for i, a := range arms {
		parts[i] = fmt.Sprintf("label_replace((%s), %q, %q, \"\", \"\")", a.expr, ReadLabel, a.kind)
	}
	expr := strings.Join(parts, " or ")
	v, err := s.query(ctx, expr, at)
	if err != nil {
		if refused(err) {
			if why := s.diagnose(ctx, arms, d.Cluster, at); why != nil {
				return fleetmetrics.Reading{}, why
			}
		}
		return fleetmetrics.Reading{}, fmt.Errorf("%w: counter query for %s failed: %w [query: %s]", fleetmetrics.ErrUnavailable, d.Cluster, err, expr)
	}
	vec, ok := v.(model.Vector)
	if !ok {
		return fleetmetrics.Reading{}, fmt.Errorf("%w: counter query for %s returned %s, want an instant vector [query: %s]",
			fleetmetrics.ErrUnavailable, d.Cluster, typeOf(v), expr)
	}
	byKind := make(map[string]model.Vector, len(arms))
	for _, smp := range vec {
		kind := string(smp.Metric[ReadLabel])
		delete(smp.Metric, ReadLabel)
		byKind[kind] = append(byKind[kind], smp)
	}
	var r fleetmetrics.Reading
	for _, a := range arms {
		vec := byKind[a.kind]
		delete(byKind, a.kind)
		if err := checkValues(a.kind, d.Cluster, a.expr, vec); err != nil {
			return fleetmetrics.Reading{}, err
		}
		switch a.kind {
		case "requests":
			r.Requests = values(vec)
		case "errors":
			r.Errors = values(vec)
		case "latency":
			if r.Latency, err = buckets(vec, d.Cluster); err != nil {
				return fleetmetrics.Reading{}, err
			}
		default: // scraped: the oldest sample time
			for _, smp := range vec {
				if t := time.UnixMilli(int64(math.Round(float64(smp.Value) * 1000))); r.Scraped.IsZero() || t.Before(r.Scraped) {
					r.Scraped = t
				}
			}
		}
	}
	for kind, vec := range byKind {
		return fleetmetrics.Reading{}, fmt.Errorf("%w: counter query for %s returned %s labelled %s=%q, which no template asked for; templates must not select series with a %s label [query: %s]",
			fleetmetrics.ErrUnavailable, d.Cluster, vec[0].Metric, ReadLabel, kind, ReadLabel, expr)
	}
	return r, nil
}

// arms renders the templates of one Read. A scraped arm asks timestamp()
// of the request and error series: a counter read at At may be up to a
// scrape interval old, so a switch's starting point waits for values
// scraped after it began. (An aggregated template gives the evaluation
// time.)
func (p parsed) arms(d TemplateData, scraped bool) ([]arm, error) {
	var arms []arm
	for _, t := range []struct {
		kind string
		tmpl *template.Template
	}{{"requests", p.requests}, {"errors", p.errors}, {"latency", p.latency}} {
		if t.tmpl == nil {
			continue
		}
		expr, err := render(t.tmpl, d)
		if err != nil {
			return nil, fmt.Errorf("%w: %s query for %s did not render: %v", fleetmetrics.ErrUnavailable, t.kind, d.Cluster, err)
		}
		arms = append(arms, arm{t.kind, expr})
		if scraped && t.kind != "latency" {
			arms = append(arms, arm{t.kind + " scraped", "timestamp(" + expr + ")"})
		}
	}
	return arms, nil
}

// refused is Prometheus saying the query cannot run (it does not parse, a
// template's result is not an instant vector, evaluation failed), rather
// than Prometheus being unreachable or overloaded.
func refused(err error) bool {
	var e *v1.Error
	return errors.As(err, &e) && (e.Type == v1.ErrBadData || e.Type == v1.ErrExec)
}

// diagnose runs each arm alone, as written, and returns the first one's
// error: which template is wrong and how. Nil if each runs alone.
func (s *Source) diagnose(ctx context.Context, arms []arm, cluster string, at time.Time) error {
	for _, a := range arms {
		v, err := s.query(ctx, a.expr, at)
		if err != nil {
			return fmt.Errorf("%w: %s query for %s failed: %w [query: %s]", fleetmetrics.ErrUnavailable, a.kind, cluster, err, a.expr)
		}
		vec, ok := v.(model.Vector)
		if !ok {
			return fmt.Errorf("%w: %s query for %s returned %s, want an instant vector of counters [query: %s]",
				fleetmetrics.ErrUnavailable, a.kind, cluster, typeOf(v), a.expr)
		}
		if err := checkValues(a.kind, cluster, a.expr, vec); err != nil {
			return err
		}
	}
	return nil
}

func typeOf(v model.Value) string {
	if v == nil {
		return "nothing"
	}
	return "a " + v.Type().String()
}

// values maps each series' labels to its value.
func values(vec model.Vector) map[string]float64 {
	out := make(map[string]float64, len(vec))
	for _, smp := range vec {
		out[smp.Metric.String()] = float64(smp.Value)
	}
	return out
}

// buckets reads latency series: each must carry a numeric `le`.
func buckets(vec model.Vector, cluster string) (map[string]fleetmetrics.Bucket, error) {
	out := make(map[string]fleetmetrics.Bucket, len(vec))
	for _, smp := range vec {
		le, err := strconv.ParseFloat(string(smp.Metric[model.BucketLabel]), 64)
		if err != nil || math.IsNaN(le) {
			return nil, fmt.Errorf("%w: latency query for %s returned %s without a numeric le label; select histogram _bucket series",
				fleetmetrics.ErrUnavailable, cluster, smp.Metric)
		}
		out[smp.Metric.String()] = fleetmetrics.Bucket{Le: le, Count: float64(smp.Value)}
	}
	return out, nil
}

// checkValues checks every value is finite and non-negative, as counters
// (and scrape times) are.
func checkValues(kind, cluster, expr string, vec model.Vector) error {
	for _, smp := range vec {
		if f := float64(smp.Value); math.IsNaN(f) || math.IsInf(f, 0) || f < 0 {
			return fmt.Errorf("%w: %s query for %s returned %v for %s; counters are finite and non-negative [query: %s]",
				fleetmetrics.ErrUnavailable, kind, cluster, f, smp.Metric, expr)
		}
	}
	return nil
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
		return 0, fmt.Sprintf("returned %s, want an instant vector of one series", typeOf(v))
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
