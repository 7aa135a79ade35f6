package model

import (
	"fmt"
	"time"
)

// Strategy is how a service changes fleets.
type Strategy string

const (
	// StrategyBlueGreen: two full fleets, traffic moves by weight.
	StrategyBlueGreen Strategy = "blue-green"
	// StrategyRolling: stateful services; hosts are replaced one slot at a time.
	StrategyRolling Strategy = "rolling"
)

// Affinity keeps a session on one host: requests with the same header (or
// cookie, Envoy only) hash to the same host on a ring.
type Affinity struct {
	Header string `json:"header,omitempty"`
	Cookie string `json:"cookie,omitempty"`
}

// SlotState is where one slot's hosts stand in a roll. The old host leaves
// serving → draining → drained; its replacement is proven while baking and
// ends replaced. A rollback walks back: restoring → restored.
type SlotState string

const (
	SlotPending   SlotState = "pending"   // old host serving, not touched yet
	SlotDraining  SlotState = "draining"  // old host DRAINING, replacement serving
	SlotBaking    SlotState = "baking"    // old host removed, replacement proving itself
	SlotReplaced  SlotState = "replaced"  // replacement proven
	SlotRestoring SlotState = "restoring" // rollback: replacement DRAINING, old host serving
	SlotRestored  SlotState = "restored"  // rollback done for this slot
)

// Slot pairs an old host with its replacement. Both carry the same slot
// key, which is also their ring-hash key, so a session of the old host lands
// on its replacement and on no other host.
type Slot struct {
	Key   string    `json:"key"`
	Old   string    `json:"old"`           // endpoint ID in the From fleet
	New   string    `json:"new,omitempty"` // endpoint ID in the To fleet, once known
	State SlotState `json:"state"`
	Since time.Time `json:"since"`
}

// RollParams are a roll's velocity and safety settings.
type RollParams struct {
	MaxUnavailable int      `json:"max_unavailable"` // slots draining at once
	MinAvailable   int      `json:"min_available"`   // serving hosts never fewer than this
	DrainTimeout   Duration `json:"drain_timeout"`   // how long an old host drains
	Bake           Duration `json:"bake"`            // how long a replacement must stay healthy
	ReplaceTimeout Duration `json:"replace_timeout"` // how long to wait for a replacement to pass
	Interval       Duration `json:"interval"`        // how often the roll is re-evaluated

	// Judged: metrics judge the replacements against the old hosts (a
	// metrics source is configured whose queries tell them apart). While
	// any replacement takes traffic, a bake then completes, and a slot
	// starts, only on a healthy verdict; insufficient or unavailable
	// metrics hold the roll, and unavailable ones for UnavailableBudget
	// apply OnUnavailable (OnUnavailableRollback or OnUnavailableHold).
	// Unjudged rolls bake on time and Consul health alone, and ignore
	// verdicts: that is said here, never inferred from a missing verdict.
	Judged            bool     `json:"judged,omitempty"`
	UnavailableBudget Duration `json:"unavailable_budget,omitempty"`
	OnUnavailable     string   `json:"on_unavailable,omitempty"`
}

// Validate rejects params a roll cannot run with.
func (p RollParams) Validate() error {
	switch {
	case p.MaxUnavailable < 1:
		return fmt.Errorf("max_unavailable: must be at least 1")
	case p.MinAvailable < 1:
		return fmt.Errorf("min_available: must be at least 1")
	case p.DrainTimeout < 0 || p.Bake < 0:
		return fmt.Errorf("drain_timeout and bake must not be negative")
	case p.ReplaceTimeout.D() < time.Second:
		return fmt.Errorf("replace_timeout: must be at least 1s")
	case p.Interval.D() < 100*time.Millisecond:
		return fmt.Errorf("interval: must be at least 100ms")
	case !p.Judged:
		return nil
	case p.UnavailableBudget < p.Interval:
		return fmt.Errorf("unavailable_budget: %s is shorter than the interval (%s)", p.UnavailableBudget.D(), p.Interval.D())
	case p.OnUnavailable != OnUnavailableRollback && p.OnUnavailable != OnUnavailableHold:
		return fmt.Errorf("on_unavailable: %q is not %s or %s", p.OnUnavailable, OnUnavailableRollback, OnUnavailableHold)
	}
	return nil
}

// RollOutcome is the metrics verdict on a roll's replacements at one tick.
type RollOutcome string

const (
	// VerdictNone: no verdict was given. A judged roll holds on it as on
	// unavailable metrics.
	VerdictNone RollOutcome = ""
	// VerdictHealthy: the replacements are not worse than the old hosts.
	VerdictHealthy RollOutcome = "healthy"
	// VerdictRegressed: the replacements are worse; the roll walks back.
	VerdictRegressed RollOutcome = "regressed"
	// VerdictInsufficient: too little traffic to judge; never healthy.
	VerdictInsufficient RollOutcome = "insufficient"
	// VerdictUnavailable: the metrics could not be read or judged.
	VerdictUnavailable RollOutcome = "unavailable"
)

// RollVerdict is one tick's verdict on the To fleet's replacements, and why.
type RollVerdict struct {
	Outcome RollOutcome
	Reason  string
}

