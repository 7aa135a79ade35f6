package model

import (
	"encoding/json"
	"math"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
)

func validPlan() Plan {
	return Plan{
		Steps:              []int{10, 50, 100},
		Bake:               Duration(time.Minute),
		Interval:           Duration(10 * time.Second),
		MinRequests:        50,
		Confidence:         0.99,
		Margin:             0.1,
		UnavailableBudget:  Duration(time.Minute),
		OnUnavailable:      OnUnavailableRollback,
		InsufficientBudget: Duration(5 * time.Minute),
		OnInsufficient:     OnUnavailableRollback,
		Rollback:           RollbackInstant,
	}
}

func validLatency() *LatencyPlan {
	return &LatencyPlan{Quantile: 0.99, Relative: 0.2, Absolute: Duration(50 * time.Millisecond), Unit: Duration(time.Millisecond)}
}

func TestPlanValidate(t *testing.T) {
	steps := func(n int) []int { // n evenly rising steps ending at 100
		s := make([]int, n)
		for i := range s {
			s[i] = (i + 1) * 100 / n
		}
		return s
	}
	cases := []struct {
		name   string
		edit   func(p *Plan)
		errHas string // "" = valid
	}{
		{"valid", func(p *Plan) {}, ""},
		{"single step of 100", func(p *Plan) { p.Steps = []int{100} }, ""},
		{"20 steps", func(p *Plan) { p.Steps = steps(20) }, ""},
		{"step of 1", func(p *Plan) { p.Steps = []int{1, 100} }, ""},
		{"hold and gradual", func(p *Plan) { p.OnUnavailable, p.Rollback = OnUnavailableHold, RollbackGradual }, ""},
		{"zero bake", func(p *Plan) { p.Bake = 0 }, ""},
		{"interval exactly 100ms", func(p *Plan) {
			p.Interval, p.UnavailableBudget, p.InsufficientBudget = Duration(100*time.Millisecond), Duration(100*time.Millisecond), Duration(100*time.Millisecond)
		}, ""},
		{"budget equal to interval", func(p *Plan) { p.UnavailableBudget = p.Interval }, ""},
		{"insufficient budget equal to interval", func(p *Plan) { p.InsufficientBudget = p.Interval }, ""},
		{"on_insufficient hold", func(p *Plan) { p.OnInsufficient = OnUnavailableHold }, ""},
		{"latency p99 in ms", func(p *Plan) { p.Latency = validLatency() }, ""},
		{"latency in seconds", func(p *Plan) { p.Latency = validLatency(); p.Latency.Unit = Duration(time.Second) }, ""},
		{"latency zero margins", func(p *Plan) { p.Latency = validLatency(); p.Latency.Relative, p.Latency.Absolute = 0, 0 }, ""},
		{"latency relative 10", func(p *Plan) { p.Latency = validLatency(); p.Latency.Relative = 10 }, ""},
		{"latency quantile just above 0.5", func(p *Plan) { p.Latency = validLatency(); p.Latency.Quantile = 0.5000001 }, ""},
		{"min requests exactly 1", func(p *Plan) { p.MinRequests = 1 }, ""},
		{"margin 0", func(p *Plan) { p.Margin = 0 }, ""},
		{"margin 10", func(p *Plan) { p.Margin = 10 }, ""},
		{"confidence just above 0.5", func(p *Plan) { p.Confidence = 0.5000001 }, ""},

		{"no steps", func(p *Plan) { p.Steps = nil }, "got 0"},
		{"empty steps", func(p *Plan) { p.Steps = []int{} }, "got 0"},
		{"21 steps", func(p *Plan) { p.Steps = steps(21) }, "got 21"},
		{"zero step", func(p *Plan) { p.Steps = []int{0, 100} }, "steps[0]"},
		{"negative step", func(p *Plan) { p.Steps = []int{-10, 100} }, "steps[0]"},
		{"repeated step", func(p *Plan) { p.Steps = []int{10, 10, 100} }, "steps[1]"},
		{"falling step", func(p *Plan) { p.Steps = []int{50, 10, 100} }, "steps[1]"},
		{"step above 100", func(p *Plan) { p.Steps = []int{10, 101} }, "steps[1]"},
		{"100 twice", func(p *Plan) { p.Steps = []int{100, 100} }, "steps[1]"},
		{"last step not 100", func(p *Plan) { p.Steps = []int{10, 50} }, "last step must be 100"},
		{"zero interval", func(p *Plan) { p.Interval = 0 }, "interval"},
		{"interval just under 100ms", func(p *Plan) { p.Interval = Duration(100*time.Millisecond - 1) }, "interval"},
		{"negative bake", func(p *Plan) { p.Bake = Duration(-time.Nanosecond) }, "bake"},
		{"min requests 0", func(p *Plan) { p.MinRequests = 0 }, "min_requests"},
		// Not covered: NaN or +Inf min_requests pass Plan.Validate (config
		// validation rejects them, and JSON cannot carry them).
		{"confidence 0.5", func(p *Plan) { p.Confidence = 0.5 }, "confidence"},
		{"confidence 1", func(p *Plan) { p.Confidence = 1 }, "confidence"},
		{"confidence NaN", func(p *Plan) { p.Confidence = math.NaN() }, "confidence"},
		{"margin negative", func(p *Plan) { p.Margin = -0.01 }, "margin"},
		{"margin above 10", func(p *Plan) { p.Margin = 10.01 }, "margin"},
		{"margin NaN", func(p *Plan) { p.Margin = math.NaN() }, "margin"},
		{"margin +Inf", func(p *Plan) { p.Margin = math.Inf(1) }, "margin"},
		{"budget shorter than interval", func(p *Plan) { p.UnavailableBudget = Duration(9 * time.Second) }, "unavailable_budget"},
		{"zero budget", func(p *Plan) { p.UnavailableBudget = 0 }, "unavailable_budget"},
		{"empty on_unavailable", func(p *Plan) { p.OnUnavailable = "" }, "on_unavailable"},
		{"unknown on_unavailable", func(p *Plan) { p.OnUnavailable = "Rollback" }, "on_unavailable"},
		{"insufficient budget shorter than interval", func(p *Plan) { p.InsufficientBudget = Duration(9 * time.Second) }, "insufficient_budget"},
		{"zero insufficient budget", func(p *Plan) { p.InsufficientBudget = 0 }, "insufficient_budget"},
		{"empty on_insufficient", func(p *Plan) { p.OnInsufficient = "" }, "on_insufficient"},
		{"unknown on_insufficient", func(p *Plan) { p.OnInsufficient = "wait" }, "on_insufficient"},
		{"latency quantile 1", func(p *Plan) { p.Latency = validLatency(); p.Latency.Quantile = 1 }, "latency.quantile"},
		{"latency quantile 0.5", func(p *Plan) { p.Latency = validLatency(); p.Latency.Quantile = 0.5 }, "latency.quantile"},
		{"latency quantile NaN", func(p *Plan) { p.Latency = validLatency(); p.Latency.Quantile = math.NaN() }, "latency.quantile"},
		{"latency relative negative", func(p *Plan) { p.Latency = validLatency(); p.Latency.Relative = -0.1 }, "latency.relative"},
		{"latency relative above 10", func(p *Plan) { p.Latency = validLatency(); p.Latency.Relative = 10.5 }, "latency.relative"},
		{"latency relative NaN", func(p *Plan) { p.Latency = validLatency(); p.Latency.Relative = math.NaN() }, "latency.relative"},
		{"latency absolute negative", func(p *Plan) { p.Latency = validLatency(); p.Latency.Absolute = Duration(-time.Millisecond) }, "latency.absolute"},
		{"latency unit microseconds", func(p *Plan) { p.Latency = validLatency(); p.Latency.Unit = Duration(time.Microsecond) }, "latency.unit"},
		{"latency unit zero", func(p *Plan) { p.Latency = validLatency(); p.Latency.Unit = 0 }, "latency.unit"},
		{"empty rollback", func(p *Plan) { p.Rollback = "" }, "rollback"},
		{"unknown rollback", func(p *Plan) { p.Rollback = "slow" }, "rollback"},
	}
	for _, c := range cases {
		p := validPlan()
		c.edit(&p)
		err := p.Validate()
		switch {
		case c.errHas == "" && err != nil:
			t.Errorf("%s: unexpected error %v", c.name, err)
		case c.errHas != "" && err == nil:
			t.Errorf("%s: accepted", c.name)
		case c.errHas != "" && !strings.Contains(err.Error(), c.errHas):
			t.Errorf("%s: error %q does not mention %q", c.name, err, c.errHas)
		}
	}
}

