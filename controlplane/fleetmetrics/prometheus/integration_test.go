package prometheus_test

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net/http"
	"net/http/httptest"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/api"
	v1 "github.com/prometheus/client_golang/api/prometheus/v1"
	promclient "github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	pmodel "github.com/prometheus/common/model"

	"github.com/bgctl/bg/controlplane/fleetmetrics"
	"github.com/bgctl/bg/controlplane/fleetmetrics/prometheus"
	"github.com/bgctl/bg/controlplane/model"
	"github.com/bgctl/bg/e2e/harness"
)

// fakeEnvoy serves one Envoy process's cluster stats at a fixed URL. A
// change made in update is atomic with respect to scrapes, so a scrape
// sees all of it or none; swap replaces the process (a restart: every
// counter starts again, at the same URL).
type fakeEnvoy struct {
	mu    sync.Mutex
	stats *envoyStats
}

// envoyStats are the series the default templates select, named and
// labelled as Envoy's /stats/prometheus does. Request times are in ms.
type envoyStats struct {
	handler http.Handler
	total   *promclient.CounterVec   // envoy_cluster_upstream_rq_total{envoy_cluster_name}
	xx      *promclient.CounterVec   // envoy_cluster_upstream_rq_xx{envoy_cluster_name,envoy_response_code_class}
	time    *promclient.HistogramVec // envoy_cluster_upstream_rq_time{envoy_cluster_name}
}

var latencyBounds = []float64{5, 25, 100, 1000} // ms

// newEnvoyStats is a fresh process that has the clusters: rq_total and
// rq_time exist at 0; rq_xx series are created by the first response of
// their class, as Envoy does.
func newEnvoyStats(clusters ...string) *envoyStats {
	s := &envoyStats{
		total: promclient.NewCounterVec(promclient.CounterOpts{Name: "envoy_cluster_upstream_rq_total"}, []string{"envoy_cluster_name"}),
		xx: promclient.NewCounterVec(promclient.CounterOpts{Name: "envoy_cluster_upstream_rq_xx"},
			[]string{"envoy_cluster_name", "envoy_response_code_class"}),
		time: promclient.NewHistogramVec(promclient.HistogramOpts{Name: "envoy_cluster_upstream_rq_time", Buckets: latencyBounds},
			[]string{"envoy_cluster_name"}),
	}
	reg := promclient.NewRegistry()
	reg.MustRegister(s.total, s.xx, s.time)
	for _, c := range clusters {
		s.total.WithLabelValues(c)
		s.time.WithLabelValues(c)
	}
	s.handler = promhttp.HandlerFor(reg, promhttp.HandlerOpts{})
	return s
}

// serve records n responses of cluster: 5xx of them failed, each took ms.
func (s *envoyStats) serve(cluster string, n, fivexx int, ms float64) {
	s.total.WithLabelValues(cluster).Add(float64(n))
	if fivexx > 0 {
		s.xx.WithLabelValues(cluster, "5").Add(float64(fivexx))
	}
	if n > fivexx {
		s.xx.WithLabelValues(cluster, "2").Add(float64(n - fivexx))
	}
	for range n {
		s.time.WithLabelValues(cluster).Observe(ms)
	}
}

func (e *fakeEnvoy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.stats.handler.ServeHTTP(w, r)
}

func (e *fakeEnvoy) update(f func(s *envoyStats)) {
	e.mu.Lock()
	defer e.mu.Unlock()
	f(e.stats)
}

func (e *fakeEnvoy) swap(s *envoyStats) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.stats = s
}

func sum(m map[string]float64) float64 {
	t := 0.0
	for _, v := range m {
		t += v
	}
	return t
}

