package rolling

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/bgctl/bg/controlplane/model"
)

// world is what a simulated roll sees.
type world struct {
	fleets  func(d time.Duration) model.Membership // passing hosts d after t0
	verdict func(r *model.Roll) model.RollVerdict  // the verdict on the To fleet; nil func: none
	abort   func(r *model.Roll) bool               // abort by hand now (once)
}

// trace is what a simulated roll did.
type trace struct {
	last    model.Traffic
	reasons []string                     // every roll reason, in order
	entered map[model.SlotState][]string // slot keys in the order they entered each state
	maxBusy int                          // most slots draining or baking at once
	endedAt time.Duration
	causeAt time.Duration // when the roll turned back
}

// simulate starts a roll at t0 and ticks every interval until it ends,
// checking every step: the result validates, the actions match the change
// of serving set, no slot key is served by two hosts, at most
// MaxUnavailable hosts drain, and no step leaves fewer than MinAvailable
// hosts serving unless the fleets themselves fell short.
func simulate(t *testing.T, to model.Color, n int, pr model.RollParams, w world) trace {
	t.Helper()
	tr := trace{entered: map[model.SlotState][]string{}}
	cur := stable(to.Other())
	aborted := false
	for d := time.Duration(0); ; d += every {
		if d > 2*time.Hour {
			t.Fatalf("roll did not end: %s", dump(cur))
		}
		fl := w.fleets(d)
		var ev Event = Tick{Now: at(d)}
		switch {
		case d == 0:
			ev = Start{Now: t0, To: to, Params: pr}
		case w.abort != nil && !aborted && w.abort(cur.Roll):
			ev, aborted = Abort{Now: at(d), Reason: "by hand"}, true
		case w.verdict != nil:
			ev = Tick{Now: at(d), Verdict: w.verdict(cur.Roll)}
		}
		snap := deepCopy(cur)
		out, acts, err := Decide(cur, fl, ev)
		if err != nil {
			t.Fatalf("at %s: %v", d, err)
		}
		checkOut(t, cur, snap, out, acts)
		checkStep(t, d, cur, out, acts, fl, n)
		record(&tr, cur, out, d)
		cur = out
		if !cur.RollRunning() {
			tr.last, tr.endedAt = cur, d
			return tr
		}
	}
}

func checkStep(t *testing.T, d time.Duration, before, after model.Traffic, acts []Action, fl model.Membership, n int) {
	t.Helper()
	r := after.Roll
	from, to := fl.Fleet(r.From), fl.Fleet(r.To)
	was, now := model.Serving(before.Roll, from, to), model.Serving(r, from, to)
	if !sameSet(was, now) && !slices.Contains(acts, PushEndpoints) {
		t.Errorf("at %s: serving set changed without push_endpoints", d)
	}
	servingWas, _ := counts(was)
	serving, drainingN := counts(now)
	if drainingN > r.Params.MaxUnavailable {
		t.Errorf("at %s: %d hosts draining, max_unavailable %d", d, drainingN, r.Params.MaxUnavailable)
	}
	if serving < r.Params.MinAvailable && serving < servingWas {
		t.Errorf("at %s: step left %d serving hosts (was %d), min_available %d", d, serving, servingWas, r.Params.MinAvailable)
	}
	if len(from.Endpoints) == n && len(to.Endpoints) == n && serving < r.Params.MinAvailable {
		t.Errorf("at %s: %d serving hosts with full fleets, min_available %d", d, serving, r.Params.MinAvailable)
	}
	keys := map[string]string{}
	for _, e := range now {
		if e.Draining {
			continue
		}
		if other, ok := keys[e.Endpoint.SlotKey()]; ok {
			t.Errorf("at %s: slot %s served by %s and %s", d, e.Endpoint.SlotKey(), other, e.Endpoint.ID)
		}
		keys[e.Endpoint.SlotKey()] = e.Endpoint.ID
	}
}

func counts(set []model.ServingEndpoint) (serving, draining int) {
	for _, e := range set {
		if e.Draining {
			draining++
		} else {
			serving++
		}
	}
	return serving, draining
}

func record(tr *trace, before, after model.Traffic, d time.Duration) {
	r := after.Roll
	if len(tr.reasons) == 0 || tr.reasons[len(tr.reasons)-1] != r.Reason {
		tr.reasons = append(tr.reasons, r.Reason)
	}
	if r.Cause != "" && tr.causeAt == 0 {
		tr.causeAt = d
	}
	for i, s := range r.Slots {
		if before.Roll == nil || before.Roll.Slots[i].State != s.State {
			tr.entered[s.State] = append(tr.entered[s.State], s.Key)
		}
	}
	tr.maxBusy = max(tr.maxBusy, count(r, model.SlotDraining, model.SlotBaking))
}

