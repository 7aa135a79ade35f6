package model

import (
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
	Steps             []int    `json:"steps"` // candidate percent per step; the last is 100
	Bake              Duration `json:"bake"`
	Interval          Duration `json:"interval"`
	Window            Duration `json:"window"`
	MinRequests       float64  `json:"min_requests"`
	Confidence        float64  `json:"confidence"`
	Margin            float64  `json:"margin"`
	UnavailableBudget Duration `json:"unavailable_budget"`
	OnUnavailable     string   `json:"on_unavailable"`
	Rollback          string   `json:"rollback"`
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
	case p.Window.D() < p.Interval.D():
		return fmt.Errorf("window: %s is shorter than the interval %s", p.Window.D(), p.Interval.D())
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
	case p.Rollback != RollbackInstant && p.Rollback != RollbackGradual:
		return fmt.Errorf("rollback: %q is not instant or gradual", p.Rollback)
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
}

// Cause is why a switch or roll went back to the stable colour: typed, so
// metrics and clients never parse a reason text.
type Cause string

const (
	CauseAnalysisFailed     Cause = "analysis_failed"
	CauseMetricsUnavailable Cause = "metrics_unavailable"
	CauseGateFailed         Cause = "gate_failed"
	CauseAborted            Cause = "aborted"
	CauseRollFailed         Cause = "roll_failed"
)

// Causes lists every cause, in the order metrics show them.
var Causes = []Cause{CauseAnalysisFailed, CauseMetricsUnavailable, CauseAborted, CauseRollFailed, CauseGateFailed}

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
