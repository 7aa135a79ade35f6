package traffic

import (
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/bgctl/bg/controlplane/model"
)

// The state gauges are read from the controller when scraped: one
// bg_switch_phase series per service (its current phase), weights,
// generation, step and members, and nothing stored per service.
func TestStateGaugesAtScrape(t *testing.T) {
	reg := prometheus.NewRegistry()
	m := NewMetrics(reg)
	web := model.Traffic{Generation: 7, GreenPercent: 25, Stable: model.Blue,
		Rollout: &model.Rollout{Phase: model.RolloutProgressing, StartedAt: time.Now(), Step: 0,
			Plan: model.Plan{Steps: []int{25, 100}}}}
	members := &model.Membership{Blue: model.Fleet{Endpoints: []model.Endpoint{{ID: "b1", Version: "v1"}, {ID: "b2", Version: "v1"}}}}
	state := []serviceState{{service: "web", traffic: web, members: members}, {service: "api", traffic: model.Traffic{Generation: 1}}}
	m.state.source(func() []serviceState { return state })

	want := `
# HELP bg_switch_phase 1, with the phase of a service's last progressive switch or roll (the later one) as label; phase "none" before any.
# TYPE bg_switch_phase gauge
bg_switch_phase{phase="none",service="api"} 1
bg_switch_phase{phase="progressing",service="web"} 1
# HELP bg_fleet_members Passing instances per service, colour and version (Consul meta version).
# TYPE bg_fleet_members gauge
bg_fleet_members{color="blue",service="web",version="v1"} 2
bg_fleet_members{color="green",service="web",version=""} 0
# HELP bg_switch_step_percent Candidate share planned at the current step of a service's last progressive switch; 0 before any.
# TYPE bg_switch_step_percent gauge
bg_switch_step_percent{service="api"} 0
bg_switch_step_percent{service="web"} 25
# HELP bg_service_generation Generation of a service's traffic state.
# TYPE bg_service_generation gauge
bg_service_generation{service="api"} 1
bg_service_generation{service="web"} 7
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "bg_switch_phase", "bg_fleet_members", "bg_switch_step_percent", "bg_service_generation"); err != nil {
		t.Fatal(err)
	}
	if err := testutil.GatherAndCompare(reg, strings.NewReader(`
# HELP bg_service_weight_percent Share of a service's traffic sent to each colour.
# TYPE bg_service_weight_percent gauge
bg_service_weight_percent{color="blue",service="api"} 100
bg_service_weight_percent{color="blue",service="web"} 75
bg_service_weight_percent{color="green",service="api"} 0
bg_service_weight_percent{color="green",service="web"} 25
`), "bg_service_weight_percent"); err != nil {
		t.Fatal(err)
	}
	// A phase change replaces the series, it does not add one.
	state[0].traffic.Rollout.Phase = model.RolloutPromoted
	if n := testutil.CollectAndCount(m.state, "bg_switch_phase"); n != 2 {
		t.Fatalf("%d phase series for 2 services after a phase change, want 2", n)
	}
}

// Counters start at zero for every reason: a series born at 1 shows no
// increase(), and the dashboard's rollback annotation would miss the first
// rollback (e2e TestDashboardQueries found it).
func TestCountersStartAtZero(t *testing.T) {
	m := NewMetrics(prometheus.NewRegistry())
	m.setWeights("web", model.Traffic{})
	if n := testutil.CollectAndCount(m.rollbacks); n != len(model.Causes) {
		t.Errorf("%d bg_rollbacks_total series for one service, want one per cause (%d)", n, len(model.Causes))
	}
	for _, c := range []prometheus.Collector{m.steps, m.overrides, m.windowRefusals} {
		if n := testutil.CollectAndCount(c); n != 1 {
			t.Errorf("%d series, want 1", n)
		}
	}
}

// A change counts on its service's series: steps entered, overrides, the
// rollback under its reason; other services' series stay at zero.
func TestRecordChangeCounts(t *testing.T) {
	m := NewMetrics(prometheus.NewRegistry())
	m.setWeights("web", model.Traffic{})
	m.setWeights("api", model.Traffic{})
	plan := model.Plan{Steps: []int{25, 50, 100}}
	start := model.Traffic{Rollout: &model.Rollout{ID: "g2", Phase: model.RolloutProgressing, Plan: plan, Overrides: []string{"forced"}}}
	m.recordChange("web", model.Traffic{}, start)
	next := start
	r := *start.Rollout
	r.Step = 2
	next.Rollout = &r
	m.recordChange("web", start, next)
	back := next
	rb := r
	rb.Phase, rb.Cause = model.RolloutRollingBack, model.CauseAnalysisFailed
	back.Rollout = &rb
	m.recordChange("web", next, back)
	if got := m.steps.Value("web", ""); got != 3 {
		t.Errorf("web steps %v, want 3", got)
	}
	if got := m.overrides.Value("web", ""); got != 1 {
		t.Errorf("web overrides %v, want 1", got)
	}
	if got := m.rollbacks.Value("web", string(model.CauseAnalysisFailed)); got != 1 {
		t.Errorf("web rollbacks for analysis_failed %v, want 1", got)
	}
	if m.steps.Value("api", "") != 0 || m.rollbacks.Value("api", string(model.CauseAnalysisFailed)) != 0 {
		t.Error("api's series moved")
	}
	if n := testutil.CollectAndCount(m.rollbacks); n != 2*len(model.Causes) {
		t.Errorf("%d bg_rollbacks_total series for two services, want %d", n, 2*len(model.Causes))
	}
}
