package harness

import (
	"context"
	"maps"
	"math"
	"math/rand/v2"
	"net"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/consul/api"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	testpb "google.golang.org/grpc/interop/grpc_testing"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

// BackendOptions describe one instance of a colour fleet.
type BackendOptions struct {
	Service string // Consul service name, e.g. "web"
	Color   string // "blue" or "green"; Consul tag and the answer's Hostname
	ID      string // Consul service ID and the answer's ServerId
	Version string // Consul Meta["version"]

	// Slot, when set, is published as Consul Meta["slot"]: the ring-hash key
	// of a stateful host, kept by its replacement in a rolling switch.
	Slot string
	// SessionHeader is the request metadata key whose value names a session
	// for Sessions(); default DefaultSessionHeader.
	SessionHeader string
	// Meta is extra Consul service meta, e.g. bg-strategy.
	Meta map[string]string
}

// PromQL templates (fleetmetrics/prometheus syntax) for the backends' own
// counters: the counters themselves, per series (one per backend instance),
// which bg reads at two instants and differences. Both counters and the
// histogram exist at 0 from a backend's first scrape, so no series really
// means "not scraped".
const (
	AppRequestsTemplate = `bg_demo_requests_total{service="{{.Service}}",color="{{.Color}}"}`
	AppErrorsTemplate   = `bg_demo_errors_total{service="{{.Service}}",color="{{.Color}}"}`
	// AppLatencyTemplate selects the UnaryCall handling-time histogram's
	// buckets, in seconds.
	AppLatencyTemplate = `bg_demo_request_duration_seconds_bucket{service="{{.Service}}",color="{{.Color}}"}`
)

// Backend is a gRPC TestService instance on 127.0.0.1. UnaryCall answers
// with ServerId=ID and Hostname=Color so a caller sees which fleet served it.
// It also serves Prometheus /metrics on its own port (MetricsAddr).
type Backend struct {
	opts   BackendOptions
	lis    net.Listener
	srv    *grpc.Server
	health *health.Server

	metricsLis net.Listener
	metricsSrv *http.Server
	requests   prometheus.Counter  // bg_demo_requests_total
	errors     prometheus.Counter  // bg_demo_errors_total
	latency    prometheus.Observer // bg_demo_request_duration_seconds

	failBits atomic.Uint64 // math.Float64bits of the fail ratio
	delay    atomic.Int64  // time.Duration added to every UnaryCall
	noScrape atomic.Bool   // /metrics answers 503 (SetMetricsServing)
	calls    atomic.Int64
	failed   atomic.Int64
	stopOnce sync.Once

	// sessions counts calls per session header value, so a test can see on
	// the server side which host each session reached.
	sessMu   sync.Mutex
	sessions map[string]int64
}

// StartBackend serves TestService and grpc.health.v1 (SERVING) until Stop
// or the end of the test.
func StartBackend(t TB, o BackendOptions) *Backend {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("harness: backend listen: %v", err)
	}
	if o.SessionHeader == "" {
		o.SessionHeader = DefaultSessionHeader
	}
	b := &Backend{opts: o, lis: lis, srv: grpc.NewServer(), health: health.NewServer(), sessions: map[string]int64{}}
	if err := b.serveMetrics(); err != nil {
		lis.Close()
		t.Fatalf("harness: backend metrics: %v", err)
	}
	testpb.RegisterTestServiceServer(b.srv, &testService{b: b})
	healthpb.RegisterHealthServer(b.srv, b.health)
	b.health.SetServingStatus("", healthpb.HealthCheckResponse_SERVING)
	b.health.SetServingStatus(o.Service, healthpb.HealthCheckResponse_SERVING)
	go func() { _ = b.srv.Serve(lis) }()
	t.Cleanup(b.Stop)
	return b
}

// serveMetrics exposes the counters from a private registry, so several
// backends in one test process don't collide and no Go runtime noise shows.
func (b *Backend) serveMetrics() error {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	labels := prometheus.Labels{"service": b.opts.Service, "color": b.opts.Color}
	// Plain counters with const labels exist at 0 from the first scrape;
	// increase() misses a series' first value, so a lazily created series
	// would hide the first errors.
	b.requests = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "bg_demo_requests_total", Help: "UnaryCalls received.", ConstLabels: labels,
	})
	b.errors = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "bg_demo_errors_total", Help: "UnaryCalls failed on purpose (SetFailRatio).", ConstLabels: labels,
	})
	reg := prometheus.NewRegistry()
	latency := prometheus.NewHistogram(prometheus.HistogramOpts{
		Name: "bg_demo_request_duration_seconds", Help: "UnaryCall handling time.", ConstLabels: labels,
		Buckets: prometheus.ExponentialBuckets(0.00005, 2, 14),
	})
	b.latency = latency
	reg.MustRegister(b.requests, b.errors, latency)
	b.metricsLis = lis
	metrics := promhttp.HandlerFor(reg, promhttp.HandlerOpts{})
	b.metricsSrv = &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if b.noScrape.Load() {
				http.Error(w, "harness: metrics switched off", http.StatusServiceUnavailable)
				return
			}
			metrics.ServeHTTP(w, r)
		}),
		ReadHeaderTimeout: 5 * time.Second,
	}
	go func() { _ = b.metricsSrv.Serve(lis) }()
	return nil
}

// MetricsAddr is host:port serving /metrics (Prometheus text format).
func (b *Backend) MetricsAddr() string { return b.metricsLis.Addr().String() }

