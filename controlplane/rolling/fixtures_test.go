package rolling

import (
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/bgctl/bg/controlplane/model"
)

// t0 is the fixed time base: every fixture's slots changed state at t0.
var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func at(d time.Duration) time.Time { return t0.Add(d) }

const (
	drain   = 30 * time.Second
	bake    = time.Minute
	replace = 5 * time.Minute
	every   = 10 * time.Second
)

var (
	p   = []Action{Persist}
	pe  = []Action{Persist, PushEndpoints}
	pec = []Action{Persist, PushEndpoints, Confirm}
	per = []Action{Persist, PushEndpoints, PushRoute}
)

func params() model.RollParams {
	return model.RollParams{
		MaxUnavailable: 1, MinAvailable: 1, DrainTimeout: model.Duration(drain), Bake: model.Duration(bake),
		ReplaceTimeout: model.Duration(replace), Interval: model.Duration(every),
	}
}

// judged is p with metrics judging the replacements: a one-minute
// unavailable budget, then rollback.
func judged(p model.RollParams) model.RollParams {
	p.Judged, p.UnavailableBudget, p.OnUnavailable = true, model.Duration(time.Minute), model.OnUnavailableRollback
	return p
}

func withPolicy(p model.RollParams, policy string) model.RollParams {
	p.OnUnavailable = policy
	return p
}

// Verdicts.
var (
	healthy      = model.RollVerdict{Outcome: model.VerdictHealthy, Reason: "candidate 0.10% vs baseline 0.10% errors"}
	regressedV   = model.RollVerdict{Outcome: model.VerdictRegressed, Reason: "candidate 5.00% vs baseline 0.10% errors"}
	insufficient = model.RollVerdict{Outcome: model.VerdictInsufficient, Reason: "candidate: 12 requests, need 200"}
	unavailableV = model.RollVerdict{Outcome: model.VerdictUnavailable, Reason: "prometheus: connection refused"}
)

func withMin(p model.RollParams, n int) model.RollParams { p.MinAvailable = n; return p }
func withMax(p model.RollParams, n int) model.RollParams { p.MaxUnavailable = n; return p }

// id names host n of colour c; it sits in slot "s<n>", as does its counterpart.
func id(c model.Color, n int) string { return fmt.Sprintf("%s-%d", c, n) }

func host(c model.Color, n int) model.Endpoint {
	return model.Endpoint{
		ID: id(c, n), Node: "node-" + id(c, n), Address: fmt.Sprintf("10.%d.0.%d", len(c), n), Port: 8080,
		Weight: 1, Version: "v-" + string(c), Slot: fmt.Sprintf("s%d", n),
	}
}

func fleet(c model.Color, ns []int) model.Fleet {
	f := model.Fleet{}
	for _, n := range ns {
		f.Endpoints = append(f.Endpoints, host(c, n))
	}
	return f
}

// fleets has hosts olds in the From colour and news in To.
func fleets(to model.Color, olds, news []int) model.Membership {
	m := model.Membership{}
	for c, ns := range map[model.Color][]int{to.Other(): olds, to: news} {
		if c == model.Green {
			m.Green = fleet(c, ns)
		} else {
			m.Blue = fleet(c, ns)
		}
	}
	return m
}

// full is n hosts on each side.
func full(to model.Color, n int) model.Membership { return fleets(to, upTo(n), upTo(n)) }

func upTo(n int) []int {
	var out []int
	for i := 1; i <= n; i++ {
		out = append(out, i)
	}
	return out
}

func without(ns []int, drop ...int) []int {
	return slices.DeleteFunc(slices.Clone(ns), func(n int) bool { return slices.Contains(drop, n) })
}

func greenFor(c model.Color) int {
	if c == model.Green {
		return 100
	}
	return 0
}

// stable is a service with all traffic on colour c and no switch running.
func stable(c model.Color) model.Traffic {
	return model.Traffic{Stable: c, GreenPercent: greenFor(c), Phase: model.PhaseStable, Generation: 4}
}

// rolling is a roll to colour to in phase with slot i in states[i]: old
// host i, replacement i, since t0 (a pending slot: not yet in line).
func rolling(to model.Color, pr model.RollParams, phase model.RollPhase, states ...model.SlotState) model.Traffic {
	from := to.Other()
	r := &model.Roll{
		ID: "roll-5", From: from, To: to, Params: pr, Phase: phase, StartedAt: at(-time.Hour),
	}
	for i, st := range states {
		s := model.Slot{Key: fmt.Sprintf("s%d", i+1), Old: id(from, i+1), New: id(to, i+1), State: st, Since: t0}
		if st == model.SlotPending {
			s.Since = time.Time{}
		}
		r.Slots = append(r.Slots, s)
	}
	if phase == model.RollRollingBack {
		r.Cause, r.Reason = "analysis failed: x", "analysis failed: x"
	}
	return model.Traffic{
		Stable: from, Target: to, GreenPercent: greenFor(from), Phase: model.PhaseSwitching,
		Generation: 7, Reason: "rolling switch to " + string(to), Roll: r,
	}
}

// held is rolling() held with reason, its first pending slot in line since t0.
func held(to model.Color, pr model.RollParams, reason string, states ...model.SlotState) model.Traffic {
	t := rolling(to, pr, model.RollHeld, states...)
	t.Roll.Reason = reason
	if i := first(t.Roll, model.SlotPending); i >= 0 {
		t.Roll.Slots[i].Since = t0
	}
	return t
}

