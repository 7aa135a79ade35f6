package model

import "fmt"

// Phase says where a service's traffic stands.
type Phase string

const (
	// PhaseStable: all traffic on the stable colour, no switch under way.
	PhaseStable Phase = "stable"
	// PhaseSwitched: traffic moved to Target; Stable is kept as the rollback target.
	PhaseSwitched Phase = "switched"
	// PhaseAborted: a switch was undone by hand; traffic is back on Stable.
	PhaseAborted Phase = "aborted"
	// PhaseSwitching: a progressive switch (Rollout) is under way.
	PhaseSwitching Phase = "switching"
	// PhaseRolledBack: a progressive switch failed its analysis and traffic is back on Stable.
	PhaseRolledBack Phase = "rolled_back"
)

// Traffic is the persisted traffic state of one service.
type Traffic struct {
	// Stable is the colour an abort returns to.
	Stable Color `json:"stable"`
	// Target is the colour of the last switch ("" if none yet).
	Target Color `json:"target,omitempty"`
	// GreenPercent is green's share of traffic; blue has the rest.
	GreenPercent int   `json:"green_percent"`
	Phase        Phase `json:"phase"`
	// Generation increases by one on every change of this service's state.
	Generation uint64 `json:"generation"`
	// Term is the leader term (lock index) of the replica that wrote this
	// state; set by the store when writes are fenced.
	Term uint64 `json:"term,omitempty"`
	// Reason records why the last change was made.
	Reason string `json:"reason,omitempty"`
	// Rollout is the last progressive switch, running or ended.
	Rollout *Rollout `json:"rollout,omitempty"`
	// Roll is the last host-by-host switch of a stateful service.
	Roll *Roll `json:"roll,omitempty"`
	// Preview turns canary pools and mirroring on towards this colour
	// before a switch starts ("" = off). A switch start clears it.
	Preview Color `json:"preview,omitempty"`
	// SwitchID names the latest switch of any kind: a progressive
	// switch's Rollout.ID, a roll's Roll.ID, or gen-N for an instant
	// switch stored at generation N. Every switch start sets it; states
	// stored before it existed have none (LatestSwitchID falls back).
	SwitchID string `json:"switch_id,omitempty"`
	// Release is the release that started the latest switch ("" when it
	// was started alone).
	Release string `json:"release,omitempty"`
}

// LatestSwitchID is the ID of the service's latest switch: SwitchID, or
// for a state stored before switches recorded it, its rollout's or roll's
// ID ("" when it never had one, or only instant switches then).
func (t Traffic) LatestSwitchID() string {
	switch {
	case t.SwitchID != "":
		return t.SwitchID
	case t.Rollout != nil:
		return t.Rollout.ID
	case t.Roll != nil:
		return t.Roll.ID
	}
	return ""
}

// InstantSwitchID names an instant switch stored at generation gen.
func InstantSwitchID(gen uint64) string { return fmt.Sprintf("gen-%d", gen) }

// Candidate is the colour pools and mirrored requests go to: the target
// of a running progressive switch, else the previewed colour, else none.
func (t Traffic) Candidate() Color {
	if t.ProgressiveRunning() {
		return t.Rollout.To
	}
	if t.RollRunning() {
		return ""
	}
	return t.Preview
}

// InitialTraffic is the state of a service bg has never seen: all on blue.
func InitialTraffic() Traffic {
	return Traffic{Stable: Blue, GreenPercent: 0, Phase: PhaseStable, Generation: 1}
}

// ProgressiveRunning is true while a progressive switch drives this service.
func (t Traffic) ProgressiveRunning() bool { return t.Rollout != nil && t.Rollout.Phase.Running() }

// RollRunning is true while a roll (host-by-host switch) drives this service.
func (t Traffic) RollRunning() bool { return t.Roll != nil && t.Roll.Phase.Running() }

// Percent returns the share of traffic of one colour.
func (t Traffic) Percent(c Color) int {
	if c == Green {
		return t.GreenPercent
	}
	return 100 - t.GreenPercent
}

// Serving returns the colour holding all traffic, or "" during a split.
func (t Traffic) Serving() Color {
	switch t.GreenPercent {
	case 0:
		return Blue
	case 100:
		return Green
	}
	return ""
}

