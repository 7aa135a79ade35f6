package traffic

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/bgctl/bg/controlplane/model"
)

// Metrics are the traffic series.
type Metrics struct {
	weight     *prometheus.GaugeVec
	generation *prometheus.GaugeVec
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
	}
	if reg != nil {
		reg.MustRegister(m.weight, m.generation)
	}
	return m
}

func (m *Metrics) setWeights(service string, t model.Traffic) {
	for _, c := range model.Colors {
		m.weight.WithLabelValues(service, string(c)).Set(float64(t.Percent(c)))
	}
	m.generation.WithLabelValues(service).Set(float64(t.Generation))
}