func deepCopy(t model.Traffic) model.Traffic {
	if t.Roll != nil {
		r := *t.Roll
		r.Slots = slices.Clone(t.Roll.Slots)
		t.Roll = &r
	}
	if t.Rollout != nil {
		r := *t.Rollout
		r.Plan.Steps = slices.Clone(r.Plan.Steps)
		r.Verdicts = slices.Clone(r.Verdicts)
		r.Overrides = slices.Clone(r.Overrides)
		t.Rollout = &r
	}
	return t
}

// set puts slot i of w's roll into state st since when.
func set(w *model.Traffic, i int, st model.SlotState, when time.Time) {
	w.Roll.Slots[i].State, w.Roll.Slots[i].Since = st, when
}

// failed is what a failure with cause at now does to w's roll.
func failed(w *model.Traffic, cause string) {
	w.Roll.Phase, w.Roll.Cause, w.Roll.Reason = model.RollRollingBack, cause, cause
}

// ended is what the end of a roll at now does to w.
func ended(w *model.Traffic, rp model.RollPhase, now time.Time) {
	r := w.Roll
	r.Phase, r.EndedAt = rp, now
	switch rp {
	case model.RollCompleted:
		r.Reason = "every slot replaced"
		w.Stable, w.Target, w.Phase, w.GreenPercent = r.To, r.To, model.PhaseSwitched, greenFor(r.To)
	case model.RollRolledBack, model.RollAborted:
		r.Reason, w.Reason, w.Phase, w.GreenPercent = r.Cause, r.Cause, model.PhaseRolledBack, greenFor(r.From)
		if rp == model.RollAborted {
			w.Phase = model.PhaseAborted
		}
	}
}

// checkOut holds for every result of Decide.
func checkOut(t *testing.T, in, snap, out model.Traffic, acts []Action) {
	t.Helper()
	if !reflect.DeepEqual(in, snap) {
		t.Fatalf("input modified:\n%s", show(in, snap))
	}
	if err := out.Validate(); err != nil {
		t.Errorf("result does not validate: %v", err)
	}
	if acts == nil {
		if !reflect.DeepEqual(out, in) {
			t.Errorf("no actions, yet the state changed:\n%s", show(out, in))
		}
		return
	}
	if acts[0] != Persist {
		t.Errorf("actions %v do not persist first", acts)
	}
	if out.Generation != in.Generation+1 {
		t.Errorf("generation %d after %d, want one more", out.Generation, in.Generation)
	}
	if in.Roll != nil && out.Roll != nil {
		if in.Roll == out.Roll {
			t.Errorf("result shares the input's roll")
		}
		if len(in.Roll.Slots) > 0 && len(out.Roll.Slots) > 0 && &in.Roll.Slots[0] == &out.Roll.Slots[0] {
			t.Errorf("result shares the input's slots")
		}
	}
}

// show prints two states line by line, marking the lines that differ.
func show(got, want model.Traffic) string {
	g, w := strings.Split(dump(got), "\n"), strings.Split(dump(want), "\n")
	var b strings.Builder
	for i := range max(len(g), len(w)) {
		gl, wl := line(g, i), line(w, i)
		if gl == wl {
			continue
		}
		fmt.Fprintf(&b, "  got  %s\n  want %s\n", gl, wl)
	}
	if b.Len() == 0 {
		fmt.Fprintf(&b, "  got  %#v\n  want %#v\n", got.Roll, want.Roll)
	}
	return b.String()
}

func line(ls []string, i int) string {
	if i < len(ls) {
		return ls[i]
	}
	return "<none>"
}

func dump(t model.Traffic) string {
	s := fmt.Sprintf("traffic stable=%s target=%s green=%d phase=%s gen=%d reason=%q rollout=%v",
		t.Stable, t.Target, t.GreenPercent, t.Phase, t.Generation, t.Reason, t.Rollout != nil)
	if r := t.Roll; r != nil {
		s += fmt.Sprintf("\nroll id=%s %s->%s phase=%s reason=%q cause=%q byhand=%v started=%s ended=%s params=%+v",
			r.ID, r.From, r.To, r.Phase, r.Reason, r.Cause, r.ByHand, r.StartedAt.Format(time.DateTime), r.EndedAt.Format(time.DateTime), r.Params)
		for _, sl := range r.Slots {
			s += fmt.Sprintf("\nslot %s old=%s new=%s %s since=%s", sl.Key, sl.Old, sl.New, sl.State, sl.Since.Format(time.DateTime))
		}
	}
	return s
}

func equal(a, b model.Traffic) bool { return reflect.DeepEqual(a, b) }

// served is what the From colour's cluster carries for roll r on fleets fl:
// what a membership read pushes, with no tick in between.
func served(r *model.Roll, fl model.Membership) []model.ServingEndpoint {
	return model.Serving(r, fl.Fleet(r.From), fl.Fleet(r.To))
}

// byKeyOf maps each ring-hash key of a serving set to its hosts.
func byKeyOf(set []model.ServingEndpoint) map[string][]model.ServingEndpoint {
	out := map[string][]model.ServingEndpoint{}
	for _, e := range set {
		out[e.Endpoint.SlotKey()] = append(out[e.Endpoint.SlotKey()], e)
	}
	return out
}
