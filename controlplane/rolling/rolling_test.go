package rolling

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/bgctl/bg/controlplane/model"
)

const (
	pending   = model.SlotPending
	draining  = model.SlotDraining
	baking    = model.SlotBaking
	replaced  = model.SlotReplaced
	restoring = model.SlotRestoring
	restored  = model.SlotRestored

	phRun  = model.RollRolling
	phHeld = model.RollHeld
	phBack = model.RollRollingBack
)

type tc struct {
	name    string
	in      model.Traffic
	fl      model.Membership
	ev      Event
	want    func(w *model.Traffic) // applied to a copy of in, generation bumped; nil: unchanged
	wantT   *model.Traffic         // the whole expected result instead (Start)
	actions []Action
	err     error  // errors.Is target
	errHas  string // substring of the error
}

func runCases(t *testing.T, cases []tc) {
	t.Helper()
	seen := map[string]bool{}
	for _, c := range cases {
		if seen[c.name] {
			t.Fatalf("duplicate case name %q", c.name)
		}
		seen[c.name] = true
		t.Run(c.name, func(t *testing.T) {
			snap := deepCopy(c.in)
			out, acts, err := Decide(c.in, c.fl, c.ev)
			if c.err != nil || c.errHas != "" {
				if err == nil {
					t.Fatalf("no error; got %v\n%s", acts, dump(out))
				}
				if c.err != nil && !errors.Is(err, c.err) {
					t.Errorf("error %v, want %v", err, c.err)
				}
				if c.errHas != "" && !strings.Contains(err.Error(), c.errHas) {
					t.Errorf("error %q does not mention %q", err, c.errHas)
				}
				if acts != nil || !equal(out, snap) {
					t.Errorf("an error must return the input and no actions: %v\n%s", acts, show(out, snap))
				}
				return
			}
			if err != nil {
				t.Fatalf("error: %v", err)
			}
			if !slices.Equal(acts, c.actions) {
				t.Errorf("actions %v, want %v", acts, c.actions)
			}
			want := deepCopy(snap)
			switch {
			case c.wantT != nil:
				want = *c.wantT
			case c.want != nil:
				c.want(&want)
				want.Generation++
			}
			if !equal(out, want) {
				t.Errorf("result differs:\n%s", show(out, want))
			}
			checkOut(t, c.in, snap, out, acts)
		})
	}
}

// forBoth runs the cases once with green as To and once with blue.
func forBoth(t *testing.T, cases func(to model.Color) []tc) {
	for _, to := range model.Colors {
		t.Run("to "+string(to), func(t *testing.T) { runCases(t, cases(to)) })
	}
}

