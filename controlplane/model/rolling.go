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
	}
	return nil
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
