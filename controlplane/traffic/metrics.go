package traffic

import (
	"math"
	"sync"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/bgctl/bg/controlplane/membership"
	"github.com/bgctl/bg/controlplane/model"
	"github.com/bgctl/bg/controlplane/series"
)

// Rollback reasons are model.Causes, the only values of
// bg_rollbacks_total's reason label.
const (
	rollbackAnalysisFailed = string(model.CauseAnalysisFailed)
	rollbackAborted        = string(model.CauseAborted)
	rollbackRollFailed     = string(model.CauseRollFailed)
)

// switchPhases are the values of bg_switch_phase's phase label: a
// progressive switch's phases, then a roll's, then "none".
var switchPhases = []string{
	string(model.RolloutProgressing), string(model.RolloutPaused), string(model.RolloutRollingBack),
	string(model.RolloutPromoted), string(model.RolloutRolledBack), string(model.RolloutAborted),
	string(model.RollRolling), string(model.RollHeld), string(model.RollCompleted),
	"none",
}

// Metrics are the traffic series.
type Metrics struct {
	// state exports each service's weights, generation, phase, step and
	// members when scraped, read from the controller: stored series cost
	// about 400 bytes each, and these are a dozen per service.
	state           *stateCollector
	analyses        *prometheus.CounterVec
	rollbackSeconds *prometheus.HistogramVec
	stateWrite      prometheus.Histogram
	// Counters every service exports from zero (series.Family: 8 bytes a
	// series, not a stored Counter's 500).
	steps          *series.Family
	rollbacks      *series.Family
	overrides      *series.Family
	errorRatio     *prometheus.GaugeVec
	judgedRequests *prometheus.GaugeVec // the judge's inputs by colour
	judgedErrors   *prometheus.GaugeVec
	evidence       *prometheus.GaugeVec
	evidenceBar    *prometheus.GaugeVec
	latency        *prometheus.GaugeVec
	gateCalls      *prometheus.CounterVec
	windowRefusals *series.Family
	held           *membership.HeldMetrics
}

// NewMetrics registers the traffic series.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		state: &stateCollector{},
		stateWrite: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "bg_state_write_seconds",
			Help:    "Time to store a traffic state in Consul (one fenced transaction), the step before every push.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 14),
		}),
		analyses: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "bg_analyses_total", Help: "Analyses of running switches, by service and outcome (pass, fail, insufficient, invalid, unavailable).",
		}, []string{"service", "outcome"}),
		rollbackSeconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "bg_rollback_confirm_seconds",
			Help:    "Time from the analysis that failed a switch to every proxy ACKing the flip back.",
			Buckets: prometheus.ExponentialBuckets(0.005, 2, 14),
		}, []string{"service"}),
		steps: series.New("bg_switch_steps_total", "Steps entered by progressive switches, the first step included.",
			prometheus.CounterValue, ""),
		rollbacks: series.New("bg_rollbacks_total",
			"Traffic sent back to the stable colour, by reason (analysis_failed, metrics_unavailable, aborted, roll_failed, gate_failed).",
			prometheus.CounterValue, "reason", causeNames()...),
		overrides: series.New("bg_overrides_total", "Forced commands recorded as overrides: switch, promote or abort --force.",
			prometheus.CounterValue, ""),
		gateCalls: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "bg_gate_calls_total", Help: "Gate webhook calls, by service, gate, stage (pre, step, post) and result (passed, failed).",
		}, []string{"service", "gate", "stage", "result"}),
		windowRefusals: series.New("bg_window_refusals_total", "Switches refused because the service's deploy windows were closed.",
			prometheus.CounterValue, ""),
		errorRatio: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "bg_analysis_error_ratio",
			Help: "Error ratio since the running (or last) switch began, by role (candidate, baseline).",
		}, []string{"service", "role"}),
		judgedRequests: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "bg_analysis_requests",
			Help: "Requests the judge counted for each colour's fleet since the running (or last) switch began, as last read: the counts it tests, whatever the fleet's own metrics are.",
		}, []string{"service", "color"}),
		judgedErrors: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "bg_analysis_errors",
			Help: "Errors the judge counted for each colour's fleet since the running (or last) switch began, as last read.",
		}, []string{"service", "color"}),
		evidence: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "bg_analysis_evidence",
			Help: "Sequential e-value of the running (or last) switch, by test (errors, latency): the evidence that the candidate is worse beyond the margin. The switch fails when it reaches bg_analysis_evidence_threshold.",
		}, []string{"service", "test"}),
		evidenceBar: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "bg_analysis_evidence_threshold",
			Help: "The e-value at which the switch fails: 1/(1-confidence).",
		}, []string{"service"}),
		latency: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "bg_analysis_latency_quantile_seconds",
			Help: "The latency quantile judged (e.g. p99) since the switch began, by role (candidate, baseline).",
		}, []string{"service", "role"}),
	}
	m.held = membership.NewHeldMetrics(reg)
	if reg != nil {
		reg.MustRegister(m.state, m.stateWrite, m.analyses, m.rollbackSeconds, m.steps, m.rollbacks, m.overrides, m.errorRatio, m.judgedRequests, m.judgedErrors, m.evidence, m.evidenceBar, m.latency, m.gateCalls, m.windowRefusals)
	}
	return m
}