func TestStart(t *testing.T) {
	forBoth(t, func(to model.Color) []tc {
		from := to.Other()
		start := Start{Now: t0, To: to, Params: params()}
		// begun is the roll Start makes from stable(from), slots as given.
		begun := func(phase model.RollPhase, reason string, slots ...model.Slot) *model.Traffic {
			return &model.Traffic{
				Stable: from, Target: to, GreenPercent: greenFor(from), Phase: model.PhaseSwitching,
				Generation: 5, Reason: "rolling switch to " + string(to),
				Roll: &model.Roll{ID: "roll-5", From: from, To: to, Params: params(), Phase: phase,
					Slots: slots, Reason: reason, StartedAt: t0},
			}
		}
		slot := func(n int, newID string, st model.SlotState, since time.Time) model.Slot {
			return model.Slot{Key: host(from, n).Slot, Old: id(from, n), New: newID, State: st, Since: since}
		}
		var zero time.Time
		afterRollout := stable(from)
		afterRollout.Target, afterRollout.Stable, afterRollout.Phase = from, to, model.PhaseSwitched
		afterRollout.Rollout = &model.Rollout{ID: "gen-2", From: to, To: from, Plan: model.Plan{Steps: []int{10, 100}},
			Phase: model.RolloutPromoted, Step: 1}
		afterRoll := rolling(from, params(), phRun, replaced, replaced)
		ended(&afterRoll, model.RollCompleted, t0)
		afterRoll.Generation = 4
		running := rolling(to, params(), phRun, draining)
		runningRollout := stable(from)
		runningRollout.Phase, runningRollout.Rollout = model.PhaseSwitching, &model.Rollout{Phase: model.RolloutProgressing}
		split := stable(from)
		split.GreenPercent = 50
		badParams := start
		badParams.Params.MaxUnavailable = 0
		badColour := start
		badColour.To = "red"
		withReason := start
		withReason.Reason = "release 42"
		// Slot keys out of ID order, one host keyed by its ID, one replacement missing.
		mixed := model.Membership{}
		odd := model.Fleet{Endpoints: []model.Endpoint{
			{ID: "a", Slot: "s3", Weight: 1}, {ID: "b", Slot: "s1", Weight: 1}, {ID: "c", Weight: 1},
		}}
		news := model.Fleet{Endpoints: []model.Endpoint{{ID: "n1", Slot: "s1", Weight: 1}, {ID: "nc", Slot: "c", Weight: 1}}}
		if to == model.Green {
			mixed.Blue, mixed.Green = odd, news
		} else {
			mixed.Green, mixed.Blue = odd, news
		}
		mixedWant := begun(phRun, "",
			model.Slot{Key: "c", Old: "c", New: "nc", State: draining, Since: t0},
			model.Slot{Key: "s1", Old: "b", New: "n1", State: pending},
			model.Slot{Key: "s3", Old: "a", State: pending})
		dup := fleets(to, upTo(2), upTo(2))
		if to == model.Green {
			dup.Blue.Endpoints[1].Slot = "s1"
		} else {
			dup.Green.Endpoints[1].Slot = "s1"
		}
		reasoned := begun(phRun, "", slot(1, id(to, 1), draining, t0))
		reasoned.Reason = "release 42"
		noRollout := begun(phRun, "", slot(1, id(to, 1), draining, t0), slot(2, id(to, 2), pending, zero))
		noRollout.Stable = from

		return []tc{
			{name: "first slot drains at once", in: stable(from), fl: full(to, 3), ev: start, actions: pe,
				wantT: begun(phRun, "", slot(1, id(to, 1), draining, t0), slot(2, id(to, 2), pending, zero), slot(3, id(to, 3), pending, zero))},
			{name: "no replacement yet: held, first slot in line", in: stable(from), fl: fleets(to, upTo(2), []int{2}), ev: start, actions: p,
				wantT: begun(phHeld, "waiting for a passing replacement for slot s1", slot(1, "", pending, t0), slot(2, id(to, 2), pending, zero))},
			{name: "slots in key order, replacements by key", in: stable(from), fl: mixed, ev: start, actions: pe, wantT: mixedWant},
			{name: "reason kept", in: stable(from), fl: full(to, 1), ev: withReason, actions: pe, wantT: reasoned},
			{name: "an ended rollout is dropped", in: afterRollout, fl: full(to, 2), ev: start, actions: pe, wantT: noRollout},
			{name: "an ended roll is replaced", in: afterRoll, fl: full(to, 2), ev: start, actions: pe, wantT: noRollout},
			{name: "max_unavailable 2 drains two at once", in: stable(from), fl: full(to, 3), ev: Start{Now: t0, To: to, Params: withMax(params(), 2)}, actions: pe,
				wantT: func() *model.Traffic {
					w := begun(phRun, "", slot(1, id(to, 1), draining, t0), slot(2, id(to, 2), draining, t0), slot(3, id(to, 3), pending, zero))
					w.Roll.Params = withMax(params(), 2)
					return w
				}()},
			{name: "min_available holds the first drain", in: stable(from), fl: fleets(to, []int{1, 2}, upTo(3)), ev: Start{Now: t0, To: to, Params: withMin(params(), 3)}, actions: p,
				wantT: func() *model.Traffic {
					w := begun(phHeld, "invariant min_available=3: draining slot s1 would leave 2 serving hosts",
						slot(1, id(to, 1), pending, t0), slot(2, id(to, 2), pending, zero))
					w.Roll.Params = withMin(params(), 3)
					return w
				}()},

			{name: "roll running", in: running, fl: full(to, 1), ev: start, err: ErrRunning},
			{name: "rollout running", in: runningRollout, fl: full(to, 1), ev: start, err: ErrRunning},
			{name: "already on to", in: stable(to), fl: full(to, 1), ev: start, errHas: "other colour"},
			{name: "split", in: split, fl: full(to, 1), ev: start, errHas: "other colour"},
			{name: "bad params", in: stable(from), fl: full(to, 1), ev: badParams, errHas: "max_unavailable"},
			{name: "bad colour", in: stable(from), fl: full(to, 1), ev: badColour, errHas: "invalid colour"},
			{name: "empty from fleet", in: stable(from), fl: fleets(to, nil, upTo(1)), ev: start, errHas: "no passing hosts"},
			{name: "two hosts in one slot", in: stable(from), fl: dup, ev: start, errHas: "share slot"},
		}
	})
}

