package converge

import (
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/bgctl/bg/controlplane/model"
)

// Metrics export each service's convergence.
type Metrics struct {
	notConverged *prometheus.GaugeVec
	pending      *pendingSince
}

// NewMetrics registers the convergence metrics on reg (nil: unregistered).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		notConverged: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "bg_converge_not_converged",
			Help: "1 while a service with auto.enabled does not serve its desired version, by state (waiting_for_capacity, settling, window_closed, switch_running, failed, ...)."},
			[]string{"service", "state"}),
		pending: &pendingSince{since: map[string]time.Time{}, now: time.Now, desc: prometheus.NewDesc("bg_converge_pending_seconds",
			"How long a service with auto.enabled has not served its desired version (0 when converged); computed when scraped.",
			[]string{"service"}, nil)},
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
		m.pending.set(service, time.Time{})
		return
	}
	m.notConverged.WithLabelValues(service, string(k)).Set(1)
	m.pending.set(service, since)
}

// pendingSince exports, per service, the time since it stopped serving its
// desired version, as of the scrape: the loop evaluates on events, not on
// a clock, so a gauge it set would stand still between them.
type pendingSince struct {
	mu    sync.Mutex
	since map[string]time.Time // zero: converged
	now   func() time.Time
	desc  *prometheus.Desc
}

func (p *pendingSince) set(service string, since time.Time) {
	p.mu.Lock()
	p.since[service] = since
	p.mu.Unlock()
}

func (p *pendingSince) Describe(ch chan<- *prometheus.Desc) { ch <- p.desc }

func (p *pendingSince) Collect(ch chan<- prometheus.Metric) {
	p.mu.Lock()
	defer p.mu.Unlock()
	now := p.now()
	for service, since := range p.since {
		v := 0.0
		if !since.IsZero() {
			v = max(now.Sub(since).Seconds(), 0)
		}
		ch <- prometheus.MustNewConstMetric(p.desc, prometheus.GaugeValue, v, service)
	}
}