// NoVerdict is why a judged roll holds: replacements take traffic and the
// metrics give no verdict on them. Outcome is VerdictInsufficient or
// VerdictUnavailable; Since and Reason are from the first tick of the run
// (the unavailable budget counts from Since).
type NoVerdict struct {
	Outcome RollOutcome `json:"outcome"`
	Reason  string      `json:"reason"`
	Since   time.Time   `json:"since"`
}

// RollPhase says where a roll stands.
type RollPhase string

const (
	RollRolling     RollPhase = "rolling"
	RollHeld        RollPhase = "held" // an invariant or a missing replacement stops it; Reason says which
	RollRollingBack RollPhase = "rolling_back"
	RollCompleted   RollPhase = "completed"
	RollRolledBack  RollPhase = "rolled_back"
	RollAborted     RollPhase = "aborted"
)

// Running is true while the roll still changes hosts.
func (p RollPhase) Running() bool {
	return p == RollRolling || p == RollHeld || p == RollRollingBack
}

// Roll is a host-by-host switch of a stateful service.
type Roll struct {
	ID        string     `json:"id"`
	From      Color      `json:"from"`
	To        Color      `json:"to"`
	Params    RollParams `json:"params"`
	Phase     RollPhase  `json:"phase"`
	Slots     []Slot     `json:"slots"` // in roll order
	Reason    string     `json:"reason,omitempty"`
	StartedAt time.Time  `json:"started_at"`
	EndedAt   time.Time  `json:"ended_at,omitzero"`

	// Cause is why a rollback began; while it is held, Reason adds why.
	Cause string `json:"cause,omitempty"`
	// ByHand: the rollback came from an abort, so it ends aborted.
	ByHand bool `json:"by_hand,omitempty"`
	// NoVerdict is set while a judged roll holds for want of a verdict.
	NoVerdict *NoVerdict `json:"no_verdict,omitempty"`
}

// Validate rejects rolls that cannot be served.
func (r *Roll) Validate() error {
	if _, err := ParseColor(string(r.From)); err != nil {
		return fmt.Errorf("from: %w", err)
	}
	if _, err := ParseColor(string(r.To)); err != nil || r.To == r.From {
		return fmt.Errorf("to: %q must be the other colour", r.To)
	}
	if err := r.Params.Validate(); err != nil {
		return err
	}
	switch r.Phase {
	case RollRolling, RollHeld, RollRollingBack, RollCompleted, RollRolledBack, RollAborted:
	default:
		return fmt.Errorf("unknown phase %q", r.Phase)
	}
	if nv := r.NoVerdict; nv != nil {
		if nv.Outcome != VerdictInsufficient && nv.Outcome != VerdictUnavailable {
			return fmt.Errorf("no_verdict: outcome %q is not %s or %s", nv.Outcome, VerdictInsufficient, VerdictUnavailable)
		}
		if nv.Since.IsZero() {
			return fmt.Errorf("no_verdict: since is missing")
		}
	}
	seen := map[string]bool{}
	for i, s := range r.Slots {
		if s.Key == "" || seen[s.Key] {
			return fmt.Errorf("slots[%d]: empty or duplicate key %q", i, s.Key)
		}
		seen[s.Key] = true
		switch s.State {
		case SlotPending, SlotRestored:
		case SlotDraining, SlotBaking, SlotReplaced, SlotRestoring:
			if s.New == "" {
				return fmt.Errorf("slots[%d]: state %s needs a replacement", i, s.State)
			}
		default:
			return fmt.Errorf("slots[%d]: unknown state %q", i, s.State)
		}
	}
	return nil
}

// Serving is what the From colour's cluster carries while roll r runs, from
// the roll state and the fleets as they are now alone: ServingSet, except
// that a running roll's slot whose replacement has left the To fleet
// (deregistered, critical) serves its old host again, not draining, if the
// old host is still in the From fleet. So the EDS update that drops a
// replacement is the one that returns its old host to the slot's ring-hash
// key (make-before-break on the way back), and no other slot's host changes
// in it; the roll's next tick then records the slot's new state.
func Serving(r *Roll, from, to Fleet) []ServingEndpoint {
	return ServingSet(r.asServed(to), from, to)
}

// asServed is r with every slot whose replacement left to seen as its old
// host's again; r itself when there is none (or r is nil or has ended).
func (r *Roll) asServed(to Fleet) *Roll {
	if r == nil || !r.Phase.Running() {
		return r
	}
	var out *Roll
	for i, s := range r.Slots {
		if !s.ReplacementLeft(to) {
			continue
		}
		if out == nil {
			c := *r
			c.Slots = append([]Slot(nil), r.Slots...)
			out = &c
		}
		out.Slots[i].State = SlotPending
	}
	if out == nil {
		return r
	}
	return out
}

// ReplacementLeft: the slot's replacement took traffic (the slot drains,
// bakes or was replaced) and is no longer in the To fleet.
func (s Slot) ReplacementLeft(to Fleet) bool {
	switch s.State {
	case SlotDraining, SlotBaking, SlotReplaced:
	default:
		return false
	}
	for _, e := range to.Endpoints {
		if e.ID == s.New {
			return false
		}
	}
	return true
}
