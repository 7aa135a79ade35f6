package prometheus_test

import (
	"context"
	"errors"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/api"
	v1 "github.com/prometheus/client_golang/api/prometheus/v1"
	promclient "github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	pmodel "github.com/prometheus/common/model"

	"github.com/bgctl/bg/controlplane/fleetmetrics"
	"github.com/bgctl/bg/controlplane/fleetmetrics/prometheus"
	"github.com/bgctl/bg/controlplane/judge"
	"github.com/bgctl/bg/controlplane/model"
	"github.com/bgctl/bg/e2e/harness"
)

// TestEnvoyTemplatesAgainstRealPrometheus runs the default templates on a
// real Prometheus scraping a fake Envoy: the 5xx series is absent at first,
// as with Envoy.
func TestEnvoyTemplatesAgainstRealPrometheus(t *testing.T) {
	reg := promclient.NewRegistry()
	total := promclient.NewCounterVec(promclient.CounterOpts{Name: "envoy_cluster_upstream_rq_total"}, []string{"envoy_cluster_name"})
	xx := promclient.NewCounterVec(promclient.CounterOpts{Name: "envoy_cluster_upstream_rq_xx"}, []string{"envoy_cluster_name", "envoy_response_code_class"})
	reg.MustRegister(total, xx)
	total.WithLabelValues("web-blue")
	total.WithLabelValues("web-green")
	envoy := httptest.NewServer(promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	defer envoy.Close()

	pr := harness.StartPrometheus(t, []string{strings.TrimPrefix(envoy.URL, "http://")})
	pr.WaitTargetsUp(15 * time.Second)
	src, err := prometheus.New(pr.URL(), map[string]prometheus.Templates{
		"web": prometheus.EnvoyTemplates,
		"api": prometheus.EnvoyTemplates, // never scraped
		"raw": {Requests: `increase(envoy_cluster_upstream_rq_total[{{.Window}}])`, Errors: prometheus.EnvoyErrors},
		"bad": {Requests: `sum(increase(envoy_cluster_upstream_rq_total[{{.Window}}])`, Errors: prometheus.EnvoyErrors},
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := src.Check(context.Background()); err != nil {
		t.Fatal(err)
	}

	total.WithLabelValues("web-green").Add(100)
	xx.WithLabelValues("web-green", "2").Add(100)
	green := fleetmetrics.Query{Service: "web", Color: model.Green, Window: 30 * time.Second}
	s := waitSample(t, src, green, func(s judge.Sample) bool { return s.Requests >= 100 })
	if s.Errors != 0 {
		t.Fatalf("errors without a 5xx series = %v, want 0 from `or vector(0)`", s.Errors)
	}

	for _, c := range []struct {
		svc, want string
	}{
		{"api", "requests query for api-green returned no series"},
		{"raw", "requests query for raw-green returned 2 series"},
		{"bad", "requests query for bad-green failed: bad_data"},
	} {
		_, err := src.Sample(context.Background(), fleetmetrics.Query{Service: c.svc, Color: model.Green, Window: 30 * time.Second})
		if !errors.Is(err, fleetmetrics.ErrUnavailable) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: err = %v, want %q", c.svc, err, c.want)
		}
	}

	// The 5xx series appears with its first errors already counted, and
	// increase() never sees those: only what follows its first scrape.
	xx.WithLabelValues("web-green", "5").Add(5)
	total.WithLabelValues("web-green").Add(5)
	waitSeries(t, pr.URL(), `envoy_cluster_upstream_rq_xx{envoy_response_code_class="5"}`)
	if s, err := src.Sample(context.Background(), green); err != nil || s.Errors != 0 {
		t.Fatalf("after the first 5 errors: %+v, %v; want 0 errors", s, err)
	}
	xx.WithLabelValues("web-green", "5").Add(10)
	total.WithLabelValues("web-green").Add(10)
	// A fractional deadline: the server-side timeout must still parse.
	ctx, cancel := context.WithTimeout(context.Background(), 2500*time.Millisecond)
	defer cancel()
	if _, err := src.Sample(ctx, green); err != nil {
		t.Fatalf("Sample with a 2.5 s deadline: %v", err)
	}
	s = waitSample(t, src, green, func(s judge.Sample) bool { return s.Errors >= 10 })
	// Extrapolating the young series inflates it more than rq_total.
	t.Logf("after 15 5xx (5 before the series' first scrape): %+v", s)
}

// waitSeries waits until Prometheus has scraped a series matching sel.
func waitSeries(t *testing.T, url, sel string) {
	t.Helper()
	c, err := api.NewClient(api.Config{Address: url})
	if err != nil {
		t.Fatal(err)
	}
	papi := v1.NewAPI(c)
	deadline := time.Now().Add(10 * time.Second)
	for {
		v, _, _, err := papi.Query(context.Background(), sel, time.Now())
		if vec, ok := v.(pmodel.Vector); err == nil && ok && len(vec) > 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("no series %s: %v, %v", sel, v, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func waitSample(t *testing.T, src *prometheus.Source, q fleetmetrics.Query, done func(judge.Sample) bool) judge.Sample {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		s, err := src.Sample(context.Background(), q)
		if err == nil && done(s) {
			return s
		}
		if time.Now().After(deadline) {
			t.Fatalf("%+v: last sample %+v, err %v", q, s, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}