// setWeights creates the service's counters at zero, so rates and
// increases exist before the first event. (Its state gauges come from the
// controller at scrape time.)
func (m *Metrics) setWeights(service string, _ model.Traffic) {
	m.steps.Ensure(service)
	m.overrides.Ensure(service)
	m.windowRefusals.Ensure(service)
	// Every reason starts at zero: a series born at 1 shows no increase(),
	// and the dashboard's rollback annotation would miss the first one.
	m.rollbacks.Ensure(service)
}

// causeNames are bg_rollbacks_total's reasons.
func causeNames() []string {
	out := make([]string, len(model.Causes))
	for i, c := range model.Causes {
		out[i] = string(c)
	}
	return out
}

// lastPhase is the phase of the later of the last switch and the last roll.
func lastPhase(t model.Traffic) string {
	r, l := t.Rollout, t.Roll
	switch {
	case r == nil && l == nil:
		return "none"
	case l == nil || r != nil && r.StartedAt.After(l.StartedAt):
		return string(r.Phase)
	case l.Phase == model.RollRollingBack:
		return string(model.RolloutRollingBack)
	case l.Phase == model.RollRolledBack:
		return string(model.RolloutRolledBack)
	case l.Phase == model.RollAborted:
		return string(model.RolloutAborted)
	default:
		return string(l.Phase)
	}
}

// recordChange counts what the change from cur to next did: steps
// entered, overrides and rollbacks. Only the replica that makes the change
// calls it, so nothing is counted twice.
func (m *Metrics) recordChange(service string, cur, next model.Traffic) {
	if r := next.Rollout; r != nil {
		old := cur.Rollout
		if old != nil && old.ID != r.ID {
			old = nil
		}
		switch {
		case old == nil:
			m.steps.Add(service, "", float64(r.Step+1))
		case r.Step > old.Step:
			m.steps.Add(service, "", float64(r.Step-old.Step))
		}
		n := len(r.Overrides)
		if old != nil {
			n -= len(old.Overrides)
		}
		if n > 0 {
			m.overrides.Add(service, "", float64(n))
		}
	}
	if reason := rollbackReason(cur, next); reason != "" {
		m.rollbacks.Add(service, reason, 1)
	}
}

// rollbackReason says why traffic started going back to the stable
// colour between cur and next, or "" if it did not.
func rollbackReason(cur, next model.Traffic) string {
	if r := next.Rollout; r != nil && rolloutBack(r.Phase) {
		if old := cur.Rollout; old == nil || old.ID != r.ID || !rolloutBack(old.Phase) {
			if r.Phase == model.RolloutAborted {
				return rollbackAborted
			}
			if r.Cause != "" {
				return string(r.Cause)
			}
			return rollbackAnalysisFailed // stored before causes were typed
		}
		return ""
	}
	if l := next.Roll; l != nil && rollBack(l.Phase) {
		if old := cur.Roll; old == nil || old.ID != l.ID || !rollBack(old.Phase) {
			if l.ByHand || l.Phase == model.RollAborted {
				return rollbackAborted
			}
			return rollbackRollFailed
		}
		return ""
	}
	if next.Phase == model.PhaseAborted && cur.Phase != model.PhaseAborted {
		return rollbackAborted // an instant switch undone by hand
	}
	return ""
}

func rolloutBack(p model.RolloutPhase) bool {
	return p == model.RolloutRollingBack || p == model.RolloutRolledBack || p == model.RolloutAborted
}

