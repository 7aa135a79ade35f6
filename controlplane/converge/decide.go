// Package converge is declarative delivery (issue 17): each service with
// auto.enabled converges to its desired version. Decide is the pure
// decision; Loop (loop.go) feeds it on the leader and carries it out by
// starting the service's normal switch with actor bg:converge.
package converge

import (
	"fmt"
	"strings"
	"time"

	"github.com/bgctl/bg/controlplane/model"
)

// Kind is why a service is, or is not, converging now (model.ConvergeState,
// so the admin API carries it).
type Kind = model.ConvergeState

// The kinds, named here for the decision's readers.
const (
	NoDesire           = model.ConvergeNoDesire
	Converged          = model.ConvergeConverged
	NoFleetRunsVersion = model.ConvergeNoFleetRunsVersion
	MixedFleet         = model.ConvergeMixedFleet
	WaitingForCapacity = model.ConvergeWaitingForCapacity
	Settling           = model.ConvergeSettling
	WindowClosed       = model.ConvergeWindowClosed
	SwitchRunning      = model.ConvergeSwitchRunning
	Failed             = model.ConvergeFailed
	WaitingForGroup    = model.ConvergeWaitingForGroup
	Start              = model.ConvergeStart
)

// Fleet is one colour's passing members' versions, one entry per member.
type Fleet struct {
	Versions []string
}

// count is how many members run v, and how many run something else.
func (f Fleet) count(v string) (have, other int) {
	for _, x := range f.Versions {
		if x == v {
			have++
		} else {
			other++
		}
	}
	return have, other
}

// only is true when every member runs v (and there is one).
func (f Fleet) only(v string) bool {
	have, other := f.count(v)
	return have > 0 && other == 0
}

// Outcome is how a switch or roll ended.
type Outcome string

const (
	Promoted   Outcome = "promoted" // a switch promoted, a roll completed, an instant switch
	RolledBack Outcome = "rolled_back"
	Aborted    Outcome = "aborted"
)

// Ended is the service's latest switch or roll, once it ended.
type Ended struct {
	ID      string
	Outcome Outcome
	Reason  string
	At      time.Time // when it ended
	Started time.Time // when it started (zero: unknown, an instant switch)
}

// pendingAttempt prefixes the attempt the loop records before it starts a
// switch (the time follows): a leader that dies before it learns the
// switch's ID leaves it, and its successor still knows the switch that
// started after it as the loop's own.
const pendingAttempt = "pending@"

// PendingAttempt is the attempt recorded just before starting a switch at t.
func PendingAttempt(t time.Time) string { return pendingAttempt + t.UTC().Format(time.RFC3339Nano) }

// Attempted says whether attempt names the switch that ended: its ID, or
// a pending attempt recorded before that switch started.
func Attempted(attempt string, e Ended) bool {
	if attempt == "" {
		return false
	}
	if attempt == e.ID {
		return true
	}
	at, ok := strings.CutPrefix(attempt, pendingAttempt)
	if !ok || e.Started.IsZero() {
		return false
	}
	t, err := time.Parse(time.RFC3339Nano, at)
	return err == nil && !e.Started.Before(t)
}

// Ready is when the candidate fleet (Color running Version) became
// healthy and at capacity; the loop keeps it between rounds.
type Ready struct {
	Color   model.Color
	Version string
	Since   time.Time
}

// Input is everything a decision needs; it holds no clock but Now.
type Input struct {
	Now     time.Time
	Desired *model.Desired // nil: nothing desired
	// Serving is the colour at 100 % ("" while split).
	Serving model.Color
	// Running: a switch or roll runs (or traffic is split); InRelease: a
	// running release owns the service.
	Running   bool
	InRelease bool
	// Last is the service's latest switch, if it ended.
	Last   *Ended
	Fleets map[model.Color]Fleet
	// Ready is the previous round's readiness (nil: not ready).
	Ready *Ready
	// MinMembers: 0 means the serving fleet's size.
	MinMembers int
	Settle     time.Duration
	// WindowOpen, and when closed, when it opens next (zero: unknown).
	WindowOpen bool
	NextOpen   time.Time
}

// Decision is what to do, and why; Ready is carried to the next round.
type Decision struct {
	Kind       Kind
	Version    string
	To         model.Color   // Start, Settling, WaitingForCapacity, WindowClosed: the candidate
	Have, Want int           // WaitingForCapacity
	Left       time.Duration // Settling
	Until      time.Time     // WindowClosed ("" zero: unknown)
	Reason     string        // Failed: why
	Ready      *Ready
	// Record, when set, is a failure to store: the loop's attempt ended
	// without promoting.
	Record *model.DesiredFailure
}