func TestRolloutPhaseRunning(t *testing.T) {
	want := map[RolloutPhase]bool{
		RolloutProgressing: true, RolloutPaused: true, RolloutRollingBack: true,
		RolloutPromoted: false, RolloutRolledBack: false, RolloutAborted: false, "": false, "bogus": false,
	}
	for ph, w := range want {
		if got := ph.Running(); got != w {
			t.Errorf("%q.Running() = %v, want %v", ph, got, w)
		}
	}
}

func TestRolloutPercent(t *testing.T) {
	r := &Rollout{Plan: validPlan()}
	for step, want := range []int{10, 50, 100} {
		r.Step = step
		if got := r.Percent(); got != want {
			t.Errorf("step %d: %d%%, want %d%%", step, got, want)
		}
	}
}

func TestCauseValidate(t *testing.T) {
	for _, c := range append([]Cause{""}, Causes...) {
		if err := c.Validate(); err != nil {
			t.Errorf("%q: %v", c, err)
		}
	}
	for _, c := range []Cause{CauseInsufficientData, CauseLatencyRegressed} {
		if !slices.Contains(Causes, c) {
			t.Errorf("Causes lacks %q", c)
		}
	}
	if err := Cause("window_expired").Validate(); err == nil {
		t.Error("unknown cause accepted")
	}
}