// Validate rejects states that cannot be served.
func (t Traffic) Validate() error {
	if _, err := ParseColor(string(t.Stable)); err != nil {
		return fmt.Errorf("stable: %w", err)
	}
	if t.Target != "" {
		if _, err := ParseColor(string(t.Target)); err != nil {
			return fmt.Errorf("target: %w", err)
		}
	}
	if t.Preview != "" {
		if _, err := ParseColor(string(t.Preview)); err != nil {
			return fmt.Errorf("preview: %w", err)
		}
	}
	if t.GreenPercent < 0 || t.GreenPercent > 100 {
		return fmt.Errorf("green_percent %d out of range 0..100", t.GreenPercent)
	}
	switch t.Phase {
	case PhaseStable, PhaseSwitched, PhaseAborted, PhaseSwitching, PhaseRolledBack:
	default:
		return fmt.Errorf("unknown phase %q", t.Phase)
	}
	if r := t.Rollout; r != nil {
		if err := r.Plan.Validate(); err != nil {
			return fmt.Errorf("rollout.plan.%w", err)
		}
		if r.Step < 0 || r.Step >= len(r.Plan.Steps) {
			return fmt.Errorf("rollout.step %d out of range", r.Step)
		}
		if _, err := ParseColor(string(r.To)); err != nil || r.To != t.Target {
			return fmt.Errorf("rollout to %q does not match target %q", r.To, t.Target)
		}
		if r.Phase.Running() && t.Percent(r.To) != r.Applied() {
			return fmt.Errorf("rollout step %d (%d%%) does not match %s's share %d%%", r.Step, r.Applied(), r.To, t.Percent(r.To))
		}
		if r.Gate != "" && (r.Gate != GatePre && r.Gate != GateStep && r.Gate != GatePost || !r.Phase.Running()) {
			return fmt.Errorf("rollout gate %q pending in phase %q", r.Gate, r.Phase)
		}
		if r.From == r.To || r.From != t.Stable {
			return fmt.Errorf("rollout from %q to %q does not match stable %q", r.From, r.To, t.Stable)
		}
		switch r.Phase {
		case RolloutProgressing, RolloutPaused, RolloutRollingBack, RolloutPromoted, RolloutRolledBack, RolloutAborted:
		default:
			return fmt.Errorf("unknown rollout phase %q", r.Phase)
		}
		if err := r.Cause.Validate(); err != nil {
			return fmt.Errorf("rollout.cause: %w", err)
		}
		if r.Phase.Running() != (t.Phase == PhaseSwitching) {
			return fmt.Errorf("rollout phase %q contradicts traffic phase %q", r.Phase, t.Phase)
		}
	} else if t.Roll == nil && (t.Phase == PhaseSwitching || t.Phase == PhaseRolledBack) {
		return fmt.Errorf("phase %q needs a rollout or a roll", t.Phase)
	}
	if r := t.Roll; r != nil {
		if t.Rollout != nil && t.Rollout.Phase.Running() && r.Phase.Running() {
			return fmt.Errorf("a rollout and a roll cannot run at once")
		}
		if err := r.Validate(); err != nil {
			return fmt.Errorf("roll: %w", err)
		}
		if r.Phase.Running() && (t.Phase != PhaseSwitching || r.From != t.Stable) {
			return fmt.Errorf("running roll from %q contradicts phase %q, stable %q", r.From, t.Phase, t.Stable)
		}
	}
	if t.Generation == 0 {
		return fmt.Errorf("generation must be at least 1")
	}
	if t.Release != "" && t.SwitchID == "" {
		return fmt.Errorf("release %q: set without a switch_id", t.Release)
	}
	if id := t.SwitchID; id != "" && (t.Rollout != nil || t.Roll != nil) &&
		(t.Rollout == nil || t.Rollout.ID != id) && (t.Roll == nil || t.Roll.ID != id) {
		// A rollout or roll in the state is the latest switch: an instant
		// switch or another start replaces it.
		return fmt.Errorf("switch_id %q names neither the rollout nor the roll", id)
	}
	return nil
}