func TestTickForward(t *testing.T) {
	forBoth(t, func(to model.Color) []tc {
		from := to.Other()
		pr := params()
		tick := func(d time.Duration) Tick { return Tick{Now: at(d)} }
		jr := judged(pr)
		verdict := func(d time.Duration, ok bool) Tick {
			if ok {
				return Tick{Now: at(d), Verdict: healthy}
			}
			return Tick{Now: at(d), Verdict: regressedV}
		}
		waiting := func(n string) string { return "waiting for a passing replacement for slot s" + n }
		regressed := "analysis failed: the " + string(to) + " replacements regressed: " + regressedV.Reason
		minHeld := "invariant min_available=3: draining slot s1 would leave 2 serving hosts"

		return []tc{
			// draining
			{name: "draining before drain_timeout", in: rolling(to, pr, phRun, draining, pending), fl: full(to, 2), ev: tick(drain - time.Nanosecond)},
			{name: "draining at drain_timeout bakes", in: rolling(to, pr, phRun, draining, pending), fl: full(to, 2), ev: tick(drain), actions: pe,
				want: func(w *model.Traffic) { set(w, 0, baking, at(drain)) }},
			// A replacement that left: the membership read already pushed its
			// old host back (model.Serving); the tick records the slot restored.
			{name: "draining, replacement stopped passing", in: rolling(to, pr, phRun, draining, pending), fl: fleets(to, upTo(2), []int{2}), ev: tick(every), actions: pec,
				want: func(w *model.Traffic) {
					failed(w, "replacement "+id(to, 1)+" of slot s1 stopped passing while draining")
					set(w, 0, restored, at(every))
					ended(w, model.RollRolledBack, at(every))
				}},

			// baking
			{name: "baking before bake", in: rolling(to, pr, phRun, baking, pending), fl: full(to, 2), ev: tick(bake - time.Nanosecond)},
			{name: "baking and healthy before bake", in: rolling(to, jr, phRun, baking, pending), fl: full(to, 2), ev: verdict(bake-time.Second, true)},
			{name: "baked: replaced, next slot drains", in: rolling(to, pr, phRun, baking, pending), fl: full(to, 2), ev: tick(bake), actions: pe,
				want: func(w *model.Traffic) { set(w, 0, replaced, at(bake)); set(w, 1, draining, at(bake)) }},
			{name: "baked, next replacement missing: held, in line", in: rolling(to, pr, phRun, baking, pending), fl: fleets(to, upTo(2), []int{1}), ev: tick(bake), actions: p,
				want: func(w *model.Traffic) {
					set(w, 0, replaced, at(bake))
					w.Roll.Slots[1].Since = at(bake)
					w.Roll.Phase, w.Roll.Reason = phHeld, waiting("2")
				}},
			{name: "baking, replacement stopped passing", in: rolling(to, pr, phRun, replaced, baking, pending), fl: fleets(to, upTo(3), []int{1, 3}), ev: tick(every), actions: pe,
				want: func(w *model.Traffic) {
					failed(w, "replacement "+id(to, 2)+" of slot s2 stopped passing while baking")
					set(w, 1, restored, at(every))
					set(w, 0, restoring, at(every)) // the next one back, as max_unavailable allows
				}},
			{name: "replaced, replacement stopped passing", in: rolling(to, pr, phRun, replaced, baking, pending), fl: fleets(to, upTo(3), []int{2, 3}), ev: tick(every), actions: pe,
				want: func(w *model.Traffic) {
					failed(w, "replacement "+id(to, 1)+" of slot s1 stopped passing while replaced")
					set(w, 0, restored, at(every))  // already served by its old host
					set(w, 1, restoring, at(every)) // the latest moved slot restores as usual
				}},
			{name: "replaced, replacement and old host gone: fails, nothing to return to yet", in: rolling(to, pr, phRun, replaced, baking, pending), fl: fleets(to, []int{2, 3}, []int{2, 3}), ev: tick(every), actions: pe,
				want: func(w *model.Traffic) {
					failed(w, "replacement "+id(to, 1)+" of slot s1 stopped passing while replaced")
					set(w, 1, restoring, at(every))
				}},
			{name: "baking, replacement gone just as bake ends", in: rolling(to, pr, phRun, baking), fl: fleets(to, upTo(1), nil), ev: tick(bake), actions: pec,
				want: func(w *model.Traffic) {
					failed(w, "replacement "+id(to, 1)+" of slot s1 stopped passing while baking")
					set(w, 0, restored, at(bake))
					ended(w, model.RollRolledBack, at(bake))
				}},
			{name: "baking, unhealthy", in: rolling(to, jr, phRun, replaced, baking, pending), fl: full(to, 3), ev: verdict(every, false), actions: pe,
				want: func(w *model.Traffic) { failed(w, regressed); set(w, 1, restoring, at(every)) }},
			{name: "baking, unhealthy at bake", in: rolling(to, jr, phRun, baking, pending), fl: full(to, 2), ev: verdict(bake, false), actions: pe,
				want: func(w *model.Traffic) { failed(w, regressed); set(w, 0, restoring, at(bake)) }},
			{name: "draining, unhealthy: flips at once", in: rolling(to, jr, phRun, replaced, draining, pending), fl: full(to, 3), ev: verdict(every, false), actions: pe,
				want: func(w *model.Traffic) { failed(w, regressed); set(w, 1, restoring, at(every)) }},
			{name: "held with a replaced slot, unhealthy", in: held(to, jr, waiting("2"), replaced, pending), fl: fleets(to, upTo(2), []int{1}), ev: verdict(every, false), actions: pe,
				want: func(w *model.Traffic) { failed(w, regressed); set(w, 0, restoring, at(every)) }},
			{name: "unhealthy with no replacement serving: ignored", in: held(to, jr, waiting("1"), pending, pending), fl: fleets(to, upTo(2), nil), ev: verdict(every, false)},

			// waiting for a replacement
			{name: "waiting before replace_timeout", in: held(to, pr, waiting("1"), pending, pending), fl: fleets(to, upTo(2), []int{2}), ev: tick(replace - time.Nanosecond)},
			{name: "waiting at replace_timeout, nothing to undo: rolled back", in: held(to, pr, waiting("1"), pending, pending), fl: fleets(to, upTo(2), []int{2}), ev: tick(replace), actions: pec,
				want: func(w *model.Traffic) {
					failed(w, "no passing replacement for slot s1 within replace_timeout 5m0s")
					ended(w, model.RollRolledBack, at(replace))
				}},
			{name: "waiting at replace_timeout after a replaced slot", in: held(to, pr, waiting("2"), replaced, pending), fl: fleets(to, upTo(2), []int{1}), ev: tick(replace), actions: pe,
				want: func(w *model.Traffic) {
					failed(w, "no passing replacement for slot s2 within replace_timeout 5m0s")
					set(w, 0, restoring, at(replace))
				}},
			{name: "replacement appears: drains, held released", in: held(to, pr, waiting("1"), pending, pending), fl: full(to, 2), ev: tick(replace - time.Second), actions: pe,
				want: func(w *model.Traffic) {
					set(w, 0, draining, at(replace-time.Second))
					w.Roll.Phase, w.Roll.Reason = phRun, ""
				}},
			{name: "replacement appears under another ID: found by key", in: held(to, pr, waiting("1"), pending), fl: func() model.Membership {
				m := fleets(to, upTo(1), nil)
				e := host(to, 1)
				e.ID = "fresh"
				if to == model.Green {
					m.Green.Endpoints = []model.Endpoint{e}
				} else {
					m.Blue.Endpoints = []model.Endpoint{e}
				}
				return m
			}(), ev: tick(every), actions: pe,
				want: func(w *model.Traffic) {
					set(w, 0, draining, at(every))
					w.Roll.Slots[0].New = "fresh"
					w.Roll.Phase, w.Roll.Reason = phRun, ""
				}},

			// invariants
			{name: "min_available holds a drain", in: rolling(to, withMin(pr, 3), phRun, replaced, pending, pending), fl: fleets(to, []int{2}, upTo(3)), ev: tick(every), actions: p,
				want: func(w *model.Traffic) {
					w.Roll.Slots[1].Since = at(every)
					w.Roll.Phase, w.Roll.Reason = phHeld, "invariant min_available=3: draining slot s2 would leave 2 serving hosts"
				}},
			{name: "held by min_available, still short", in: held(to, withMin(pr, 3), minHeld, pending, pending, pending), fl: fleets(to, []int{1, 2}, upTo(3)), ev: tick(time.Hour)},
			{name: "held by min_available, host back: drains", in: held(to, withMin(pr, 3), minHeld, pending, pending, pending), fl: full(to, 3), ev: tick(time.Hour), actions: pe,
				want: func(w *model.Traffic) { set(w, 0, draining, at(time.Hour)); w.Roll.Phase, w.Roll.Reason = phRun, "" }},
			{name: "held by min_available, then the replacement goes: timed out from in line", in: held(to, withMin(pr, 3), minHeld, pending, pending, pending), fl: fleets(to, []int{1, 2}, []int{2, 3}), ev: tick(time.Hour), actions: pec,
				want: func(w *model.Traffic) {
					failed(w, "no passing replacement for slot s1 within replace_timeout 5m0s")
					ended(w, model.RollRolledBack, at(time.Hour))
				}},
			{name: "draining a slot whose old host left adds a serving host", in: rolling(to, withMin(pr, 3), phRun, pending, pending, pending), fl: fleets(to, []int{2, 3}, upTo(3)), ev: tick(every), actions: pe,
				want: func(w *model.Traffic) { set(w, 0, draining, at(every)) }},
			{name: "min_available counts the new replacement", in: rolling(to, withMin(pr, 3), phRun, pending, pending, pending), fl: full(to, 3), ev: tick(every), actions: pe,
				want: func(w *model.Traffic) { set(w, 0, draining, at(every)) }},

			// max_unavailable
			{name: "max_unavailable 1: baking blocks the next", in: rolling(to, pr, phRun, baking, pending), fl: full(to, 2), ev: tick(every)},
			{name: "max_unavailable 2: second slot starts beside a baking one", in: rolling(to, withMax(pr, 2), phRun, baking, pending, pending), fl: full(to, 3), ev: tick(every), actions: pe,
				want: func(w *model.Traffic) { set(w, 1, draining, at(every)) }},
			{name: "max_unavailable 2: both bake, then both start", in: rolling(to, withMax(pr, 2), phRun, baking, baking, pending, pending), fl: full(to, 4), ev: tick(bake), actions: pe,
				want: func(w *model.Traffic) {
					set(w, 0, replaced, at(bake))
					set(w, 1, replaced, at(bake))
					set(w, 2, draining, at(bake))
					set(w, 3, draining, at(bake))
				}},
			{name: "max_unavailable 2: full", in: rolling(to, withMax(pr, 2), phRun, draining, baking, pending), fl: full(to, 3), ev: tick(every)},

			// completion
			{name: "last slot baked: completed", in: rolling(to, pr, phRun, replaced, replaced, baking), fl: full(to, 3), ev: tick(bake), actions: per,
				want: func(w *model.Traffic) { set(w, 2, replaced, at(bake)); ended(w, model.RollCompleted, at(bake)) }},
			{name: "zero bake: drained and proven in one tick", in: rolling(to, func() model.RollParams { q := pr; q.Bake = 0; return q }(), phRun, replaced, draining), fl: full(to, 2), ev: tick(drain), actions: per,
				want: func(w *model.Traffic) { set(w, 1, replaced, at(drain)); ended(w, model.RollCompleted, at(drain)) }},
			{name: "from hosts that joined do not block completion", in: rolling(to, pr, phRun, replaced, baking), fl: fleets(to, upTo(5), upTo(2)), ev: tick(bake), actions: per,
				want: func(w *model.Traffic) { set(w, 1, replaced, at(bake)); ended(w, model.RollCompleted, at(bake)) }},

			{name: "tick with no roll", in: stable(from), fl: full(to, 1), ev: tick(every), err: ErrNotRunning},
			{name: "tick after the roll ended", in: func() model.Traffic {
				w := rolling(to, pr, phRun, replaced)
				ended(&w, model.RollCompleted, t0)
				return w
			}(), fl: full(to, 1), ev: tick(every), err: ErrNotRunning},
			{name: "unknown event", in: rolling(to, pr, phRun, draining), fl: full(to, 1), ev: bogus{}, errHas: "unknown event"},
		}
	})
}