func TestRolloutEvidenceJSON(t *testing.T) {
	r := Rollout{Plan: validPlan()}
	b, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	// Neither is written until the judge has seen something.
	for _, gone := range []string{`"evidence"`, `"insufficient_since"`} {
		if strings.Contains(string(b), gone) {
			t.Errorf("%s has %s", b, gone)
		}
	}
	since := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	r.InsufficientSince = since
	r.Evidence = &Evidence{
		Candidate: Counts{Requests: 1200, Errors: 3}, Baseline: Counts{Requests: 98000, Errors: 120},
		ErrorsLogLR: []float64{-0.5, 0.25}, ErrorsE: 1.75, Step: 2, StepCandidate: 400, StepBaseline: 9000,
		Latency: []byte(`{"k":1}`), LatencyE: 0.5, CandidateQuantile: 0.12, BaselineQuantile: 0.1,
	}
	if b, err = json.Marshal(r); err != nil {
		t.Fatal(err)
	}
	var back Rollout
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if !back.InsufficientSince.Equal(since) {
		t.Errorf("insufficient_since %v, want %v", back.InsufficientSince, since)
	}
	if back.Evidence == nil || !reflect.DeepEqual(*back.Evidence, *r.Evidence) {
		t.Errorf("evidence round trip %+v, want %+v", back.Evidence, r.Evidence)
	}
}

// A plan stored before exact counts (with a window, without an
// insufficient-data budget) still loads, strictly, with the behaviour it
// had: hold when data is short.
func TestPlanStoredBeforeExactCounts(t *testing.T) {
	old := `{"steps":[10,100],"bake":"1m0s","interval":"10s","window":"1m0s","min_requests":200,"confidence":0.99,"margin":0.1,"unavailable_budget":"1m0s","on_unavailable":"rollback","rollback":"instant"}`
	var p Plan
	if err := json.Unmarshal([]byte(old), &p); err != nil {
		t.Fatal(err)
	}
	if p.OnInsufficient != OnUnavailableHold || p.InsufficientBudget != Duration(time.Minute) || p.MinRequests != 200 {
		t.Fatalf("plan %+v", p)
	}
	if err := p.Validate(); err != nil {
		t.Fatalf("old plan does not validate: %v", err)
	}
	dec := json.NewDecoder(strings.NewReader(`{"steps":[100],"nope":1}`))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&p); err == nil {
		t.Fatal("an unknown field was accepted")
	}
}