func steady(to model.Color, n int) func(time.Duration) model.Membership {
	return func(time.Duration) model.Membership { return full(to, n) }
}

func keys(ns ...int) []string {
	var out []string
	for _, n := range ns {
		out = append(out, fmt.Sprintf("s%d", n))
	}
	return out
}

func saw(reasons []string, has string) bool {
	return slices.ContainsFunc(reasons, func(r string) bool { return strings.Contains(r, has) })
}

func TestScenarioCompletes(t *testing.T) {
	for _, to := range model.Colors {
		t.Run("to "+string(to), func(t *testing.T) {
			tr := simulate(t, to, 3, withMin(params(), 3), world{fleets: steady(to, 3)})
			if got := tr.last.Roll.Phase; got != model.RollCompleted {
				t.Fatalf("phase %s, want completed", got)
			}
			if tr.last.Stable != to || tr.last.Serving() != to || tr.last.Phase != model.PhaseSwitched {
				t.Errorf("traffic %s", dump(tr.last))
			}
			for _, st := range []model.SlotState{draining, baking, replaced} {
				if got := tr.entered[st]; !slices.Equal(got, keys(1, 2, 3)) {
					t.Errorf("entered %s: %v", st, got)
				}
			}
			if tr.maxBusy != 1 {
				t.Errorf("%d slots unproven at once, want 1", tr.maxBusy)
			}
			// each slot: drain 30s, bake 60s; make-before-break serialises them
			if tr.endedAt != 3*(drain+bake) {
				t.Errorf("ended after %s", tr.endedAt)
			}
		})
	}
}

func TestScenarioFailsOnThirdSlot(t *testing.T) {
	for _, to := range model.Colors {
		t.Run("to "+string(to), func(t *testing.T) {
			w := world{
				fleets: steady(to, 4),
				verdict: func(r *model.Roll) model.RollVerdict {
					if r.Slots[2].State == baking {
						return regressedV
					}
					return healthy
				},
			}
			tr := simulate(t, to, 4, judged(withMin(params(), 4)), w)
			if got := tr.last.Roll.Phase; got != model.RollRolledBack || tr.last.Phase != model.PhaseRolledBack {
				t.Fatalf("phase %s/%s, want rolled_back", got, tr.last.Phase)
			}
			if got := tr.entered[restoring]; !slices.Equal(got, keys(3, 2, 1)) {
				t.Errorf("restoring order %v, want s3 s2 s1", got)
			}
			if got := tr.entered[restored]; !slices.Equal(got, keys(3, 2, 1)) {
				t.Errorf("restored order %v, want s3 s2 s1", got)
			}
			if s4 := tr.last.Roll.Slots[3]; s4.State != pending {
				t.Errorf("s4 %s, want untouched", s4.State)
			}
			if tr.last.Serving() != to.Other() || tr.last.Stable != to.Other() {
				t.Errorf("traffic %s", dump(tr.last))
			}
			fl := full(to, 4)
			got := model.ServingSet(tr.last.Roll, fl.Fleet(to.Other()), fl.Fleet(to))
			if len(got) != 4 || got[0].Endpoint.ID != id(to.Other(), 1) {
				t.Errorf("serving set after rollback %v", got)
			}
			if !saw(tr.reasons, "analysis failed") {
				t.Errorf("reasons %q", tr.reasons)
			}
		})
	}
}

func TestScenarioLateReplacement(t *testing.T) {
	for _, to := range model.Colors {
		t.Run("to "+string(to), func(t *testing.T) {
			// s2's replacement passes at 4m; s2 is in line from 1m30s.
			late := func(d time.Duration) model.Membership {
				if d < 4*time.Minute {
					return fleets(to, upTo(3), []int{1, 3})
				}
				return full(to, 3)
			}
			tr := simulate(t, to, 3, params(), world{fleets: late})
			if tr.last.Roll.Phase != model.RollCompleted {
				t.Fatalf("phase %s, want completed", tr.last.Roll.Phase)
			}
			if !saw(tr.reasons, "waiting for a passing replacement for slot s2") {
				t.Errorf("reasons %q", tr.reasons)
			}
			if want := 4*time.Minute + 2*(drain+bake); tr.endedAt != want {
				t.Errorf("ended after %s, want %s", tr.endedAt, want)
			}
		})
	}
}

