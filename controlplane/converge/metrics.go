package converge

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/bgctl/bg/controlplane/model"
)

// Metrics export each service's convergence.
type Metrics struct {
	notConverged *prometheus.GaugeVec
	pending      *prometheus.GaugeVec
}

// NewMetrics registers the convergence metrics on reg (nil: unregistered).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		notConverged: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "bg_converge_not_converged",
			Help: "1 while a service with auto.enabled does not serve its desired version, by state (waiting_for_capacity, settling, window_closed, switch_running, failed, ...)."},
			[]string{"service", "state"}),
		pending: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "bg_converge_pending_seconds",
			Help: "How long a service with auto.enabled has not served its desired version (0 when converged)."},
			[]string{"service"}),
	}
	if reg != nil {
		reg.MustRegister(m.notConverged, m.pending)
	}
	return m
}

// observe sets one service's gauges after a decision.
func (m *Metrics) observe(service string, enabled bool, k model.ConvergeState, since, now time.Time) {
	if m == nil || !enabled {
		return
	}
	m.notConverged.DeletePartialMatch(prometheus.Labels{"service": service})
	if k == Converged || k == NoDesire || since.IsZero() {
		m.pending.WithLabelValues(service).Set(0)
		return
	}
	m.notConverged.WithLabelValues(service, string(k)).Set(1)
	m.pending.WithLabelValues(service).Set(now.Sub(since).Seconds())
}
