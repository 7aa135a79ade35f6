package rolling

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/bgctl/bg/controlplane/model"
)

// stamp is how hold reasons print a time.
func stamp(t time.Time) string { return t.UTC().Format(time.RFC3339) }

// noVerdict puts w's roll on hold for want of a verdict since when.
func noVerdict(w *model.Traffic, v model.RollVerdict, since time.Time, suffix string) {
	reason := v.Reason
	if v.Outcome == model.VerdictNone {
		v.Outcome, reason = model.VerdictUnavailable, "no verdict"
	}
	w.Roll.NoVerdict = &model.NoVerdict{Outcome: v.Outcome, Reason: reason, Since: since}
	what := "metrics unavailable"
	if v.Outcome == model.VerdictInsufficient {
		what = "insufficient metrics"
	}
	w.Roll.Phase, w.Roll.Reason = phHeld, "holding: "+what+" since "+stamp(since)+": "+reason+suffix
}

// heldFor is rolling() already on hold for want of verdict v since t0.
func heldFor(to model.Color, pr model.RollParams, v model.RollVerdict, states ...model.SlotState) model.Traffic {
	t := rolling(to, pr, phRun, states...)
	noVerdict(&t, v, t0, "")
	return t
}

// Invariant 6: no step advances without a verdict. A judged roll completes
// a bake, and starts a slot while replacements take traffic, only on a
// healthy verdict; insufficient and unavailable metrics hold it and say
// why; unavailable ones past the budget apply the policy. An unjudged roll
// (no metrics source) bakes on time and Consul health alone.
func TestTickVerdict(t *testing.T) {
	forBoth(t, func(to model.Color) []tc {
		pr := params()
		jr := judged(pr)
		hold := withPolicy(jr, model.OnUnavailableHold)
		tick := func(d time.Duration, v model.RollVerdict) Tick { return Tick{Now: at(d), Verdict: v} }
		other := insufficient
		other.Reason = "candidate: 57 requests, need 200"
		spent := " (budget spent; policy hold)"
		regressedCause := "analysis failed: the " + string(to) + " replacements regressed: " + regressedV.Reason

		return []tc{
			// the bake
			{name: "judged, baked, healthy: replaced, next slot drains", in: rolling(to, jr, phRun, baking, pending), fl: full(to, 2), ev: tick(bake, healthy), actions: pe,
				want: func(w *model.Traffic) { set(w, 0, replaced, at(bake)); set(w, 1, draining, at(bake)) }},
			{name: "judged, baked, no verdict: held", in: rolling(to, jr, phRun, baking, pending), fl: full(to, 2), ev: tick(bake, model.RollVerdict{}), actions: p,
				want: func(w *model.Traffic) { noVerdict(w, model.RollVerdict{}, at(bake), "") }},
			{name: "judged, baked, insufficient: held", in: rolling(to, jr, phRun, baking, pending), fl: full(to, 2), ev: tick(bake, insufficient), actions: p,
				want: func(w *model.Traffic) { noVerdict(w, insufficient, at(bake), "") }},
			{name: "judged, baked, unavailable: held", in: rolling(to, jr, phRun, baking, pending), fl: full(to, 2), ev: tick(bake, unavailableV), actions: p,
				want: func(w *model.Traffic) { noVerdict(w, unavailableV, at(bake), "") }},
			{name: "judged, last slot baked, insufficient: not completed", in: rolling(to, jr, phRun, replaced, baking), fl: full(to, 2), ev: tick(bake, insufficient), actions: p,
				want: func(w *model.Traffic) { noVerdict(w, insufficient, at(bake), "") }},
			{name: "judged, last slot baked, healthy: completed", in: rolling(to, jr, phRun, replaced, baking), fl: full(to, 2), ev: tick(bake, healthy), actions: per,
				want: func(w *model.Traffic) { set(w, 1, replaced, at(bake)); ended(w, model.RollCompleted, at(bake)) }},
			{name: "judged, baking, unavailable before bake: held, the budget runs", in: rolling(to, jr, phRun, baking, pending), fl: full(to, 2), ev: tick(every, unavailableV), actions: p,
				want: func(w *model.Traffic) { noVerdict(w, unavailableV, at(every), "") }},
			{name: "judged, draining, insufficient: the drain ends, the roll holds", in: rolling(to, jr, phRun, draining, pending), fl: full(to, 2), ev: tick(drain, insufficient), actions: pe,
				want: func(w *model.Traffic) { set(w, 0, baking, at(drain)); noVerdict(w, insufficient, at(drain), "") }},

			// while held
			{name: "held insufficient, still insufficient: unchanged, first reason kept", in: heldFor(to, jr, insufficient, baking, pending), fl: full(to, 2), ev: tick(bake+time.Minute, other)},
			{name: "held insufficient, healthy: bake completes, hold cleared", in: heldFor(to, jr, insufficient, baking, pending), fl: full(to, 2), ev: tick(bake+time.Minute, healthy), actions: pe,
				want: func(w *model.Traffic) {
					w.Roll.NoVerdict, w.Roll.Phase, w.Roll.Reason = nil, phRun, ""
					set(w, 0, replaced, at(bake+time.Minute))
					set(w, 1, draining, at(bake+time.Minute))
				}},
			{name: "held insufficient, healthy before bake: hold cleared", in: heldFor(to, jr, insufficient, baking, pending), fl: full(to, 2), ev: tick(every, healthy), actions: p,
				want: func(w *model.Traffic) { w.Roll.NoVerdict, w.Roll.Phase, w.Roll.Reason = nil, phRun, "" }},
			{name: "held insufficient, regressed: walks back", in: heldFor(to, jr, insufficient, replaced, baking, pending), fl: full(to, 3), ev: tick(every, regressedV), actions: pe,
				want: func(w *model.Traffic) {
					w.Roll.NoVerdict = nil
					failed(w, regressedCause)
					set(w, 1, restoring, at(every))
				}},
			{name: "held unavailable, within the budget: unchanged", in: heldFor(to, jr, unavailableV, baking, pending), fl: full(to, 2), ev: tick(time.Minute-time.Nanosecond, unavailableV)},
			{name: "held unavailable, another error within the budget: unchanged", in: heldFor(to, jr, unavailableV, baking, pending), fl: full(to, 2), ev: tick(30*time.Second, model.RollVerdict{Outcome: model.VerdictUnavailable, Reason: "invalid counts: NaN"})},
			{name: "held unavailable, budget spent, rollback: walks back", in: heldFor(to, jr, unavailableV, replaced, baking, pending), fl: full(to, 3), ev: tick(time.Minute, unavailableV), actions: pe,
				want: func(w *model.Traffic) {
					w.Roll.NoVerdict = nil
					failed(w, "metrics unavailable for 1m0s: "+unavailableV.Reason)
					set(w, 1, restoring, at(time.Minute))
				}},
			{name: "held on no verdict, budget spent: walks back", in: heldFor(to, jr, model.RollVerdict{}, baking), fl: full(to, 1), ev: tick(time.Minute, model.RollVerdict{}), actions: pe,
				want: func(w *model.Traffic) {
					w.Roll.NoVerdict = nil
					failed(w, "metrics unavailable for 1m0s: no verdict")
					set(w, 0, restoring, at(time.Minute))
				}},
			{name: "held unavailable, budget spent, policy hold: says so", in: heldFor(to, hold, unavailableV, baking, pending), fl: full(to, 2), ev: tick(time.Minute, unavailableV), actions: p,
				want: func(w *model.Traffic) { noVerdict(w, unavailableV, t0, spent) }},
			{name: "policy hold, long past the budget: unchanged", in: func() model.Traffic {
				w := heldFor(to, hold, unavailableV, baking, pending)
				w.Roll.Reason += spent
				return w
			}(), fl: full(to, 2), ev: tick(time.Hour, unavailableV)},
			{name: "policy hold, metrics back and healthy: goes on", in: func() model.Traffic {
				w := heldFor(to, hold, unavailableV, baking, pending)
				w.Roll.Reason += spent
				return w
			}(), fl: full(to, 2), ev: tick(time.Hour, healthy), actions: pe,
				want: func(w *model.Traffic) {
					w.Roll.NoVerdict, w.Roll.Phase, w.Roll.Reason = nil, phRun, ""
					set(w, 0, replaced, at(time.Hour))
					set(w, 1, draining, at(time.Hour))
				}},
			{name: "unavailable, then insufficient: the budget clock stops", in: heldFor(to, jr, unavailableV, baking, pending), fl: full(to, 2), ev: tick(50*time.Second, insufficient), actions: p,
				want: func(w *model.Traffic) { noVerdict(w, insufficient, at(50*time.Second), "") }},
			{name: "insufficient, then unavailable: the budget counts from now", in: heldFor(to, jr, insufficient, baking, pending), fl: full(to, 2), ev: tick(2*time.Minute, unavailableV), actions: p,
				want: func(w *model.Traffic) { noVerdict(w, unavailableV, at(2*time.Minute), "") }},

			// starting slots
			{name: "judged, no replacement serving yet: the first slot starts without a verdict", in: held(to, jr, "waiting for a passing replacement for slot s1", pending, pending), fl: full(to, 2), ev: tick(every, model.RollVerdict{}), actions: pe,
				want: func(w *model.Traffic) { set(w, 0, draining, at(every)); w.Roll.Phase, w.Roll.Reason = phRun, "" }},
			{name: "judged, max_unavailable 2, insufficient: no slot starts", in: rolling(to, withMax(jr, 2), phRun, replaced, baking, pending), fl: full(to, 3), ev: tick(every, insufficient), actions: p,
				want: func(w *model.Traffic) { noVerdict(w, insufficient, at(every), "") }},
			{name: "judged, max_unavailable 2, healthy: the next slot starts", in: rolling(to, withMax(jr, 2), phRun, replaced, baking, pending), fl: full(to, 3), ev: tick(every, healthy), actions: pe,
				want: func(w *model.Traffic) { set(w, 2, draining, at(every)) }},
			{name: "judged, regressed, no replacement serving: ignored", in: held(to, jr, "waiting for a passing replacement for slot s1", pending, pending), fl: fleets(to, upTo(2), nil), ev: tick(every, regressedV)},

			// unjudged: no metrics source
			{name: "unjudged, baked, no verdict: replaced on time", in: rolling(to, pr, phRun, baking, pending), fl: full(to, 2), ev: tick(bake, model.RollVerdict{}), actions: pe,
				want: func(w *model.Traffic) { set(w, 0, replaced, at(bake)); set(w, 1, draining, at(bake)) }},
			{name: "unjudged, verdicts ignored: unavailable", in: rolling(to, pr, phRun, baking, pending), fl: full(to, 2), ev: tick(bake, unavailableV), actions: pe,
				want: func(w *model.Traffic) { set(w, 0, replaced, at(bake)); set(w, 1, draining, at(bake)) }},
			{name: "unjudged, verdicts ignored: regressed", in: rolling(to, pr, phRun, baking, pending), fl: full(to, 2), ev: tick(every, regressedV)},
		}
	})
}

