package rolling

import (
	"fmt"
	"time"

	"github.com/bgctl/bg/controlplane/model"
)

// fail turns a roll around; back walks it home, needing no verdict.
func fail(r *model.Roll, cause string) {
	r.Phase, r.Cause, r.Reason = model.RollRollingBack, cause, cause
	r.NoVerdict = nil
}

// back moves a rolling-back roll on by one evaluation: restored slots
// finish, draining slots flip at once (their old host still holds the
// sessions), slots whose replacement left are restored at once (their old
// host already serves again), then replaced slots restore in reverse roll
// order, at most MaxUnavailable at a time. With nothing left to restore the
// roll ends.
func back(r *model.Roll, fleets model.Membership, now time.Time) {
	from, to := fleets.Fleet(r.From), fleets.Fleet(r.To)
	p := r.Params
	var hold string
	holdOn := func(why string) {
		if hold == "" {
			hold = why
		}
	}
	for i := range r.Slots {
		s := &r.Slots[i]
		if s.State == model.SlotRestoring && now.Sub(s.Since) >= p.DrainTimeout.D() {
			s.State, s.Since = model.SlotRestored, now
		}
	}
	for i := range r.Slots {
		s := &r.Slots[i]
		switch {
		case s.ReplacementLeft(to) && has(from, s.Old):
			// Its old host already serves again (model.Serving) and nothing
			// drains: the slot is restored, whatever the order and
			// max_unavailable. A replacement that comes back is not served:
			// its sessions moved home once and stay there.
			s.State, s.Since = model.SlotRestored, now
		case s.State == model.SlotDraining && !has(from, s.Old):
			holdOn(waitingOld(*s)) // the replacement keeps the slot meanwhile
		case s.State == model.SlotDraining:
			s.State, s.Since = model.SlotRestoring, now
		}
	}
	for count(r, model.SlotRestoring, model.SlotDraining) < p.MaxUnavailable {
		i := last(r, model.SlotBaking, model.SlotReplaced)
		if i < 0 {
			break
		}
		s := &r.Slots[i]
		if !has(from, s.Old) {
			holdOn(waitingOld(*s))
			break
		}
		next := *s
		next.State, next.Since = model.SlotRestoring, now
		if why := violation(r, i, next, from, to, "restoring"); why != "" {
			holdOn(why)
			break
		}
		*s = next
	}
	if count(r, model.SlotDraining, model.SlotBaking, model.SlotReplaced, model.SlotRestoring) == 0 {
		r.Phase, r.Reason, r.EndedAt = model.RollRolledBack, r.Cause, now
		if r.ByHand {
			r.Phase = model.RollAborted
		}
		return
	}
	r.Reason = r.Cause
	if hold != "" {
		r.Reason += "; held: " + hold
	}
}

func waitingOld(s model.Slot) string {
	return fmt.Sprintf("waiting for old host %s of slot %s to pass", s.Old, s.Key)
}

// last is the latest slot in roll order in one of states, or -1.
func last(r *model.Roll, states ...model.SlotState) int {
	for i := len(r.Slots) - 1; i >= 0; i-- {
		for _, st := range states {
			if r.Slots[i].State == st {
				return i
			}
		}
	}
	return -1
}
