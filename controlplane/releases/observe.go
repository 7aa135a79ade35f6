package releases

import (
	"cmp"
	"time"

	"github.com/bgctl/bg/controlplane/model"
	"github.com/bgctl/bg/controlplane/release"
)

// Observe is what a member service's traffic state shows of its latest
// switch, as the release scheduler reads it (docs/releases.md, "Wiring"):
//
//   - a progressive switch progressing or paused is running; rolling
//     back, promoted, rolled back and aborted map as named, with its
//     cause (a rollback's cause defaults to analysis_failed for states
//     stored without one), and one promoted and then undone by an abort
//     by hand is aborted;
//   - a roll rolling or held is running, completed is promoted; rolling
//     back and rolled back have cause roll_failed, or are aborted when
//     the rollback came from an abort (ByHand);
//   - an instant switch is promoted at once, aborted once undone.
//
// Confirmed (the flip back is held by every proxy) is the rollout's
// ConfirmedAt, or else acked(); acked is asked only for a switch that went
// back and for a promoted switch a release started (the release's switch
// back is confirmed by it), so a caller may answer false cheaply where the
// scheduler does not read it.
func Observe(now time.Time, service string, t model.Traffic, acked func() bool) release.MemberObserved {
	o := release.MemberObserved{Now: now, Service: service, SwitchID: t.LatestSwitchID(), Release: t.Release}
	id := o.SwitchID
	back := func(phase release.SwitchPhase, cause model.Cause, reason string) {
		o.Phase, o.Cause, o.Reason = phase, cause, reason
	}
	switch {
	case id == "":
		return o // never switched (or only instantly, before IDs were stored)
	case t.Rollout != nil && t.Rollout.ID == id:
		r := t.Rollout
		o.To, o.Reason = r.To, cmp.Or(r.Reason, t.Reason)
		switch r.Phase {
		case model.RolloutProgressing, model.RolloutPaused:
			o.Phase = release.SwitchRunning
		case model.RolloutRollingBack:
			back(release.SwitchRollingBack, cmp.Or(r.Cause, model.CauseAnalysisFailed), o.Reason)
		case model.RolloutRolledBack:
			back(release.SwitchRolledBack, cmp.Or(r.Cause, model.CauseAnalysisFailed), o.Reason)
			o.Confirmed = !r.ConfirmedAt.IsZero() || acked()
		case model.RolloutAborted:
			back(release.SwitchAborted, model.CauseAborted, o.Reason)
			o.Confirmed = !r.ConfirmedAt.IsZero() || acked()
		case model.RolloutPromoted:
			if t.Phase == model.PhaseAborted {
				back(release.SwitchAborted, model.CauseAborted, t.Reason) // promoted, then aborted by hand
				o.Confirmed = acked()
				break
			}
			o.Phase = release.SwitchPromoted
			o.Confirmed = t.Release != "" && acked()
		}
	case t.Roll != nil && t.Roll.ID == id:
		r := t.Roll
		o.To, o.Reason = r.To, cmp.Or(r.Reason, cmp.Or(r.Cause, t.Reason))
		cause := model.CauseRollFailed
		if r.ByHand {
			cause = model.CauseAborted
		}
		switch r.Phase {
		case model.RollRolling, model.RollHeld:
			o.Phase = release.SwitchRunning
		case model.RollCompleted:
			o.Phase = release.SwitchPromoted
			o.Confirmed = t.Release != "" && acked()
		case model.RollRollingBack:
			back(release.SwitchRollingBack, cause, o.Reason)
			if r.ByHand {
				o.Phase = release.SwitchAborted // walking back after an abort: not confirmed yet
			}
		case model.RollRolledBack, model.RollAborted:
			back(release.SwitchRolledBack, cause, o.Reason)
			if r.ByHand || r.Phase == model.RollAborted {
				back(release.SwitchAborted, model.CauseAborted, o.Reason)
			}
			o.Confirmed = acked()
		}
	default: // an instant switch
		o.To, o.Reason = t.Target, t.Reason
		if t.Phase == model.PhaseAborted {
			back(release.SwitchAborted, model.CauseAborted, t.Reason)
			o.Confirmed = acked()
			break
		}
		o.Phase = release.SwitchPromoted
		o.Confirmed = t.Release != "" && acked()
	}
	return o
}
