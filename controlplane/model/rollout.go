package model

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"time"
)

// RolloutPhase says where a progressive switch stands.
type RolloutPhase string

const (
	RolloutProgressing RolloutPhase = "progressing"
	RolloutPaused      RolloutPhase = "paused"
	RolloutRollingBack RolloutPhase = "rolling_back" // gradual rollback under way
	RolloutPromoted    RolloutPhase = "promoted"
	RolloutRolledBack  RolloutPhase = "rolled_back"
	RolloutAborted     RolloutPhase = "aborted"
)

// Running is true while the rollout still drives traffic.
func (p RolloutPhase) Running() bool {
	return p == RolloutProgressing || p == RolloutPaused || p == RolloutRollingBack
}

// Policy names for metrics that stay unavailable past the budget.
const (
	OnUnavailableRollback = "rollback"
	OnUnavailableHold     = "hold"
	RollbackInstant       = "instant"
	RollbackGradual       = "gradual"
)

// Plan is a switch's velocity and analysis settings, fixed when it starts
// and persisted with it so a restarted control plane resumes the same plan.
type Plan struct {
	Steps    []int    `json:"steps"` // candidate percent per step; the last is 100
	Bake     Duration `json:"bake"`
	Interval Duration `json:"interval"`
	// MinRequests each fleet must serve at a step before it may advance.
	MinRequests       float64  `json:"min_requests"`
	Confidence        float64  `json:"confidence"`
	Margin            float64  `json:"margin"`
	UnavailableBudget Duration `json:"unavailable_budget"`
	OnUnavailable     string   `json:"on_unavailable"`
	// InsufficientBudget is how long a step may lack data (a fleet below
	// MinRequests, or without request series) before OnInsufficient applies.
	InsufficientBudget Duration `json:"insufficient_budget"`
	OnInsufficient     string   `json:"on_insufficient"`
	Rollback           string   `json:"rollback"`
	// Latency, when set, judges the candidate's latency too.
	Latency *LatencyPlan `json:"latency,omitempty"`
	// Dark: the first step is 0 %: only mirrored requests reach the
	// candidate, and the judge sees them before any user is moved.
	Dark  bool   `json:"dark,omitempty"`
	Gates []Gate `json:"gates,omitempty"`
}

// GatesAt are the plan's gates that run at stage.
func (p Plan) GatesAt(stage string) []Gate {
	var out []Gate
	for _, g := range p.Gates {
		if g.At(stage) {
			out = append(out, g)
		}
	}
	return out
}

// Validate rejects plans a switch cannot run.
func (p Plan) Validate() error {
	if len(p.Steps) == 0 || len(p.Steps) > 20 {
		return fmt.Errorf("steps: want 1 to 20 steps, got %d", len(p.Steps))
	}
	prev := 0
	for i, s := range p.Steps {
		if i == 0 && s == 0 && p.Dark && len(p.Steps) > 1 {
			continue // the dark step
		}
		if s <= prev || s > 100 {
			return fmt.Errorf("steps[%d]: %d must be above %d and at most 100", i, s, prev)
		}
		prev = s
	}
	if prev != 100 {
		return fmt.Errorf("steps: the last step must be 100, got %d", prev)
	}
	switch {
	case p.Interval.D() < 100*time.Millisecond:
		return fmt.Errorf("interval: %s is too short", p.Interval.D())
	case p.Bake < 0:
		return fmt.Errorf("bake: negative")
	case !(p.MinRequests >= 1) || math.IsInf(p.MinRequests, 1):
		return fmt.Errorf("min_requests: must be at least 1")
	case !(p.Confidence > 0.5 && p.Confidence < 1):
		return fmt.Errorf("confidence: must be in (0.5, 1)")
	case !(p.Margin >= 0 && p.Margin <= 10):
		return fmt.Errorf("margin: must be in [0, 10]")
	case p.UnavailableBudget < p.Interval:
		return fmt.Errorf("unavailable_budget: shorter than the interval")
	case p.OnUnavailable != OnUnavailableRollback && p.OnUnavailable != OnUnavailableHold:
		return fmt.Errorf("on_unavailable: %q is not rollback or hold", p.OnUnavailable)
	case p.InsufficientBudget < p.Interval:
		return fmt.Errorf("insufficient_budget: shorter than the interval")
	case p.OnInsufficient != OnUnavailableRollback && p.OnInsufficient != OnUnavailableHold:
		return fmt.Errorf("on_insufficient: %q is not rollback or hold", p.OnInsufficient)
	case p.Rollback != RollbackInstant && p.Rollback != RollbackGradual:
		return fmt.Errorf("rollback: %q is not instant or gradual", p.Rollback)
	}
	if p.Latency != nil {
		if err := p.Latency.Validate(); err != nil {
			return fmt.Errorf("latency.%w", err)
		}
	}
	for i, g := range p.Gates {
		if err := g.Validate(); err != nil {
			return fmt.Errorf("gates[%d].%w", i, err)
		}
	}
	return nil
}