type bogus struct{}

func (bogus) at() time.Time { return t0 }

func TestTickBack(t *testing.T) {
	forBoth(t, func(to model.Color) []tc {
		from := to.Other()
		pr := params()
		tick := func(d time.Duration) Tick { return Tick{Now: at(d)} }
		cause := "analysis failed: x"
		heldBy := func(why string) string { return cause + "; held: " + why }
		byHand := func(t model.Traffic) model.Traffic { t.Roll.ByHand = true; return t }
		minHeld := "invariant min_available=3: restoring slot s2 would leave 2 serving hosts"

		return []tc{
			{name: "restoring before drain_timeout", in: rolling(to, pr, phBack, replaced, restoring, pending), fl: full(to, 3), ev: tick(drain - time.Nanosecond)},
			{name: "restored, the previous slot restores", in: rolling(to, pr, phBack, replaced, restoring, pending), fl: full(to, 3), ev: tick(drain), actions: pe,
				want: func(w *model.Traffic) { set(w, 1, restored, at(drain)); set(w, 0, restoring, at(drain)) }},
			{name: "reverse order: the latest slot first", in: rolling(to, pr, phBack, replaced, replaced, baking, pending), fl: full(to, 4), ev: tick(every), actions: pe,
				want: func(w *model.Traffic) { set(w, 2, restoring, at(every)) }},
			{name: "max_unavailable 2 restores two", in: rolling(to, withMax(pr, 2), phBack, replaced, replaced, replaced), fl: full(to, 3), ev: tick(every), actions: pe,
				want: func(w *model.Traffic) { set(w, 2, restoring, at(every)); set(w, 1, restoring, at(every)) }},
			{name: "draining flips at once, beyond max_unavailable", in: rolling(to, withMax(pr, 2), phBack, baking, draining, draining), fl: full(to, 3), ev: tick(every), actions: pe,
				want: func(w *model.Traffic) { set(w, 1, restoring, at(every)); set(w, 2, restoring, at(every)) }},
			{name: "last slot restored: rolled back", in: rolling(to, pr, phBack, restoring, restored, pending), fl: full(to, 3), ev: tick(drain), actions: pec,
				want: func(w *model.Traffic) { set(w, 0, restored, at(drain)); ended(w, model.RollRolledBack, at(drain)) }},
			{name: "last slot restored by hand: aborted", in: byHand(rolling(to, pr, phBack, restoring, pending)), fl: full(to, 2), ev: tick(drain), actions: pec,
				want: func(w *model.Traffic) { set(w, 0, restored, at(drain)); ended(w, model.RollAborted, at(drain)) }},
			{name: "unhealthy while rolling back: ignored", in: rolling(to, judged(pr), phBack, replaced, restoring), fl: full(to, 2), ev: Tick{Now: at(every), Verdict: regressedV}},
			{name: "judged, unavailable while rolling back: ignored", in: rolling(to, judged(pr), phBack, replaced, restoring), fl: full(to, 2), ev: Tick{Now: at(every), Verdict: unavailableV}},
			{name: "replacement left: restored at once, beyond max_unavailable", in: rolling(to, pr, phBack, replaced, replaced, restoring, pending), fl: fleets(to, upTo(4), []int{2, 3}), ev: tick(every), actions: p,
				want: func(w *model.Traffic) { set(w, 0, restored, at(every)) }},
			{name: "replacement left, old host gone too: waits its turn", in: rolling(to, pr, phBack, replaced, replaced, restoring, pending), fl: fleets(to, []int{2, 3, 4}, []int{2, 3}), ev: tick(every)},
			{name: "old host gone: held, no skipping ahead", in: rolling(to, pr, phBack, replaced, baking, pending), fl: fleets(to, []int{1, 3}, upTo(3)), ev: tick(every), actions: p,
				want: func(w *model.Traffic) {
					w.Roll.Reason = heldBy("waiting for old host " + id(from, 2) + " of slot s2 to pass")
				}},
			{name: "old host back: restores, hold cleared", in: func() model.Traffic {
				w := rolling(to, pr, phBack, replaced, baking, pending)
				w.Roll.Reason = heldBy("waiting for old host " + id(from, 2) + " of slot s2 to pass")
				return w
			}(), fl: full(to, 3), ev: tick(every), actions: pe,
				want: func(w *model.Traffic) { set(w, 1, restoring, at(every)); w.Roll.Reason = cause }},
			{name: "draining slot, old host gone: keeps its replacement", in: rolling(to, pr, phBack, draining, pending), fl: fleets(to, []int{2}, upTo(2)), ev: tick(every), actions: p,
				want: func(w *model.Traffic) {
					w.Roll.Reason = heldBy("waiting for old host " + id(from, 1) + " of slot s1 to pass")
				}},
			{name: "min_available holds a restore", in: rolling(to, withMin(pr, 3), phBack, replaced, replaced, pending), fl: fleets(to, []int{1, 2}, upTo(3)), ev: tick(every), actions: p,
				want: func(w *model.Traffic) { w.Roll.Reason = heldBy(minHeld) }},
			{name: "min_available released: restores", in: func() model.Traffic {
				w := rolling(to, withMin(pr, 3), phBack, replaced, replaced, pending)
				w.Roll.Reason = heldBy(minHeld)
				return w
			}(), fl: full(to, 3), ev: tick(every), actions: pe,
				want: func(w *model.Traffic) { set(w, 1, restoring, at(every)); w.Roll.Reason = cause }},
		}
	})
}