// A judged roll through a Prometheus outage: it holds from the first
// unavailable tick, no slot is proven meanwhile, and past the budget it
// walks back in reverse order.
func TestScenarioMetricsDownPastBudget(t *testing.T) {
	for _, to := range model.Colors {
		t.Run("to "+string(to), func(t *testing.T) {
			down := 2*time.Minute + 10*time.Second // s2 bakes from 2m
			var clock time.Duration
			w := world{
				fleets: func(d time.Duration) model.Membership { clock = d; return full(to, 4) },
				verdict: func(*model.Roll) model.RollVerdict {
					if clock >= down {
						return unavailableV
					}
					return healthy
				},
			}
			tr := simulate(t, to, 4, judged(withMin(params(), 3)), w)
			if tr.last.Roll.Phase != model.RollRolledBack {
				t.Fatalf("phase %s, want rolled_back", tr.last.Roll.Phase)
			}
			if !strings.HasPrefix(tr.last.Roll.Cause, "metrics unavailable for 1m0s: ") {
				t.Errorf("cause %q", tr.last.Roll.Cause)
			}
			if !saw(tr.reasons, "holding: metrics unavailable since") {
				t.Errorf("reasons %q", tr.reasons)
			}
			if got := tr.entered[replaced]; !slices.Equal(got, keys(1)) {
				t.Errorf("replaced %v: only s1 was proven before the outage", got)
			}
			if got := tr.entered[restored]; !slices.Equal(got, keys(2, 1)) {
				t.Errorf("restored %v, want s2 s1", got)
			}
			if want := down + time.Minute; tr.causeAt != want {
				t.Errorf("turned back at %s, want %s (budget 1m from the first unavailable tick)", tr.causeAt, want)
			}
		})
	}
}