// String is the one-line explanation `bg status` prints.
func (d Decision) String() string {
	switch d.Kind {
	case NoDesire:
		return "no version desired"
	case Converged:
		return "converged"
	case NoFleetRunsVersion:
		return "no idle fleet runs " + d.Version
	case MixedFleet:
		return fmt.Sprintf("%s fleet runs %s and other versions", d.To, d.Version)
	case WaitingForCapacity:
		return fmt.Sprintf("waiting for capacity (%d/%d passing on %s)", d.Have, d.Want, d.To)
	case Settling:
		return fmt.Sprintf("settling (%s left)", d.Left.Round(time.Second))
	case WindowClosed:
		if d.Until.IsZero() {
			return "window closed"
		}
		return "window closed until " + d.Until.UTC().Format(time.RFC3339)
	case SwitchRunning:
		return "a switch or release runs"
	case Failed:
		return "failed (" + d.Reason + ")"
	case WaitingForGroup:
		return "ready; waiting for " + d.Reason
	case Start:
		return "switching to " + string(d.To)
	}
	return string(d.Kind)
}

// Decide compares desired with serving. It never starts a switch while one
// runs, never retries a failed version, and starts only a fleet that has
// been healthy and at capacity for Settle, inside the windows.
func Decide(in Input) Decision {
	d := in.Desired
	if d == nil {
		return Decision{Kind: NoDesire}
	}
	v := d.Version
	out := Decision{Version: v}
	// The loop's own attempt ended: promoted is fine, anything else is
	// remembered so the version is not retried.
	if d.Failed == nil && in.Last != nil && Attempted(d.Attempt, *in.Last) {
		switch in.Last.Outcome {
		case RolledBack:
			f := &model.DesiredFailure{Cause: model.FailRolledBack, Reason: in.Last.Reason, SwitchID: in.Last.ID, At: in.Last.At}
			out.Kind, out.Reason, out.Record = Failed, failText(f), f
			return out
		case Aborted:
			f := &model.DesiredFailure{Cause: model.FailAborted, Reason: in.Last.Reason, SwitchID: in.Last.ID, At: in.Last.At}
			out.Kind, out.Reason, out.Record = Failed, failText(f), f
			return out
		}
	}
	if in.Running || in.InRelease || in.Serving == "" {
		out.Kind = SwitchRunning
		return out
	}
	if in.Fleets[in.Serving].only(v) {
		out.Kind = Converged
		return out
	}
	if d.Failed != nil {
		out.Kind, out.Reason = Failed, failText(d.Failed)
		return out
	}
	to := in.Serving.Other()
	out.To = to
	cand := in.Fleets[to]
	have, other := cand.count(v)
	if have == 0 {
		out.Kind, out.To = NoFleetRunsVersion, ""
		return out
	}
	if other > 0 {
		out.Kind = MixedFleet
		return out
	}
	want := in.MinMembers
	if want <= 0 {
		want = max(1, len(in.Fleets[in.Serving].Versions))
	}
	if have < want {
		out.Kind, out.Have, out.Want = WaitingForCapacity, have, want
		return out
	}
	ready := in.Ready
	if ready == nil || ready.Color != to || ready.Version != v {
		ready = &Ready{Color: to, Version: v, Since: in.Now}
	}
	out.Ready = ready
	if left := ready.Since.Add(in.Settle).Sub(in.Now); left > 0 {
		out.Kind, out.Left = Settling, left
		return out
	}
	if !in.WindowOpen {
		out.Kind, out.Until = WindowClosed, in.NextOpen
		return out
	}
	out.Kind = Start
	return out
}

func failText(f *model.DesiredFailure) string {
	what := "rolled back"
	switch f.Cause {
	case model.FailAborted:
		what = "aborted"
	case model.FailOverridden:
		what = "overridden"
	}
	if f.Reason != "" {
		what += ": " + f.Reason
	}
	return what
}

// GroupDecision is what a group desired together (bg desire --set) does.
type GroupDecision struct {
	// Start lists the members to switch, as one release ("" none yet).
	Start []string
	// Holder is the first member that keeps the group waiting or failed,
	// and Why its own decision.
	Holder string
	Why    Decision
}

// DecideGroup combines the members' own decisions: the group starts, as
// one release of the members still to switch, only once every member is
// ready (Start) or converged; a failed or busy member holds every member.
func DecideGroup(members []string, own map[string]Decision) GroupDecision {
	var g GroupDecision
	for _, kind := range []Kind{Failed, SwitchRunning} { // the strongest holds first
		for _, m := range members {
			if own[m].Kind == kind {
				return GroupDecision{Holder: m, Why: own[m]}
			}
		}
	}
	for _, m := range members {
		switch own[m].Kind {
		case Converged:
		case Start:
			g.Start = append(g.Start, m)
		default:
			return GroupDecision{Holder: m, Why: own[m]}
		}
	}
	return g
}