// StepVerdict is the latest analysis at one step.
type StepVerdict struct {
	Step           int       `json:"step"`
	Percent        int       `json:"percent"`
	Outcome        string    `json:"outcome"` // pass, fail, insufficient, invalid, unavailable
	Reason         string    `json:"reason"`
	CandidateRatio float64   `json:"candidate_error_ratio"`
	BaselineRatio  float64   `json:"baseline_error_ratio"`
	Analyses       int       `json:"analyses"` // how many analyses ran at this step
	At             time.Time `json:"at"`
}

// Rollout is a progressive switch: its plan, progress and record.
type Rollout struct {
	ID        string       `json:"id"` // service and generation at start, e.g. "web@7"
	From      Color        `json:"from"`
	To        Color        `json:"to"`
	Plan      Plan         `json:"plan"`
	Phase     RolloutPhase `json:"phase"`
	Step      int          `json:"step"` // index into Plan.Steps
	StepSince time.Time    `json:"step_since"`
	StartedAt time.Time    `json:"started_at"`
	EndedAt   time.Time    `json:"ended_at,omitzero"`
	// UnavailableSince is when metrics became unavailable; zero while they answer.
	UnavailableSince time.Time `json:"unavailable_since,omitzero"`
	// PromoteRequested: skip remaining steps at the next passing analysis.
	PromoteRequested bool          `json:"promote_requested,omitempty"`
	Verdicts         []StepVerdict `json:"verdicts"`
	Reason           string        `json:"reason,omitempty"` // why it holds or ended
	Overrides        []string      `json:"overrides,omitempty"`
	// DetectedAt and ConfirmedAt time a rollback: the failing analysis, and
	// the moment every proxy had ACKed the flip back.
	DetectedAt  time.Time `json:"detected_at,omitzero"`
	ConfirmedAt time.Time `json:"confirmed_at,omitzero"`
	// Gate is the stage whose gates must pass before traffic moves on
	// ("" = none pending). While "pre" is pending the first step is not
	// applied yet.
	Gate        string       `json:"gate,omitempty"`
	GateResults []GateResult `json:"gate_results,omitempty"`
	// Cause says why the switch went back to stable; empty otherwise.
	Cause Cause `json:"cause,omitempty"`
	// Evidence is what the judge has seen since the switch began.
	Evidence *Evidence `json:"evidence,omitempty"`
	// InsufficientSince is when the current step began to lack data; zero
	// while it has enough.
	InsufficientSince time.Time `json:"insufficient_since,omitzero"`
}

// LatencyPlan judges the candidate's latency histogram against the
// baseline's: it fails when the candidate's Quantile is worse than the
// baseline's by more than Relative and by more than Absolute.
type LatencyPlan struct {
	Quantile float64  `json:"quantile"`
	Relative float64  `json:"relative"`
	Absolute Duration `json:"absolute"`
	// Unit is the histogram's: seconds for Prometheus conventions, or
	// milliseconds for Envoy's upstream_rq_time.
	Unit Duration `json:"unit"`
}

// Validate rejects a latency plan that cannot be judged.
func (l LatencyPlan) Validate() error {
	switch {
	case !(l.Quantile > 0.5 && l.Quantile < 1):
		return fmt.Errorf("quantile: %v must be in (0.5, 1)", l.Quantile)
	case !(l.Relative >= 0 && l.Relative <= 10):
		return fmt.Errorf("relative: %v must be in [0, 10]", l.Relative)
	case l.Absolute < 0:
		return fmt.Errorf("absolute: negative")
	case l.Unit != Duration(time.Second) && l.Unit != Duration(time.Millisecond):
		return fmt.Errorf("unit: %s is not 1s or 1ms", l.Unit.D())
	}
	return nil
}