// TestExactCountsFromRealPrometheus reads the default Envoy templates (and
// EnvoyLatency) from a real Prometheus scraping a fake Envoy every second
// (harness.StartPrometheus), and counts through fleetmetrics.Tracker as the
// analysis does: counts are exact, where increase() extrapolates and misses
// a series born mid-switch; a restart resets counters; a series that leaves
// the scrape is gone from the next read.
func TestExactCountsFromRealPrometheus(t *testing.T) {
	envoy := &fakeEnvoy{stats: newEnvoyStats("web-blue", "web-green")}
	// Before the switch: blue has served, 3 of its requests failed; green
	// has had a little traffic, no 5xx (so no 5xx series).
	envoy.update(func(s *envoyStats) {
		s.serve("web-blue", 25, 3, 2)
		s.serve("web-green", 40, 0, 2)
	})
	srv := httptest.NewServer(envoy)
	defer srv.Close()

	pr := harness.StartPrometheus(t, []string{strings.TrimPrefix(srv.URL, "http://")})
	pr.WaitTargetsUp(15 * time.Second)
	withLatency := prometheus.Templates{Requests: prometheus.EnvoyRequests, Errors: prometheus.EnvoyErrors, Latency: prometheus.EnvoyLatency}
	src, err := prometheus.New(pr.URL(), map[string]prometheus.Templates{
		"web": withLatency,
		"api": withLatency, // never scraped
		"bad": {Requests: `envoy_cluster_upstream_rq_total{envoy_cluster_name="{{.Cluster}}"`, Errors: prometheus.EnvoyErrors},
		"neg": {Requests: `-envoy_cluster_upstream_rq_total{envoy_cluster_name="web-green"}`, Errors: prometheus.EnvoyErrors},
		"rng": {Requests: `envoy_cluster_upstream_rq_total{envoy_cluster_name="web-green"}[1m]`, Errors: prometheus.EnvoyErrors},
		"nle": {Requests: prometheus.EnvoyRequests, Errors: prometheus.EnvoyErrors, Latency: `envoy_cluster_upstream_rq_total{envoy_cluster_name="web-green"}`},
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := src.Check(context.Background()); err != nil {
		t.Fatal(err)
	}

	// The switch starts: both fleets read at one instant.
	start, b0, g0 := waitRead(t, src, "pre-switch counts", func(b, g fleetmetrics.Reading) bool {
		return sum(b.Requests) == 25 && sum(g.Requests) == 40
	})
	if len(g0.Requests) != 1 || len(g0.Errors) != 0 || sum(b0.Errors) != 3 {
		t.Fatalf("start: green %+v, blue %+v; want one request series each, no green 5xx series, 3 blue 5xx", g0, b0)
	}
	var tb, tg fleetmetrics.Tracker
	if _, ok := tb.Advance(b0); ok {
		t.Fatal("the first read counted something")
	}
	tg.Advance(g0)

	// A service Prometheus does not scrape: no series, which is no data,
	// not an error.
	if r, err := src.Read(context.Background(), fleetmetrics.Query{Service: "api", Color: model.Green, At: start}); err != nil ||
		len(r.Requests) != 0 || len(r.Errors) != 0 || r.Latency == nil || len(r.Latency) != 0 {
		t.Errorf("unscraped service: %+v, %v; want empty maps, no error", r, err)
	}
	// What a real Prometheus answers to templates that select no counters.
	for _, c := range []struct{ svc, want, also string }{
		{"bad", "requests query for bad-green failed: bad_data", "[query: envoy_cluster_upstream_rq_total{"},
		{"neg", `requests query for neg-green returned -40 for {envoy_cluster_name="web-green"`, "counters are finite and non-negative"},
		{"rng", "requests query for rng-green returned a matrix, want an instant vector of counters", "[1m]"},
		{"nle", "latency query for nle-green returned envoy_cluster_upstream_rq_total{", "without a numeric le label"},
	} {
		_, err := src.Read(context.Background(), fleetmetrics.Query{Service: c.svc, Color: model.Green, At: start})
		if !errors.Is(err, fleetmetrics.ErrUnavailable) || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), c.also) {
			t.Errorf("%s: err = %v, want ErrUnavailable containing %q and %q", c.svc, err, c.want, c.also)
		}
	}

	// 100 requests to each fleet; 7 of green's fail, which creates its 5xx
	// series: born after the start read, it counts whole.
	envoy.update(func(s *envoyStats) {
		s.serve("web-blue", 100, 0, 3)
		s.serve("web-green", 60, 0, 3)
		s.serve("web-green", 30, 0, 20)
		s.serve("web-green", 10, 7, 80)
	})
	at1, b1, g1 := waitRead(t, src, "the switch's first traffic", func(b, g fleetmetrics.Reading) bool {
		return sum(b.Requests) == 125 && sum(g.Requests) == 140
	})
	cb, _ := tb.Advance(b1)
	cg, _ := tg.Advance(g1)
	t.Logf("exact counts over %v: blue %+v, green %+v", at1.Sub(start).Round(time.Millisecond), cb, cg)
	if cb.Requests != 100 || cb.Errors != 0 || cb.Series != 1 {
		t.Errorf("blue counts %+v, want exactly 100 requests, 0 errors (its 3 pre-switch 5xx are not counted), 1 series", cb)
	}
	if cg.Requests != 100 || cg.Errors != 7 || cg.Series != 1 {
		t.Errorf("green counts %+v, want exactly 100 requests, 7 errors, 1 series", cg)
	}
	inf := math.Inf(1)
	if want := []fleetmetrics.Bucket{{Le: 5, Count: 60}, {Le: 25, Count: 90}, {Le: 100, Count: 100}, {Le: 1000, Count: 100}, {Le: inf, Count: 100}}; !reflect.DeepEqual(cg.Latency, want) {
		t.Errorf("green latency %+v, want %+v", cg.Latency, want)
	}
	if want := []fleetmetrics.Bucket{{Le: 5, Count: 100}, {Le: 25, Count: 100}, {Le: 100, Count: 100}, {Le: 1000, Count: 100}, {Le: inf, Count: 100}}; !reflect.DeepEqual(cb.Latency, want) {
		t.Errorf("blue latency %+v, want %+v", cb.Latency, want)
	}
	// The raw reading: one bucket series per bound, keyed by its labels.
	les := map[float64]string{}
	for k, b := range g1.Latency {
		les[b.Le] = k
	}
	for _, le := range append(slices.Clone(latencyBounds), inf) {
		if k := les[le]; !strings.Contains(k, `envoy_cluster_upstream_rq_time_bucket{envoy_cluster_name="web-green"`) ||
			!strings.Contains(k, fmt.Sprintf(`le="%v"`, pmodel.SampleValue(le))) {
			t.Errorf("bucket le=%v: series %q", le, k)
		}
	}
	if len(g1.Latency) != len(latencyBounds)+1 {
		t.Errorf("green latency series %v, want one per bound and +Inf", les)
	}
	// What the windowed judge saw over the same stretch: increase()
	// extrapolates rq_total, and never counts the 5xx series' first value.
	// The window reaches one scrape interval past the start, back to the
	// sample the start read saw.
	window := fmt.Sprintf("%ds", int(math.Ceil(at1.Sub(start).Seconds()))+1)
	inc := func(sel string) float64 {
		v := promQuery(t, pr.URL(), "increase("+sel+"["+window+"])", at1)
		if len(v) == 0 {
			return 0
		}
		return float64(v[0].Value)
	}
	incReq := inc(`envoy_cluster_upstream_rq_total{envoy_cluster_name="web-green"}`)
	incErr := inc(`envoy_cluster_upstream_rq_xx{envoy_cluster_name="web-green",envoy_response_code_class="5"}`)
	t.Logf("increase(...[%s]) at the same instant: green %.2f requests, %.2f errors (true: 100, 7)", window, incReq, incErr)
	if incErr >= 7 {
		t.Errorf("increase() of the newborn 5xx series = %v; the test means to show it misses the series' first value", incErr)
	}

	// A fractional deadline: the server-side timeout must still parse.
	ctx, cancel := context.WithTimeout(context.Background(), 2500*time.Millisecond)
	defer cancel()
	if _, err := src.Read(ctx, fleetmetrics.Query{Service: "web", Color: model.Green, At: at1}); err != nil {
		t.Fatalf("Read with a 2.5 s deadline: %v", err)
	}

	// Envoy restarts: every counter starts again, at the same URL. Green's
	// counters are lower than before (30 < 140, 2 < 7): resets, which count
	// their new value. Blue failed nothing since, so it has no 5xx series
	// any more.
	restarted := newEnvoyStats("web-blue", "web-green")
	restarted.serve("web-blue", 20, 0, 3)
	restarted.serve("web-green", 30, 2, 3)
	envoy.swap(restarted)
	at2, b2, g2 := waitRead(t, src, "the restarted Envoy", func(b, g fleetmetrics.Reading) bool {
		return sum(b.Requests) == 20 && sum(g.Requests) == 30
	})
	if len(b2.Errors) != 0 {
		t.Errorf("blue 5xx series after the restart: %v, want none (absent from the scrape, so stale)", b2.Errors)
	}
	cb, _ = tb.Advance(b2)
	cg, _ = tg.Advance(g2)
	t.Logf("after the restart: blue %+v, green %+v", cb, cg)
	if cb.Requests != 20 || cb.Errors != 0 || cb.Series != 1 {
		t.Errorf("blue counts %+v, want exactly 20 requests (the reset's new value), 0 errors", cb)
	}
	if cg.Requests != 30 || cg.Errors != 2 || cg.Series != 1 {
		t.Errorf("green counts %+v, want exactly 30 requests and 2 errors (the resets' new values)", cg)
	}
	if want := []fleetmetrics.Bucket{{Le: 5, Count: 30}, {Le: 25, Count: 30}, {Le: 100, Count: 30}, {Le: 1000, Count: 30}, {Le: inf, Count: 30}}; !reflect.DeepEqual(cg.Latency, want) {
		t.Errorf("green latency after the restart %+v, want %+v", cg.Latency, want)
	}

	// Green's cluster leaves Envoy: its series vanish from the scrape.
	// Prometheus marks them stale at the first scrape without them, so the
	// next read has none: no data (Series 0), not "no errors".
	gone := time.Now()
	envoy.update(func(s *envoyStats) {
		s.total.DeleteLabelValues("web-green")
		s.xx.DeleteLabelValues("web-green", "5")
		s.xx.DeleteLabelValues("web-green", "2")
		s.time.DeleteLabelValues("web-green")
		s.serve("web-blue", 10, 1, 3)
	})
	at3, b3, g3 := waitRead(t, src, "green's series to go stale", func(b, g fleetmetrics.Reading) bool {
		return len(g.Requests) == 0 && sum(b.Requests) == 30
	})
	t.Logf("green's series gone from reads %v after they left the scrape", at3.Sub(gone).Round(time.Millisecond))
	if len(g3.Errors) != 0 || len(g3.Latency) != 0 {
		t.Errorf("green after its series left: %+v, want no series at all", g3)
	}
	cb, _ = tb.Advance(b3)
	cg, ok := tg.Advance(g3)
	if want := (fleetmetrics.Counts{Series: 0}); !ok || !reflect.DeepEqual(cg, want) {
		t.Errorf("green counts with its series gone %+v (ok %v), want %+v: no data", cg, ok, want)
	}
	if cb.Requests != 10 || cb.Errors != 1 || cb.Series != 1 {
		t.Errorf("blue counts %+v, want exactly 10 requests and 1 error (its 5xx series is back at 1, below the 3 remembered: a reset)", cb)
	}
	// The history stays: reading at the earlier instant still sees green.
	if r, err := src.Read(context.Background(), fleetmetrics.Query{Service: "web", Color: model.Green, At: at2}); err != nil || sum(r.Requests) != 30 {
		t.Errorf("green read at the restart's instant: %+v, %v; want its 30 requests", r, err)
	}

	// Green comes back with its counter past its last value (30): compared
	// with it, not counted again from zero.
	envoy.update(func(s *envoyStats) { s.serve("web-green", 45, 0, 3) })
	_, _, g4 := waitRead(t, src, "green's series to come back", func(b, g fleetmetrics.Reading) bool {
		return sum(g.Requests) == 45
	})
	if cg, _ = tg.Advance(g4); cg.Requests != 15 || cg.Series != 1 || cg.Errors != 0 {
		t.Errorf("green counts after coming back %+v, want exactly 15 requests (45 - 30), 0 errors, 1 series", cg)
	}
}

