package consul

import "github.com/prometheus/client_golang/prometheus"

type metrics struct {
	errors      *prometheus.CounterVec
	lastSuccess *prometheus.GaugeVec
	watchErrors *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "bg_consul_watch_errors_total", Help: "Failed Consul membership reads, by service.",
		}, []string{"service"}),
		lastSuccess: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "bg_consul_watch_last_success_timestamp_seconds",
			Help: "Unix time at which the service's fleets were last known current: its last successful read, or a later successful health watch that showed no change.",
		}, []string{"service"}),
		watchErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "bg_consul_catalog_watch_errors_total", Help: "Failed catalog-wide Consul blocking queries, by watch (health, catalog).",
		}, []string{"watch"}),
	}
	if reg != nil {
		reg.MustRegister(m.errors, m.lastSuccess, m.watchErrors)
	}
	return m
}
