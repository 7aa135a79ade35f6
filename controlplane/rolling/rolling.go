// Package rolling is the rolling-switch state machine of stateful services,
// which cannot run two full fleets: hosts move to the other colour one slot
// at a time, each replacement serving before its old host drains
// (make-before-break). Like rollout it does no I/O: given the traffic
// state, the fleets as they are now and one event, it returns the next
// state and the actions to carry out, so every transition is table-tested.
package rolling

import (
	"cmp"
	"errors"
	"reflect"
	"slices"
	"time"

	"github.com/bgctl/bg/controlplane/model"
)

// Action is something the caller must do after a transition: the one
// effect type both state machines speak (model.Effect).
type Action = model.Effect

const (
	// Persist the new state (check-and-set) before anything else.
	Persist = model.EffectPersist
	// PushEndpoints: the From cluster's serving set changed.
	PushEndpoints = model.EffectPushEndpoints
	// PushRoute: the traffic weights changed (only when a roll completes).
	PushRoute = model.EffectPushRoute
	// Confirm waits for every proxy to ACK a flip back and records the time.
	Confirm = model.EffectConfirm
)

// Errors for commands that do not apply.
var (
	ErrNotRunning = errors.New("no rolling switch is running")
	ErrRunning    = errors.New("a switch is already running")
)

// Event is an observation or a command.
type Event interface{ at() time.Time }

// Start begins a roll to To.
type Start struct {
	Now    time.Time
	To     model.Color
	Params model.RollParams
	Reason string
}

// Tick re-evaluates a roll. Verdict is the metrics verdict on the To
// fleet's replacements; rolls whose params are not Judged ignore it.
type Tick struct {
	Now     time.Time
	Verdict model.RollVerdict
}

// Abort walks a running roll back by hand; it ends aborted.
type Abort struct {
	Now    time.Time
	Reason string
}

func (e Start) at() time.Time { return e.Now }
func (e Tick) at() time.Time  { return e.Now }
func (e Abort) at() time.Time { return e.Now }

// Rollback is a roll's failure decided elsewhere (another replica's
// intent): the roll walks back as its own tick would have sent it.
type Rollback struct {
	Now    time.Time
	Reason string
}

func (e Rollback) at() time.Time { return e.Now }

// Decide applies one event, given the fleets' passing hosts now. The input
// is never modified. A nil action list means nothing changed.
func Decide(t model.Traffic, fleets model.Membership, ev Event) (model.Traffic, []Action, error) {
	if e, ok := ev.(Start); ok {
		return start(t, fleets, e)
	}
	if !t.RollRunning() {
		return t, nil, ErrNotRunning
	}
	r := *t.Roll
	r.Slots = slices.Clone(t.Roll.Slots)
	switch e := ev.(type) {
	case Tick:
		if r.Phase == model.RollRollingBack {
			back(&r, fleets, e.Now)
		} else {
			forward(&r, fleets, e.Now, e.Verdict)
		}
	case Rollback:
		if r.Phase == model.RollRollingBack {
			return t, nil, nil // already going back
		}
		fail(&r, orDefault(e.Reason, "rolled back by another replica's decision"))
		back(&r, fleets, e.Now)
	case Abort:
		if r.Phase != model.RollRollingBack {
			fail(&r, orDefault(e.Reason, "aborted by hand"))
		}
		r.ByHand = true
		back(&r, fleets, e.Now)
	default:
		return t, nil, errors.New("unknown event")
	}
	if same(t.Roll, &r) {
		return t, nil, nil
	}
	next, actions := commit(t, t.Roll, &r, fleets)
	return next, actions, nil
}

// commit records roll r on next, the state before, whose roll was before;
// it bumps the generation once and derives the actions.
func commit(next model.Traffic, before, r *model.Roll, fleets model.Membership) (model.Traffic, []Action) {
	next.Roll = r
	next.Generation++
	switch r.Phase {
	case model.RollCompleted:
		// The From hosts are gone: nothing is left to return to.
		next.Stable, next.Target, next.Phase = r.To, r.To, model.PhaseSwitched
		allOn(&next, r.To)
		return next, []Action{Persist, PushEndpoints, PushRoute}
	case model.RollRolledBack, model.RollAborted:
		next.Phase, next.Reason = model.PhaseRolledBack, r.Cause
		if r.Phase == model.RollAborted {
			next.Phase = model.PhaseAborted
		}
		allOn(&next, r.From)
		return next, []Action{Persist, PushEndpoints, Confirm}
	}
	from, to := fleets.Fleet(r.From), fleets.Fleet(r.To)
	if sameSet(model.Serving(before, from, to), model.Serving(r, from, to)) {
		return next, []Action{Persist}
	}
	return next, []Action{Persist, PushEndpoints}
}

// sameSet ignores order: proxies see a set, and a roll lists its hosts in
// slot order where a plain fleet lists them by ID.
func sameSet(a, b []model.ServingEndpoint) bool {
	byID := func(x, y model.ServingEndpoint) int { return cmp.Compare(x.Endpoint.ID, y.Endpoint.ID) }
	a, b = slices.Clone(a), slices.Clone(b)
	slices.SortStableFunc(a, byID)
	slices.SortStableFunc(b, byID)
	return slices.Equal(a, b)
}

func allOn(t *model.Traffic, c model.Color) {
	t.GreenPercent = 0
	if c == model.Green {
		t.GreenPercent = 100
	}
}

func same(a, b *model.Roll) bool { return reflect.DeepEqual(a, b) }

func orDefault(s, d string) string {
	if s == "" {
		return d
	}
	return s
}