// waitRead reads both fleets of "web" at one instant, now, until done says
// the scrape it waits for is in. It polls: a scrape's samples carry the
// scrape's start time, so a read at "now" can miss a scrape still in
// flight, and the next read at a later now sees it.
func waitRead(t *testing.T, src *prometheus.Source, what string, done func(b, g fleetmetrics.Reading) bool) (time.Time, fleetmetrics.Reading, fleetmetrics.Reading) {
	t.Helper()
	began := time.Now()
	deadline := began.Add(15 * time.Second)
	for {
		at := time.Now()
		b, errB := src.Read(context.Background(), fleetmetrics.Query{Service: "web", Color: model.Blue, At: at})
		g, errG := src.Read(context.Background(), fleetmetrics.Query{Service: "web", Color: model.Green, At: at})
		if err := errors.Join(errB, errG); err == nil && done(b, g) {
			t.Logf("%s: read after %v", what, time.Since(began).Round(time.Millisecond))
			return at, b, g
		} else if time.Now().After(deadline) {
			t.Fatalf("waiting for %s: blue %+v, green %+v, err %v", what, b, g, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// promQuery runs a raw instant query, for comparing with increase().
func promQuery(t *testing.T, url, expr string, at time.Time) pmodel.Vector {
	t.Helper()
	c, err := api.NewClient(api.Config{Address: url})
	if err != nil {
		t.Fatal(err)
	}
	v, _, _, err := v1.NewAPI(c).Query(context.Background(), expr, at)
	if err != nil {
		t.Fatalf("%s: %v", expr, err)
	}
	vec, ok := v.(pmodel.Vector)
	if !ok {
		t.Fatalf("%s: %v, want a vector", expr, v)
	}
	return vec
}

// slowCounters is a target whose every scrape sees requests = errors =
// each latency bucket = n, one more than the scrape before, and answers
// after delay: Prometheus stamps a scrape's samples with the time the
// scrape began but commits them when the answer is parsed, so for delay
// they are in the past yet not visible.
type slowCounters struct {
	n     int
	mu    sync.Mutex
	delay time.Duration
}

func (c *slowCounters) ServeHTTP(w http.ResponseWriter, _ *http.Request) {
	c.mu.Lock()
	c.n++
	n := c.n
	c.mu.Unlock()
	time.Sleep(c.delay)
	w.Header().Set("Content-Type", "text/plain; version=0.0.4")
	fmt.Fprintf(w, "# TYPE t_requests_total counter\nt_requests_total{color=\"blue\"} %d\n", n)
	fmt.Fprintf(w, "# TYPE t_errors_total counter\nt_errors_total{color=\"blue\"} %d\n", n)
	fmt.Fprintf(w, "# TYPE t_latency histogram\nt_latency_bucket{color=\"blue\",le=\"0.1\"} %d\nt_latency_bucket{color=\"blue\",le=\"+Inf\"} %d\nt_latency_sum{color=\"blue\"} 0\nt_latency_count{color=\"blue\"} %d\n", n, n, n)
}

// TestReadIsOneScrapePerTarget: every target's requests, errors, latency
// and scrape times in one Read come from one scrape of it, however the
// reads and scrapes interleave. Reading them in separate queries at one
// instant is not enough: a scrape committed between two of those queries
// shows in the later ones only, and a fleet then has the errors of a
// second more traffic than its requests (an A/A switch was rolled back on
// 1.74 % against 0.98 % that way). Four targets answer 300 ms late, so
// some scrape commits while a read is under way; every read must still
// see requests = errors = buckets per target.
func TestReadIsOneScrapePerTarget(t *testing.T) {
	var targets []string
	for range 4 {
		srv := httptest.NewServer(&slowCounters{delay: 300 * time.Millisecond})
		defer srv.Close()
		targets = append(targets, strings.TrimPrefix(srv.URL, "http://"))
	}
	pr := harness.StartPrometheus(t, targets)
	pr.WaitTargetsUp(15 * time.Second)
	src, err := prometheus.New(pr.URL(), map[string]prometheus.Templates{"web": {
		Requests: `t_requests_total{color="{{.Color}}"}`,
		Errors:   `t_errors_total{color="{{.Color}}"}`,
		Latency:  `t_latency_bucket{color="{{.Color}}"}`,
	}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	instance := func(key string) string {
		i := strings.Index(key, `instance="`)
		if i < 0 {
			t.Fatalf("series %s has no instance label", key)
		}
		return strings.SplitN(key[i+len(`instance="`):], `"`, 2)[0]
	}
	reads, commits := 0, 0
	last := map[string]float64{}
	for end := time.Now().Add(6 * time.Second); time.Now().Before(end); reads++ {
		r, err := src.Read(context.Background(), fleetmetrics.Query{Service: "web", Color: model.Blue, Scraped: true})
		if err != nil {
			t.Fatal(err)
		}
		req := map[string]float64{}
		for k, v := range r.Requests {
			req[instance(k)] = v
			if v != last[instance(k)] {
				commits++
				last[instance(k)] = v
			}
		}
		for k, v := range r.Errors {
			if want := req[instance(k)]; v != want {
				t.Fatalf("read %d: %s has %v errors but %v requests: two scrapes of one target in one read", reads, instance(k), v, want)
			}
		}
		for k, b := range r.Latency {
			if want := req[instance(k)]; b.Count != want {
				t.Fatalf("read %d: %s bucket le=%v counts %v but %v requests: two scrapes of one target in one read", reads, instance(k), b.Le, b.Count, want)
			}
		}
		if len(req) != 4 || len(r.Errors) != 4 || len(r.Latency) != 8 || r.Scraped.IsZero() {
			t.Fatalf("read %d: %d request, %d error, %d bucket series, scraped %v; want 4, 4, 8 and a time", reads, len(req), len(r.Errors), len(r.Latency), r.Scraped)
		}
	}
	t.Logf("%d reads over %d scrape commits, each read one scrape per target", reads, commits)
	if commits < 16 {
		t.Fatalf("only %d scrape commits seen in 6 s of reads; the test needs scrapes landing during reads", commits)
	}
}
