package consul

import "github.com/prometheus/client_golang/prometheus"

type metrics struct {
	errors      *prometheus.CounterVec
	lastSuccess *prometheus.GaugeVec
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "bg_consul_watch_errors_total", Help: "Failed Consul membership reads, by service.",
		}, []string{"service"}),
		lastSuccess: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "bg_consul_watch_last_success_timestamp_seconds", Help: "Unix time of the last successful Consul membership read, by service.",
		}, []string{"service"}),
	}
	if reg != nil {
		reg.MustRegister(m.errors, m.lastSuccess)
	}
	return m
}