// Addr is host:port of the gRPC server.
func (b *Backend) Addr() string { return b.lis.Addr().String() }

// Port of the gRPC server.
func (b *Backend) Port() int { return b.lis.Addr().(*net.TCPAddr).Port }

// Options the backend was started with.
func (b *Backend) Options() BackendOptions { return b.opts }

// SetFailRatio makes that fraction (0..1) of UnaryCalls fail with
// codes.Unavailable, to play a bad release.
func (b *Backend) SetFailRatio(r float64) { b.failBits.Store(math.Float64bits(r)) }

// SetDelay makes every later UnaryCall take d longer (0: none), to play a
// slow release. The delay is inside the handler, so the latency histogram
// (bg_demo_request_duration_seconds) sees it as a real server would.
func (b *Backend) SetDelay(d time.Duration) { b.delay.Store(int64(d)) }

// SetMetricsServing(false) makes /metrics answer 503, so Prometheus's
// scrapes fail and every series of this backend goes stale at once (its
// counters vanish from instant queries) while the backend keeps serving;
// true brings them back.
func (b *Backend) SetMetricsServing(ok bool) { b.noScrape.Store(!ok) }

// SetServing flips the grpc health status, which Consul's gRPC check sees
// within its 1 s interval.
func (b *Backend) SetServing(ok bool) {
	st := healthpb.HealthCheckResponse_NOT_SERVING
	if ok {
		st = healthpb.HealthCheckResponse_SERVING
	}
	b.health.SetServingStatus("", st)
	b.health.SetServingStatus(b.opts.Service, st)
}

// Calls is how many UnaryCalls arrived; Failed how many of them were failed
// on purpose.
func (b *Backend) Calls() int64  { return b.calls.Load() }
func (b *Backend) Failed() int64 { return b.failed.Load() }

// Sessions returns a copy of the calls received per session (value of the
// SessionHeader metadata); calls without the header are not counted.
func (b *Backend) Sessions() map[string]int64 {
	b.sessMu.Lock()
	defer b.sessMu.Unlock()
	return maps.Clone(b.sessions)
}

// Stop closes the server: in-flight calls get up to 2 s to finish.
func (b *Backend) Stop() {
	b.stopOnce.Do(func() {
		b.health.Shutdown()
		done := make(chan struct{})
		go func() { b.srv.GracefulStop(); close(done) }()
		select {
		case <-done:
		case <-time.After(2 * time.Second):
			b.srv.Stop()
		}
		_ = b.metricsSrv.Close()
	})
}

// Register adds the instance to the local Consul agent: tag = colour,
// Meta version, and a gRPC health check every second that starts passing
// so the instance is routable at once.
func (b *Backend) Register(c *api.Client) error { return b.RegisterVersion(c, b.opts.Version) }

// RegisterVersion registers the instance (again) with Meta version v: a
// redeploy of the same host with a new build.
func (b *Backend) RegisterVersion(c *api.Client, v string) error {
	meta := map[string]string{"version": v}
	if b.opts.Slot != "" {
		meta["slot"] = b.opts.Slot
	}
	for k, v := range b.opts.Meta {
		meta[k] = v
	}
	return c.Agent().ServiceRegister(&api.AgentServiceRegistration{
		ID:      b.opts.ID,
		Name:    b.opts.Service,
		Tags:    []string{b.opts.Color},
		Meta:    meta,
		Address: "127.0.0.1",
		Port:    b.Port(),
		Check: &api.AgentServiceCheck{
			CheckID:  "grpc:" + b.opts.ID,
			Name:     "grpc health " + b.opts.ID + " " + strconv.Itoa(b.Port()),
			GRPC:     b.Addr(),
			Interval: "1s",
			// A loaded 2-core CI box can miss one probe; only a real outage
			// (3 failures in a row) should flip an instance to critical.
			Timeout:                "5s",
			FailuresBeforeCritical: 3,
			Status:                 api.HealthPassing,
		},
	})
}

// Deregister removes the instance (and its check) from Consul.
func (b *Backend) Deregister(c *api.Client) error {
	return c.Agent().ServiceDeregister(b.opts.ID)
}

type testService struct {
	testpb.UnimplementedTestServiceServer
	b *Backend
}

func (s *testService) UnaryCall(ctx context.Context, _ *testpb.SimpleRequest) (*testpb.SimpleResponse, error) {
	b := s.b
	b.calls.Add(1)
	if v := metadata.ValueFromIncomingContext(ctx, b.opts.SessionHeader); len(v) > 0 {
		b.sessMu.Lock()
		b.sessions[v[0]]++
		b.sessMu.Unlock()
	}
	b.requests.Inc()
	defer func(start time.Time) { b.latency.Observe(time.Since(start).Seconds()) }(time.Now())
	if d := time.Duration(b.delay.Load()); d > 0 {
		t := time.NewTimer(d)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return nil, status.FromContextError(ctx.Err()).Err()
		}
	}
	if r := math.Float64frombits(b.failBits.Load()); r > 0 && rand.Float64() < r {
		b.failed.Add(1)
		b.errors.Inc()
		return nil, status.Errorf(codes.Unavailable, "harness: injected failure on %s", b.opts.ID)
	}
	return &testpb.SimpleResponse{ServerId: b.opts.ID, Hostname: b.opts.Color}, nil
}

func (s *testService) EmptyCall(context.Context, *testpb.Empty) (*testpb.Empty, error) {
	return &testpb.Empty{}, nil
}