func TestAbort(t *testing.T) {
	forBoth(t, func(to model.Color) []tc {
		from := to.Other()
		pr := params()
		abort := Abort{Now: at(every), Reason: "maintenance"}
		aborting := func(w *model.Traffic, cause string) { failed(w, cause); w.Roll.ByHand = true }
		endedRoll := rolling(to, pr, phRun, replaced)
		ended(&endedRoll, model.RollCompleted, t0)

		return []tc{
			{name: "mid-roll: draining flips, the rest waits", in: rolling(to, pr, phRun, replaced, draining, pending), fl: full(to, 3), ev: abort, actions: pe,
				want: func(w *model.Traffic) { aborting(w, "maintenance"); set(w, 1, restoring, at(every)) }},
			{name: "baking: restores at once", in: rolling(to, pr, phRun, replaced, baking), fl: full(to, 2), ev: abort, actions: pe,
				want: func(w *model.Traffic) { aborting(w, "maintenance"); set(w, 1, restoring, at(every)) }},
			{name: "no reason given", in: rolling(to, pr, phRun, baking), fl: full(to, 1), ev: Abort{Now: at(every)}, actions: pe,
				want: func(w *model.Traffic) { aborting(w, "aborted by hand"); set(w, 0, restoring, at(every)) }},
			{name: "held, nothing touched: aborted at once", in: held(to, pr, "waiting for a passing replacement for slot s1", pending, pending), fl: fleets(to, upTo(2), nil), ev: abort, actions: pec,
				want: func(w *model.Traffic) { aborting(w, "maintenance"); ended(w, model.RollAborted, at(every)) }},
			{name: "while rolling back: ends aborted, keeps the cause", in: rolling(to, pr, phBack, replaced, restoring), fl: full(to, 2), ev: abort, actions: p,
				want: func(w *model.Traffic) { w.Roll.ByHand = true }},
			{name: "again: nothing new", in: func() model.Traffic {
				w := rolling(to, pr, phBack, replaced, restoring)
				w.Roll.ByHand = true
				return w
			}(), fl: full(to, 2), ev: abort},
			{name: "no roll", in: stable(from), fl: full(to, 1), ev: abort, err: ErrNotRunning},
			{name: "ended roll", in: endedRoll, fl: full(to, 1), ev: abort, err: ErrNotRunning},
		}
	})
}