func rollBack(p model.RollPhase) bool {
	return p == model.RollRollingBack || p == model.RollRolledBack || p == model.RollAborted
}

// setEvidence exports what a switch's analyses have seen so far: error
// ratios since the switch began, each test's e-value and the bar it must
// reach, and the latency quantiles.
func (m *Metrics) setEvidence(service string, r *model.Rollout) {
	ev := r.Evidence
	if ev == nil {
		return
	}
	set := func(g *prometheus.GaugeVec, f float64, labels ...string) {
		if !math.IsNaN(f) && !math.IsInf(f, 0) && f >= 0 {
			g.WithLabelValues(labels...).Set(f)
		}
	}
	for _, f := range []struct {
		role  string
		color model.Color
		c     model.Counts
	}{{"candidate", r.To, ev.Candidate}, {"baseline", r.From, ev.Baseline}} {
		if f.c.Requests > 0 {
			set(m.errorRatio, f.c.Errors/f.c.Requests, service, f.role)
		}
		if _, err := model.ParseColor(string(f.color)); err == nil {
			// Both colours are set at every analysis, so a later switch in
			// the other direction leaves no stale value behind.
			set(m.judgedRequests, f.c.Requests, service, string(f.color))
			set(m.judgedErrors, f.c.Errors, service, string(f.color))
		}
	}
	set(m.evidence, ev.ErrorsE, service, "errors")
	set(m.evidenceBar, 1/(1-r.Plan.Confidence), service)
	if r.Plan.Latency != nil && len(ev.Latency) > 0 {
		set(m.evidence, ev.LatencyE, service, "latency")
		set(m.latency, ev.CandidateQuantile, service, "candidate")
		set(m.latency, ev.BaselineQuantile, service, "baseline")
	}
}

// serviceState is what the state collector exports for one service.
type serviceState struct {
	service string
	traffic model.Traffic
	members *model.Membership // nil before the first read
}

var (
	weightDesc = prometheus.NewDesc("bg_service_weight_percent", "Share of a service's traffic sent to each colour.",
		[]string{"service", "color"}, nil)
	membersDesc = prometheus.NewDesc("bg_fleet_members", "Passing instances per service, colour and version (Consul meta version).",
		[]string{"service", "color", "version"}, nil)
	generationDesc = prometheus.NewDesc("bg_service_generation", "Generation of a service's traffic state.",
		[]string{"service"}, nil)
	phaseDesc = prometheus.NewDesc("bg_switch_phase",
		"1, with the phase of a service's last progressive switch or roll (the later one) as label; phase \"none\" before any.",
		[]string{"service", "phase"}, nil)
	stepDesc = prometheus.NewDesc("bg_switch_step_percent",
		"Candidate share planned at the current step of a service's last progressive switch; 0 before any.",
		[]string{"service"}, nil)
)

// stateCollector reads every loaded service's state when scraped.
type stateCollector struct {
	mu   sync.Mutex
	read func() []serviceState
}

func (c *stateCollector) source(read func() []serviceState) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.read = read
}

// Describe implements prometheus.Collector.
func (c *stateCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{weightDesc, membersDesc, generationDesc, phaseDesc, stepDesc} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (c *stateCollector) Collect(ch chan<- prometheus.Metric) {
	c.mu.Lock()
	read := c.read
	c.mu.Unlock()
	if read == nil {
		return
	}
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	for _, st := range read() {
		t, svc := st.traffic, st.service
		for _, col := range model.Colors {
			gauge(weightDesc, float64(t.Percent(col)), svc, string(col))
		}
		gauge(generationDesc, float64(t.Generation), svc)
		gauge(phaseDesc, 1, svc, lastPhase(t))
		step := 0.0
		if r := t.Rollout; r != nil && r.Step >= 0 && r.Step < len(r.Plan.Steps) {
			step = float64(r.Percent())
		}
		gauge(stepDesc, step, svc)
		if st.members == nil {
			continue
		}
		for _, col := range model.Colors {
			count := map[string]int{}
			for _, e := range st.members.Fleet(col).Endpoints {
				count[e.Version]++
			}
			if len(count) == 0 {
				gauge(membersDesc, 0, svc, string(col), "")
			}
			for v, n := range count {
				gauge(membersDesc, float64(n), svc, string(col), v)
			}
		}
	}
}