func TestScenarioReplacementNeverComes(t *testing.T) {
	for _, to := range model.Colors {
		t.Run("to "+string(to), func(t *testing.T) {
			never := func(time.Duration) model.Membership { return fleets(to, upTo(3), []int{1, 3}) }
			tr := simulate(t, to, 3, params(), world{fleets: never})
			if tr.last.Roll.Phase != model.RollRolledBack {
				t.Fatalf("phase %s, want rolled_back", tr.last.Roll.Phase)
			}
			// s2 in line when s1 is proven (drain+bake); fails exactly replace_timeout later
			if want := drain + bake + replace; tr.causeAt != want {
				t.Errorf("failed at %s, want %s", tr.causeAt, want)
			}
			if got := tr.entered[restored]; !slices.Equal(got, keys(1)) {
				t.Errorf("restored %v", got)
			}
		})
	}
}

func TestScenarioBakeFailsOnLostReplacement(t *testing.T) {
	for _, to := range model.Colors {
		t.Run("to "+string(to), func(t *testing.T) {
			// s2's replacement stops passing 20s into its bake (bake starts at 2m).
			flaky := func(d time.Duration) model.Membership {
				if d >= 2*time.Minute+20*time.Second {
					return fleets(to, upTo(3), []int{1, 3})
				}
				return full(to, 3)
			}
			tr := simulate(t, to, 3, withMin(params(), 2), world{fleets: flaky})
			if tr.last.Roll.Phase != model.RollRolledBack {
				t.Fatalf("phase %s, want rolled_back", tr.last.Roll.Phase)
			}
			if want := 2*time.Minute + 20*time.Second; tr.causeAt != want {
				t.Errorf("failed at %s, want %s", tr.causeAt, want)
			}
			if !strings.Contains(tr.last.Roll.Cause, "replacement "+id(to, 2)+" of slot s2 stopped passing while baking") {
				t.Errorf("cause %q", tr.last.Roll.Cause)
			}
			// s2's old host served again from the read that lost its
			// replacement: restored at once, with nothing to drain.
			if got := tr.entered[restoring]; !slices.Equal(got, keys(1)) {
				t.Errorf("restoring order %v", got)
			}
			if got := tr.entered[restored]; !slices.Equal(got, keys(2, 1)) {
				t.Errorf("restored order %v", got)
			}
		})
	}
}

func TestScenarioHeldByMinAvailable(t *testing.T) {
	for _, to := range model.Colors {
		t.Run("to "+string(to), func(t *testing.T) {
			// s3's old host fails from 1m to 3m20s; s2 would drain at 1m30s.
			short := func(d time.Duration) model.Membership {
				if d >= time.Minute && d < 3*time.Minute+20*time.Second {
					return fleets(to, []int{1, 2}, upTo(3))
				}
				return full(to, 3)
			}
			tr := simulate(t, to, 3, withMin(params(), 3), world{fleets: short})
			if tr.last.Roll.Phase != model.RollCompleted {
				t.Fatalf("phase %s, want completed", tr.last.Roll.Phase)
			}
			if !saw(tr.reasons, "invariant min_available=3: draining slot s2 would leave 2 serving hosts") {
				t.Errorf("reasons %q", tr.reasons)
			}
			if want := 3*time.Minute + 20*time.Second + 2*(drain+bake); tr.endedAt != want {
				t.Errorf("ended after %s, want %s", tr.endedAt, want)
			}
		})
	}
}

func TestScenarioTwoAtOnce(t *testing.T) {
	for _, to := range model.Colors {
		t.Run("to "+string(to), func(t *testing.T) {
			tr := simulate(t, to, 4, withMax(withMin(params(), 4), 2), world{fleets: steady(to, 4)})
			if tr.last.Roll.Phase != model.RollCompleted {
				t.Fatalf("phase %s, want completed", tr.last.Roll.Phase)
			}
			if tr.maxBusy != 2 {
				t.Errorf("%d slots unproven at once, want 2", tr.maxBusy)
			}
			if tr.endedAt != 2*(drain+bake) {
				t.Errorf("ended after %s", tr.endedAt)
			}
		})
	}
}

func TestScenarioAbort(t *testing.T) {
	for _, to := range model.Colors {
		t.Run("to "+string(to), func(t *testing.T) {
			w := world{
				fleets: steady(to, 4),
				abort:  func(r *model.Roll) bool { return r.Slots[1].State == draining },
			}
			tr := simulate(t, to, 4, withMin(params(), 4), w)
			if tr.last.Roll.Phase != model.RollAborted || tr.last.Phase != model.PhaseAborted {
				t.Fatalf("phase %s/%s, want aborted", tr.last.Roll.Phase, tr.last.Phase)
			}
			if got := tr.entered[restoring]; !slices.Equal(got, keys(2, 1)) {
				t.Errorf("restoring order %v", got)
			}
			if tr.last.Reason != "by hand" || tr.last.Serving() != to.Other() {
				t.Errorf("traffic %s", dump(tr.last))
			}
		})
	}
}