func TestViolation(t *testing.T) {
	to, from := model.Green, model.Blue
	roll := func(pr model.RollParams, states ...model.SlotState) *model.Roll {
		return rolling(to, pr, phRun, states...).Roll
	}
	cases := []struct {
		name   string
		r      *model.Roll
		i      int
		st     model.SlotState
		fl     model.Membership
		verb   string
		errHas string
	}{
		{"fine", roll(withMin(params(), 2), pending, pending), 0, draining, full(to, 2), "draining", ""},
		{"min_available exactly met", roll(withMin(params(), 2), pending, pending), 0, draining, full(to, 2), "draining", ""},
		{"min_available one short", roll(withMin(params(), 3), pending, pending), 0, draining, full(to, 2), "draining",
			"invariant min_available=3: draining slot s1 would leave 2 serving hosts"},
		{"max_unavailable exceeded", roll(params(), restoring, pending), 1, draining, full(to, 2), "draining",
			"invariant max_unavailable=1: draining slot s2 would leave 2 hosts draining"},
		{"max_unavailable 2 exactly met", roll(withMax(params(), 2), restoring, pending), 1, draining, full(to, 2), "draining", ""},
		{"last serving host", roll(params(), pending), 0, draining, fleets(to, upTo(1), nil), "draining",
			"invariant last_serving_host: draining slot s1 would leave no serving host"},
		{"restoring verb", roll(withMin(params(), 2), replaced, replaced), 1, restoring, fleets(to, []int{1}, upTo(2)), "restoring",
			"invariant min_available=2: restoring slot s2 would leave 1 serving hosts"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			next := c.r.Slots[c.i]
			next.State = c.st
			before := slices.Clone(c.r.Slots)
			got := violation(c.r, c.i, next, c.fl.Fleet(from), c.fl.Fleet(to), c.verb)
			if got != c.errHas {
				t.Errorf("violation %q, want %q", got, c.errHas)
			}
			if !slices.Equal(before, c.r.Slots) {
				t.Errorf("violation changed the roll")
			}
		})
	}
}