// Evidence is what the judge has seen since the switch began: exact counts
// per fleet and the sequential tests' state. It is kept with the switch
// (stored whenever the switch is), so another replica resumes the test
// where the last stored state left it.
type Evidence struct {
	Candidate Counts `json:"candidate"`
	Baseline  Counts `json:"baseline"`
	// ErrorsLogLR is the error test's state; ErrorsE its e-value: the
	// switch fails when it reaches 1/(1-Confidence).
	ErrorsLogLR []float64 `json:"errors_log_lr"`
	ErrorsE     float64   `json:"errors_e"`
	// ErrorsTest names the test version ErrorsLogLR belongs to.
	ErrorsTest string `json:"errors_test,omitempty"`
	// Step and StepCandidate/StepBaseline count requests at the current
	// step, for MinRequests.
	Step          int     `json:"step"`
	StepCandidate float64 `json:"step_candidate_requests"`
	StepBaseline  float64 `json:"step_baseline_requests"`
	// Latency is the latency test's state (opaque JSON) and its summary.
	Latency           []byte  `json:"latency,omitempty"`
	LatencyE          float64 `json:"latency_e,omitempty"`
	CandidateQuantile float64 `json:"candidate_quantile,omitempty"` // seconds
	BaselineQuantile  float64 `json:"baseline_quantile,omitempty"`  // seconds
}

// Counts are requests and errors since the switch began.
type Counts struct {
	Requests float64 `json:"requests"`
	Errors   float64 `json:"errors"`
}

// Cause is why a switch or roll went back to the stable colour: typed, so
// metrics and clients never parse a reason text.
type Cause string

const (
	CauseAnalysisFailed     Cause = "analysis_failed"
	CauseMetricsUnavailable Cause = "metrics_unavailable"
	CauseInsufficientData   Cause = "insufficient_data"
	CauseLatencyRegressed   Cause = "latency_regressed"
	CauseGateFailed         Cause = "gate_failed"
	CauseAborted            Cause = "aborted"
	CauseRollFailed         Cause = "roll_failed"
	// CauseConsumerRegressed: a release watching consumers
	// (release.watch_consumers) saw a service that calls the switching
	// one fail more than before the switch began.
	CauseConsumerRegressed Cause = "consumer_regressed"
)

// Causes lists every cause, in the order metrics show them.
var Causes = []Cause{CauseAnalysisFailed, CauseLatencyRegressed, CauseMetricsUnavailable, CauseInsufficientData, CauseAborted, CauseRollFailed, CauseGateFailed, CauseConsumerRegressed}

// Validate rejects an unknown cause ("" is none).
func (c Cause) Validate() error {
	if c == "" {
		return nil
	}
	for _, k := range Causes {
		if c == k {
			return nil
		}
	}
	return fmt.Errorf("unknown cause %q", c)
}

// Applied is the candidate's share the rollout has put in force.
func (r *Rollout) Applied() int {
	if r.Gate == GatePre {
		return 0
	}
	return r.Percent()
}

// Percent is the candidate's share at the current step.
func (r *Rollout) Percent() int { return r.Plan.Steps[r.Step] }

// UnmarshalJSON reads a plan as stored, strictly, including plans stored
// before switches counted from their own start: their retired "window" is
// dropped, and a plan without an insufficient-data budget gets the policy
// it ran under then (hold, with the unavailable budget as its clock), so a
// stored switch loads after an upgrade and keeps its behaviour.
func (p *Plan) UnmarshalJSON(b []byte) error {
	type plain Plan
	var v struct {
		plain
		Window Duration `json:"window"` // retired
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&v); err != nil {
		return err
	}
	*p = Plan(v.plain)
	if p.OnInsufficient == "" && p.InsufficientBudget == 0 {
		p.OnInsufficient, p.InsufficientBudget = OnUnavailableHold, max(p.UnavailableBudget, p.Interval)
	}
	return nil
}