// A judged roll under low traffic: insufficient for five minutes holds
// every bake; once healthy the roll completes, each slot proven on a
// healthy verdict.
func TestScenarioInsufficientThenHealthy(t *testing.T) {
	for _, to := range model.Colors {
		t.Run("to "+string(to), func(t *testing.T) {
			quiet := 5 * time.Minute
			var clock time.Duration
			w := world{
				fleets: func(d time.Duration) model.Membership { clock = d; return full(to, 3) },
				verdict: func(*model.Roll) model.RollVerdict {
					if clock < quiet {
						return insufficient
					}
					return healthy
				},
			}
			tr := simulate(t, to, 3, judged(withMin(params(), 3)), w)
			if tr.last.Roll.Phase != model.RollCompleted {
				t.Fatalf("phase %s, want completed", tr.last.Roll.Phase)
			}
			if !saw(tr.reasons, "holding: insufficient metrics since") {
				t.Errorf("reasons %q", tr.reasons)
			}
			// s1 drained at 30s and baked by 1m30s, but waited for 5m; then
			// s2 and s3 took drain + bake each.
			if want := quiet + 2*(drain+bake); tr.endedAt != want {
				t.Errorf("ended after %s, want %s", tr.endedAt, want)
			}
			if tr.last.Roll.NoVerdict != nil {
				t.Errorf("no_verdict left set: %+v", tr.last.Roll.NoVerdict)
			}
		})
	}
}
