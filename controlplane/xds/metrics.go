package xds

import "github.com/prometheus/client_golang/prometheus"

// metrics are the xDS server's own Prometheus series.
type metrics struct {
	proxies  prometheus.Gauge
	pushes   *prometheus.CounterVec
	acks     *prometheus.CounterVec
	nacks    *prometheus.CounterVec
	ackDelay *prometheus.HistogramVec
	// tlsFailures counts refused TLS connections and streams (tls.go).
	tlsFailures *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		proxies: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "bg_xds_connected_proxies", Help: "xDS streams currently open.",
		}),
		pushes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "bg_xds_pushes_total", Help: "xDS responses sent, by resource type.",
		}, []string{"type"}),
		acks: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "bg_xds_acks_total", Help: "xDS responses accepted by proxies, by resource type.",
		}, []string{"type"}),
		nacks: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "bg_xds_nacks_total", Help: "xDS responses rejected by proxies, by resource type.",
		}, []string{"type"}),
		ackDelay: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "bg_xds_push_ack_seconds",
			Help:    "Time from sending an xDS response to the proxy's ACK, by resource type.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 16),
		}, []string{"type"}),
		tlsFailures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "bg_xds_tls_failures_total",
			Help: "xDS connections refused at the TLS handshake (reason handshake) and streams refused because their node id is not their client certificate's (reason identity).",
		}, []string{"reason"}),
	}
	if reg != nil {
		reg.MustRegister(m.proxies, m.pushes, m.acks, m.nacks, m.ackDelay, m.tlsFailures)
	}
	return m
}

// shortType turns a type URL into a label such as "RouteConfiguration".
func shortType(typeURL string) string {
	for i := len(typeURL) - 1; i >= 0; i-- {
		if typeURL[i] == '.' {
			return typeURL[i+1:]
		}
	}
	return typeURL
}
