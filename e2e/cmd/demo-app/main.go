// Command demo-app is the tiny HTTP/1.1 backend of docker-compose.yml: one
// instance per colour. It registers itself in Consul (tag = $COLOR, meta
// version = $VERSION) with an HTTP health check, answers every request with
// its colour and version, and exports Prometheus counters on /metrics.
// $FAIL_RATIO (0..1) makes that share of requests answer 500, to play a bad
// release. On SIGINT/SIGTERM it deregisters and exits.
//
// Environment (all optional except COLOR):
//
//	COLOR           blue | green (the Consul tag)
//	SERVICE         Consul service name (default demo)
//	VERSION         Consul meta "version" (default v1)
//	PORT            listen port (default 8080)
//	CONSUL_ADDRESS  Consul agent HTTP API (default consul:8500)
//	ADVERTISE_ADDR  IP registered in Consul (default: first non-loopback IPv4)
//	SERVICE_ID      Consul service ID (default SERVICE-COLOR-HOSTNAME)
//	FAIL_RATIO      share of requests answered 500 (default 0)
package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"time"

	"github.com/hashicorp/consul/api"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

func main() {
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	if err := run(log); err != nil {
		log.Error("demo-app", "err", err)
		os.Exit(1)
	}
}

type settings struct {
	service, color, version, id, advertise, consul string
	port                                           int
	failRatio                                      float64
}

func env(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}

func load() (settings, error) {
	s := settings{
		service: env("SERVICE", "demo"),
		color:   os.Getenv("COLOR"),
		version: env("VERSION", "v1"),
		consul:  env("CONSUL_ADDRESS", "consul:8500"),
	}
	if s.color != "blue" && s.color != "green" {
		return s, fmt.Errorf("COLOR=%q: must be blue or green", s.color)
	}
	var err error
	if s.port, err = strconv.Atoi(env("PORT", "8080")); err != nil || s.port < 1 || s.port > 65535 {
		return s, fmt.Errorf("PORT=%q: must be a port number", os.Getenv("PORT"))
	}
	if s.failRatio, err = strconv.ParseFloat(env("FAIL_RATIO", "0"), 64); err != nil || s.failRatio < 0 || s.failRatio > 1 {
		return s, fmt.Errorf("FAIL_RATIO=%q: must be a number in 0..1", os.Getenv("FAIL_RATIO"))
	}
	if s.advertise = os.Getenv("ADVERTISE_ADDR"); s.advertise == "" {
		if s.advertise, err = firstIPv4(); err != nil {
			return s, err
		}
	}
	// Envoy's EDS endpoints need an IP address, not a host name.
	if net.ParseIP(s.advertise) == nil {
		return s, fmt.Errorf("ADVERTISE_ADDR=%q: must be an IP address", s.advertise)
	}
	host, _ := os.Hostname()
	s.id = env("SERVICE_ID", s.service+"-"+s.color+"-"+host)
	return s, nil
}

// firstIPv4 is the container's address on the compose network.
func firstIPv4() (string, error) {
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return "", err
	}
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok && !n.IP.IsLoopback() && n.IP.To4() != nil {
			return n.IP.String(), nil
		}
	}
	return "", errors.New("no non-loopback IPv4 address; set ADVERTISE_ADDR")
}

func run(log *slog.Logger) error {
	s, err := load()
	if err != nil {
		return err
	}
	// Same names and labels as the e2e harness backends, so analysis
	// queries and dashboards work on both. Counters with const labels exist
	// at 0 from the first scrape, so increase() sees the first requests.
	labels := prometheus.Labels{"service": s.service, "color": s.color}
	requests := prometheus.NewCounter(prometheus.CounterOpts{
		Name: "bg_demo_requests_total", Help: "Requests received.", ConstLabels: labels,
	})
	failures := prometheus.NewCounter(prometheus.CounterOpts{
		Name: "bg_demo_errors_total", Help: "Requests answered 500 on purpose (FAIL_RATIO).", ConstLabels: labels,
	})
	reg := prometheus.NewRegistry()
	latency := prometheus.NewHistogram(prometheus.HistogramOpts{
		Name: "bg_demo_request_duration_seconds", Help: "Request handling time.", ConstLabels: labels,
		Buckets: prometheus.ExponentialBuckets(0.00005, 2, 14),
	})
	reg.MustRegister(requests, failures, latency)

	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		_, _ = fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("/", func(w http.ResponseWriter, _ *http.Request) {
		defer func(start time.Time) { latency.Observe(time.Since(start).Seconds()) }(time.Now())
		requests.Inc()
		w.Header().Set("X-Bg-Color", s.color)
		w.Header().Set("X-Bg-Version", s.version)
		if s.failRatio > 0 && rand.Float64() < s.failRatio {
			failures.Inc()
			http.Error(w, fmt.Sprintf("%s %s %s: failing on purpose", s.service, s.color, s.version), http.StatusInternalServerError)
			return
		}
		_, _ = fmt.Fprintf(w, "%s %s %s\n", s.service, s.color, s.version)
	})
	lis, err := net.Listen("tcp", ":"+strconv.Itoa(s.port))
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(lis) }()

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	client, err := api.NewClient(&api.Config{Address: s.consul})
	if err != nil {
		return err
	}
	if err := register(ctx, client, s, log); err != nil {
		return err
	}
	log.Info("serving", "service", s.service, "id", s.id, "color", s.color, "version", s.version,
		"addr", net.JoinHostPort(s.advertise, strconv.Itoa(s.port)))

	select {
	case <-ctx.Done():
	case err := <-serveErr:
		return err
	}
	if err := client.Agent().ServiceDeregister(s.id); err != nil {
		log.Warn("deregister", "err", err)
	}
	shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return srv.Shutdown(shutdown)
}

// register retries until Consul answers: in compose it may start after us.
func register(ctx context.Context, c *api.Client, s settings, log *slog.Logger) error {
	reg := &api.AgentServiceRegistration{
		ID:      s.id,
		Name:    s.service,
		Tags:    []string{s.color},
		Meta:    map[string]string{"version": s.version},
		Address: s.advertise,
		Port:    s.port,
		Check: &api.AgentServiceCheck{
			CheckID:                        "http:" + s.id,
			HTTP:                           fmt.Sprintf("http://%s/healthz", net.JoinHostPort(s.advertise, strconv.Itoa(s.port))),
			Interval:                       "2s",
			Timeout:                        "1s",
			DeregisterCriticalServiceAfter: "1m",
		},
	}
	for {
		err := c.Agent().ServiceRegister(reg)
		if err == nil {
			return nil
		}
		log.Warn("consul register failed, retrying", "err", err)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Second):
		}
	}
}
