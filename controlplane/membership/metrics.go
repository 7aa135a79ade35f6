package membership

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/bgctl/bg/controlplane/model"
	"github.com/bgctl/bg/controlplane/series"
)

// HeldMetrics exports which fleets a Guard holds, as the gauge
// bg_fleet_held{service,color}: 1 while the colour's last known endpoints
// are kept in place of a read, 0 otherwise. Safe for concurrent use.
type HeldMetrics struct {
	held *series.Family // 8 bytes a series: two per service
}

// NewHeldMetrics creates the gauge and registers it with reg, unless reg is
// nil. It panics if reg already has a metric of that name.
func NewHeldMetrics(reg prometheus.Registerer) *HeldMetrics {
	m := &HeldMetrics{held: series.New("bg_fleet_held",
		"1 while a colour keeps its last known endpoints because a read lost more than half of them (membership.shrink_grace), or because it is empty and the colour carries traffic.",
		prometheus.GaugeValue, "color", string(model.Blue), string(model.Green))}
	if reg != nil {
		reg.MustRegister(m.held)
	}
	return m
}

// Set records whether colour c of service is held.
func (m *HeldMetrics) Set(service string, c model.Color, held bool) {
	v := 0.0
	if held {
		v = 1
	}
	m.held.Set(service, string(c), v)
}

// Observe sets both colours of service from a Guard's State.
func (m *HeldMetrics) Observe(service string, s State) {
	for _, c := range model.Colors {
		m.Set(service, c, s.Hold(c) != nil)
	}
}
