package rolling

import (
	"fmt"
	"time"

	"github.com/bgctl/bg/controlplane/model"
)

// forward moves a rolling or held roll on by one evaluation: drained old
// hosts leave, baked replacements are proven, the next slots start, and a
// roll with every slot replaced completes.
func forward(r *model.Roll, fleets model.Membership, now time.Time, healthy *bool) {
	from, to := fleets.Fleet(r.From), fleets.Fleet(r.To)
	if cause := regressed(r, to, healthy); cause != "" {
		fail(r, cause)
		back(r, fleets, now)
		return
	}
	p := r.Params
	for i := range r.Slots {
		s := &r.Slots[i]
		if s.State == model.SlotDraining && now.Sub(s.Since) >= p.DrainTimeout.D() {
			s.State, s.Since = model.SlotBaking, now
		}
		if s.State == model.SlotBaking && now.Sub(s.Since) >= p.Bake.D() {
			s.State, s.Since = model.SlotReplaced, now
		}
	}
	hold, cause := startNext(r, from, to, now)
	if cause != "" {
		fail(r, cause)
		back(r, fleets, now)
		return
	}
	if count(r, model.SlotReplaced) == len(r.Slots) {
		r.Phase, r.Reason, r.EndedAt = model.RollCompleted, "every slot replaced", now
		return
	}
	r.Phase, r.Reason = model.RollRolling, ""
	if hold != "" {
		r.Phase, r.Reason = model.RollHeld, hold
	}
}

// regressed says why the replacements on trial fail, or "". A replacement
// that stops passing while its slot drains or bakes fails the roll, and so
// does a failing verdict while any replacement takes traffic.
func regressed(r *model.Roll, to model.Fleet, healthy *bool) string {
	for _, s := range r.Slots {
		if (s.State == model.SlotDraining || s.State == model.SlotBaking) && !has(to, s.New) {
			return fmt.Sprintf("replacement %s of slot %s stopped passing while %s", s.New, s.Key, s.State)
		}
	}
	if healthy != nil && !*healthy && count(r, model.SlotDraining, model.SlotBaking, model.SlotReplaced) > 0 {
		return fmt.Sprintf("analysis failed: the %s replacements regressed", r.To)
	}
	return ""
}

// startNext drains pending slots in roll order while fewer than
// MaxUnavailable slots are unproven. It returns why the next slot waits, or
// the cause of a failure.
func startNext(r *model.Roll, from, to model.Fleet, now time.Time) (hold, cause string) {
	p := r.Params
	for count(r, model.SlotDraining, model.SlotBaking) < p.MaxUnavailable {
		i := first(r, model.SlotPending)
		if i < 0 {
			return "", ""
		}
		s := &r.Slots[i]
		if s.Since.IsZero() {
			s.Since = now // next in line: the replace timeout runs from here
		}
		n, ok := byKey(to, s.Key)
		if !ok {
			if now.Sub(s.Since) >= p.ReplaceTimeout.D() {
				return "", fmt.Sprintf("no passing replacement for slot %s within replace_timeout %s", s.Key, p.ReplaceTimeout.D())
			}
			return "waiting for a passing replacement for slot " + s.Key, ""
		}
		next := *s
		next.New, next.State, next.Since = n.ID, model.SlotDraining, now
		if why := violation(r, i, next, from, to, "draining"); why != "" {
			return why, ""
		}
		*s = next
	}
	return "", ""
}

func count(r *model.Roll, states ...model.SlotState) int {
	n := 0
	for _, s := range r.Slots {
		for _, st := range states {
			if s.State == st {
				n++
			}
		}
	}
	return n
}

func first(r *model.Roll, st model.SlotState) int {
	for i, s := range r.Slots {
		if s.State == st {
			return i
		}
	}
	return -1
}
