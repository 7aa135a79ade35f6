package traffic

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/bgctl/bg/controlplane/model"
)

// Metrics are the traffic series.
type Metrics struct {
	weight          *prometheus.GaugeVec
	generation      *prometheus.GaugeVec
	analyses        *prometheus.CounterVec
	rollbackSeconds *prometheus.HistogramVec
}

// NewMetrics registers the traffic series.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		weight: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "bg_service_weight_percent", Help: "Share of a service's traffic sent to each colour.",
		}, []string{"service", "color"}),
		generation: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "bg_service_generation", Help: "Generation of a service's traffic state.",
		}, []string{"service"}),
		analyses: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "bg_analyses_total", Help: "Analyses of running switches, by service and outcome (pass, fail, insufficient, invalid, unavailable).",
		}, []string{"service", "outcome"}),
		rollbackSeconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "bg_rollback_confirm_seconds",
			Help:    "Time from the analysis that failed a switch to every proxy ACKing the flip back.",
			Buckets: prometheus.ExponentialBuckets(0.005, 2, 14),
		}, []string{"service"}),
	}
	if reg != nil {
		reg.MustRegister(m.weight, m.generation, m.analyses, m.rollbackSeconds)
	}
	return m
}

func (m *Metrics) setWeights(service string, t model.Traffic) {
	for _, c := range model.Colors {
		m.weight.WithLabelValues(service, string(c)).Set(float64(t.Percent(c)))
	}
	m.generation.WithLabelValues(service).Set(float64(t.Generation))
}
