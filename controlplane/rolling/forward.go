package rolling

import (
	"fmt"
	"time"

	"github.com/bgctl/bg/controlplane/model"
)

// forward moves a rolling or held roll on by one evaluation: drained old
// hosts leave, baked replacements are proven, the next slots start, and a
// roll with every slot replaced completes. A judged roll proves a bake and
// starts a slot only on a healthy verdict while replacements take traffic
// (awaitVerdict); drains end on time whatever the verdict.
func forward(r *model.Roll, fleets model.Membership, now time.Time, v model.RollVerdict) {
	from, to := fleets.Fleet(r.From), fleets.Fleet(r.To)
	if cause := regressed(r, to, v); cause != "" {
		fail(r, cause)
		back(r, fleets, now)
		return
	}
	waiting, cause := awaitVerdict(r, v, now)
	if cause != "" {
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
		if waiting == "" && s.State == model.SlotBaking && now.Sub(s.Since) >= p.Bake.D() {
			s.State, s.Since = model.SlotReplaced, now
		}
	}
	if waiting != "" {
		r.Phase, r.Reason = model.RollHeld, waiting
		return
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
// that stops passing while its slot drains, bakes or is replaced fails the
// roll (its old host already serves again: model.Serving), and so does a
// regressed verdict on a judged roll while any replacement takes traffic.
func regressed(r *model.Roll, to model.Fleet, v model.RollVerdict) string {
	for _, s := range r.Slots {
		if s.ReplacementLeft(to) {
			return fmt.Sprintf("replacement %s of slot %s stopped passing while %s", s.New, s.Key, s.State)
		}
	}
	if judging(r) && v.Outcome == model.VerdictRegressed {
		cause := fmt.Sprintf("analysis failed: the %s replacements regressed", r.To)
		if v.Reason != "" {
			cause += ": " + v.Reason
		}
		return cause
	}
	return ""
}

// judging: the roll's verdicts count now. They do for a judged roll while
// any replacement takes traffic; before that there is nothing to judge.
func judging(r *model.Roll) bool {
	return r.Params.Judged && count(r, model.SlotDraining, model.SlotBaking, model.SlotReplaced) > 0
}

// awaitVerdict applies a judged roll's verdict other than regressed. It
// returns why the roll holds ("" when it may go on: healthy, or nothing to
// judge) or the cause of a failure (metrics unavailable past the budget
// under OnUnavailableRollback). Insufficient and unavailable metrics (a
// tick without a verdict counts as unavailable) set r.NoVerdict, whose
// reason and start are kept while the outcome stays the same, so a long
// hold is stored once, not at every tick.
func awaitVerdict(r *model.Roll, v model.RollVerdict, now time.Time) (hold, cause string) {
	if !judging(r) || v.Outcome == model.VerdictHealthy {
		r.NoVerdict = nil
		return "", ""
	}
	if v.Outcome != model.VerdictInsufficient {
		v.Outcome = model.VerdictUnavailable
		if v.Reason == "" {
			v.Reason = "no verdict"
		}
	}
	if r.NoVerdict == nil || r.NoVerdict.Outcome != v.Outcome {
		r.NoVerdict = &model.NoVerdict{Outcome: v.Outcome, Reason: v.Reason, Since: now}
	}
	nv := *r.NoVerdict
	since := nv.Since.UTC().Format(time.RFC3339)
	if nv.Outcome == model.VerdictInsufficient {
		return "holding: insufficient metrics since " + since + ": " + nv.Reason, ""
	}
	hold = "holding: metrics unavailable since " + since + ": " + nv.Reason
	down := now.Sub(nv.Since)
	if down < r.Params.UnavailableBudget.D() {
		return hold, ""
	}
	if r.Params.OnUnavailable == model.OnUnavailableHold {
		return hold + " (budget spent; policy hold)", ""
	}
	// OnUnavailableRollback, the default.
	r.NoVerdict = nil
	return "", fmt.Sprintf("metrics unavailable for %s: %s", down.Round(time.Second), nv.Reason)
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
