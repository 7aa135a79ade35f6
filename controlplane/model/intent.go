package model

import (
	"fmt"
	"time"
)

// Intent is a rollback a replica decided but could not store as the
// service's state (it does not lead, or lost its lock): written where any
// replica may write, so the leader carries it out and no replica stores
// the switch or roll going forward while it stands.
type Intent struct {
	// ID is the switch (rollout) or roll it rolls back.
	ID     string    `json:"id"`
	Roll   bool      `json:"roll,omitempty"` // ID names a roll, not a progressive switch
	Cause  Cause     `json:"cause"`
	Reason string    `json:"reason"`
	By     string    `json:"by"` // the replica that decided it
	At     time.Time `json:"at"` // when it was decided (detection time)
}

// Validate rejects an intent that names nothing or has no known cause.
func (in Intent) Validate() error {
	if in.ID == "" {
		return fmt.Errorf("intent: no switch or roll id")
	}
	if in.Cause == "" {
		return fmt.Errorf("intent: no cause")
	}
	return in.Cause.Validate()
}

// IntentOf is the intent that carries t's rollback: t serves a switch or
// roll going back to stable that bg decided (not an abort by hand).
func IntentOf(t Traffic, by string) (Intent, bool) {
	if r := t.Rollout; r != nil && (r.Phase == RolloutRolledBack || r.Phase == RolloutRollingBack) {
		return Intent{ID: r.ID, Cause: r.Cause, Reason: r.Reason, By: by, At: r.DetectedAt}, r.Cause != ""
	}
	if r := t.Roll; r != nil && (r.Phase == RollRolledBack || r.Phase == RollRollingBack) && !r.ByHand {
		return Intent{ID: r.ID, Roll: true, Cause: CauseRollFailed, Reason: r.Cause, By: by}, true
	}
	return Intent{}, false
}

// Forward is true when t runs a switch or roll that is not going back:
// the states a standing intent forbids storing.
func (t Traffic) Forward() bool {
	if r := t.Rollout; r != nil && r.Phase.Running() && r.Phase != RolloutRollingBack {
		return true
	}
	if r := t.Roll; r != nil && r.Phase.Running() && r.Phase != RollRollingBack {
		return true
	}
	return false
}

// EndsForward is true when t is a switch promoted or a roll completed: a
// switch or roll ending forward. While a rollback intent stands such a
// state must not be stored either: the intent may have been written, by a
// replica that decided the rollback, moments before the leader finished the
// switch, and storing the finish would delete it, undoing that decision.
// (A stale intent, one whose switch ended before it was written, is
// removed by the leader first; the write is then retried.)
func (t Traffic) EndsForward() bool {
	if r := t.Rollout; r != nil && r.Phase == RolloutPromoted {
		return true
	}
	if r := t.Roll; r != nil && r.Phase == RollCompleted {
		return true
	}
	return false
}
