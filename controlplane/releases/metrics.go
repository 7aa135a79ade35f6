package releases

import (
	"sync"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/bgctl/bg/controlplane/release"
)

// Outcomes are the values of bg_releases_total's outcome label: the
// release phases that end it.
var Outcomes = []release.Phase{release.Promoted, release.RolledBack, release.Aborted}

// Metrics are the release series.
type Metrics struct {
	outcomes         *prometheus.CounterVec
	members          *membersCollector
	consumerEvidence *prometheus.GaugeVec
}

// NewMetrics registers bg_releases_total{outcome}, every outcome at 0,
// and, read from the running releases when scraped,
// bg_release_members{release,phase} and
// bg_release_member_phase{release,service,phase}.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		outcomes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "bg_releases_total",
			Help: "Releases ended by this control plane, by outcome (promoted, rolled_back, aborted).",
		}, []string{"outcome"}),
		members:          &membersCollector{},
		consumerEvidence: newConsumerEvidence(),
	}
	for _, o := range Outcomes {
		m.outcomes.WithLabelValues(string(o))
	}
	if reg != nil {
		reg.MustRegister(m.outcomes, m.members, m.consumerEvidence)
	}
	return m
}

var membersDesc = prometheus.NewDesc("bg_release_members",
	"Members of each running release, by member phase (waiting, starting, switching, promoted, aborting, rolling_back, rolled_back, aborted, skipped, detached).",
	[]string{"release", "phase"}, nil)

var memberPhaseDesc = prometheus.NewDesc("bg_release_member_phase",
	"1 for each member service of a running release, labelled with its phase: the dashboard's phase-per-service timeline.",
	[]string{"release", "service", "phase"}, nil)

// membersCollector counts each running release's members by phase.
type membersCollector struct {
	mu   sync.Mutex
	read func() []release.Release
}

func (c *membersCollector) source(read func() []release.Release) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.read = read
}

// Describe implements prometheus.Collector.
func (c *membersCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- membersDesc
	ch <- memberPhaseDesc
}

// Collect implements prometheus.Collector: every phase of every running
// release, 0 included, so a phase's series does not appear from nowhere.
func (c *membersCollector) Collect(ch chan<- prometheus.Metric) {
	c.mu.Lock()
	read := c.read
	c.mu.Unlock()
	if read == nil {
		return
	}
	for _, r := range read() {
		n := map[release.MemberPhase]int{}
		for _, m := range r.Members {
			n[m.Phase]++
			ch <- prometheus.MustNewConstMetric(memberPhaseDesc, prometheus.GaugeValue, 1, r.ID, m.Service, string(m.Phase))
		}
		for _, p := range release.MemberPhases {
			ch <- prometheus.MustNewConstMetric(membersDesc, prometheus.GaugeValue, float64(n[p]), r.ID, string(p))
		}
	}
}
