package sim

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"

	"github.com/bgctl/bg/controlplane/model"
)

// The invariants (README "Safety invariants"), checked after every event:
//
//  1. A rollback is final: once any replica decided to roll switch X back,
//     no replica raises X's candidate share again, none serves X running
//     after it served X ended back, and no write stores X undone. (A
//     rollback decided by a replica that dies before any write reaches
//     Consul dies with it: nobody else can know of it. The next leader's
//     own analysis decides again.)
//  3. A fleet that carries traffic is never emptied by a read.
//  4. A split never changes without a new generation: no default, no
//     stale state replaces what is served.
//
// And: stored generations rise by exactly one per write, so history is
// gapless (a deleted key is written back at the next one), at most one
// replica writes per term; at the end, after
// every fault healed, all replicas serve what is stored.

func (w *World) violate(format string, args ...any) {
	msg := fmt.Sprintf("%.3fs: ", w.s.Now().Sub(w.startTime()).Seconds()) + fmt.Sprintf(format, args...)
	w.violations = append(w.violations, msg)
	w.s.trace("VIOLATION %s", msg)
}

func (w *World) startTime() time.Time { return simStart }

func isBack(p model.RolloutPhase) bool {
	return p == model.RolloutRollingBack || p == model.RolloutRolledBack || p == model.RolloutAborted
}

func rollBack(p model.RollPhase) bool {
	return p == model.RollRollingBack || p == model.RollRolledBack || p == model.RollAborted
}

func (w *World) stored(svc string) (model.Traffic, bool) {
	t, _, found, err := store{w.consul, &Replica{alive: true}}.Load(context.Background(), svc)
	return t, err == nil && found
}

// storedBack: Consul holds the switch or roll key ended back.
func (w *World) storedBack(key string) bool {
	svc, id, _ := strings.Cut(key, "/")
	t, ok := w.stored(svc)
	if !ok {
		return false
	}
	if r := t.Rollout; r != nil && r.ID == id {
		return isBack(r.Phase)
	}
	if r := t.Roll; r != nil && r.ID == id {
		return rollBack(r.Phase)
	}
	return false
}

// onIntent: an intent makes the rollback it carries durable, unless the
// switch or roll already ended forward in Consul: then it came too late
// and binds nobody (the decider follows the stored end).
func (w *World) onIntent(svc string, in model.Intent) {
	d := w.decided[svc+"/"+in.ID]
	if d == nil {
		d = &decision{by: in.By}
		w.decided[svc+"/"+in.ID] = d
	}
	d.durable = true
	if t, ok := w.stored(svc); ok && endedForward(t, in.ID) {
		d.dropped = true
		w.s.trace("%s's rollback intent for %s/%s came after it ended forward", in.By, svc, in.ID)
		return
	}
	w.s.trace("%s wrote a rollback intent for %s/%s", in.By, svc, in.ID)
}

// endedForward: in t, the switch or roll id ended promoted or completed.
func endedForward(t model.Traffic, id string) bool {
	if r := t.Rollout; r != nil && r.ID == id {
		return r.Phase == model.RolloutPromoted
	}
	if r := t.Roll; r != nil && r.ID == id {
		return r.Phase == model.RollCompleted
	}
	return false
}

// onWrite checks every stored state as it is written.
func (w *World) onWrite(svc string, t model.Traffic) {
	c := w.consul
	if last := w.maxGen[svc]; last > 0 && t.Generation != last+1 {
		w.violate("%s: stored generation went from %d to %d: history must be gapless and rising", svc, last, t.Generation)
	}
	w.maxGen[svc] = max(w.maxGen[svc], t.Generation)
	if w.opts.Converge {
		w.onConvergeWrite(svc, t)
	}
	if who, ok := w.termOf[c.term]; ok && who != c.holder {
		w.violate("term %d written by %s but held by %s", c.term, c.holder, who)
	}
	if r := t.Rollout; r != nil {
		w.checkSwitchVerdicts(c.holder, svc+"/"+r.ID, r)
		d := w.decided[svc+"/"+r.ID]
		if d != nil && d.durable && !d.dropped && !isBack(r.Phase) {
			w.violate("%s: stored switch %s as %s at %d%% after %s decided to roll it back", svc, r.ID, r.Phase, r.Applied(), d.by)
		}
		if d != nil && isBack(r.Phase) {
			d.durable = true
		}
	}
	if r := t.Roll; r != nil {
		w.checkRollVerdicts(c.holder, svc+"/"+r.ID, r)
		d := w.decided[svc+"/"+r.ID]
		if d != nil && d.durable && !d.dropped && !rollBack(r.Phase) {
			w.violate("%s: stored roll %s as %s after %s decided to roll it back", svc, r.ID, r.Phase, d.by)
		}
		if d != nil && rollBack(r.Phase) {
			d.durable = true
		}
	}
}

// check runs the per-event invariants on every replica and service.
func (w *World) check() {
	for _, r := range w.replicas {
		for _, svc := range services {
			w.checkOne(r, svc)
		}
	}
}

func (w *World) checkOne(r *Replica, svc string) {
	st, ok := r.status(svc)
	if !ok {
		return
	}
	w.checkAcks(r, svc, ackStatus{st.Acks})
	key := fmt.Sprintf("%s#%d/%s", r.id, r.inc, svc)
	o := w.seen[key]
	if o == nil {
		o = &observed{gen: st.Generation, green: st.Weights.Green, share: map[string]int{}, back: map[string]bool{}, step: map[string]int{}}
		w.seen[key] = o
	}
	// 4: the split moves only with a new generation. (A replica that gives
	// up an unsaved rollback for a stored end that came first may meet the
	// same number: its rollback's generation was never stored.)
	if st.Weights.Green != o.green && st.Generation == o.gen && !o.unsaved {
		w.violate("%s %s changed green %d%% → %d%% at the same generation %d", r.id, svc, o.green, st.Weights.Green, st.Generation)
	}
	o.gen, o.green, o.unsaved = st.Generation, st.Weights.Green, st.Unsaved
	// 1: rollbacks are final.
	if sw := st.Switch; sw != nil {
		share := st.Weights.Green
		if sw.To == model.Blue {
			share = st.Weights.Blue
		}
		id := svc + "/" + sw.ID
		// 6: no step advances without a passing verdict at the step it leaves.
		if prev, seen := o.step[id]; seen && sw.Step > prev && !isBack(sw.Phase) {
			passed := slices.ContainsFunc(sw.Verdicts, func(v model.StepVerdict) bool { return v.Step == prev && v.Outcome == "pass" })
			if !passed {
				w.violate("%s advanced %s from step %d to %d without a passing verdict at step %d: %+v", r.id, id, prev, sw.Step, prev, sw.Verdicts)
			}
		}
		o.step[id] = sw.Step
		if isBack(sw.Phase) && w.decided[id] == nil {
			w.decided[id] = &decision{by: r.id}
			w.s.trace("%s decided %s for %s", r.id, sw.Phase, id)
		}
		if d := w.decided[id]; d != nil && !d.durable && d.by == r.id && sw.Phase == model.RolloutPromoted {
			if t, ok := w.stored(svc); ok && endedForward(t, sw.ID) {
				d.dropped = true // promoted elsewhere before the rollback reached Consul
				w.s.trace("%s's rollback of %s came after it was promoted elsewhere", r.id, id)
			}
		}
		if d := w.decided[id]; d != nil && !d.dropped && (d.durable || d.by == r.id) {
			if prev, seen := o.share[id]; seen && share > prev {
				w.violate("%s raised candidate share of %s from %d%% to %d%% after %s decided to roll it back", r.id, id, prev, share, d.by)
			}
			if o.back[id] && !isBack(sw.Phase) {
				w.violate("%s serves %s as %s again after serving it ended back", r.id, id, sw.Phase)
			}
		}
		o.share[id] = share
		if isBack(sw.Phase) {
			o.back[id] = true
		}
	}
	if rl := st.Roll; rl != nil {
		id := svc + "/" + rl.ID
		if rollBack(rl.Phase) && w.decided[id] == nil {
			w.decided[id] = &decision{by: r.id}
			w.s.trace("%s decided %s for %s", r.id, rl.Phase, id)
		}
		if d := w.decided[id]; d != nil && !d.durable && d.by == r.id && rl.Phase == model.RollCompleted {
			if t, ok := w.stored(svc); ok && endedForward(t, rl.ID) {
				d.dropped = true // the roll completed elsewhere before the rollback reached Consul
				w.s.trace("%s's rollback of %s came after it completed elsewhere", r.id, id)
			}
		}
		if d := w.decided[id]; d != nil && !d.dropped && (d.durable || d.by == r.id) && o.back[id] && !rollBack(rl.Phase) {
			w.violate("%s serves roll %s as %s again after serving it going back", r.id, id, rl.Phase)
		}
		if rollBack(rl.Phase) {
			o.back[id] = true
		}
	}
	// 3: a carrying fleet never empties.
	for _, col := range model.Colors {
		n := st.Fleets[col].Served
		k := svc + "/" + string(col)
		if n > 0 {
			r.everServed[k] = true
		}
		share := st.Weights.Blue
		if col == model.Green {
			share = st.Weights.Green
		}
		if share > 0 && n == 0 && r.everServed[k] {
			w.violate("%s emptied %s %s, which carries %d%% of traffic", r.id, svc, col, share)
		}
	}
}

// checkEDS (invariant 5) runs on every endpoint push of a replica: in the
// cache cluster that carries traffic, each slot's ring-hash key has at most
// one serving host, and exactly one while the slot's old host or its
// replacement passes in the replica's last read. A key without a serving
// host rebuilds the ring and moves other slots' sessions.
func (w *World) checkEDS(r *Replica) {
	st, ok := r.status(cache)
	if !ok {
		return
	}
	col := st.Stable
	if st.Weights.Green == 100 {
		col = model.Green
	} else if st.Weights.Blue == 100 {
		col = model.Blue
	}
	if rl := st.Roll; rl != nil && rl.Phase.Running() {
		col = rl.From
	}
	cla := r.eds[model.ClusterName(cache, col)]
	if cla == nil {
		return
	}
	serving := map[string][]string{}
	for _, l := range cla.GetEndpoints() {
		for _, e := range l.GetLbEndpoints() {
			if e.GetHealthStatus() == core.HealthStatus_DRAINING {
				continue
			}
			k := e.GetMetadata().GetFilterMetadata()["envoy.lb"].GetFields()["hash_key"].GetStringValue()
			serving[k] = append(serving[k], e.GetEndpoint().GetHostname())
		}
	}
	read := r.lastRead[cache]
	for i := 1; i <= 4; i++ {
		k := fmt.Sprintf("s%d", i)
		if len(serving[k]) > 1 {
			w.violate("%s: slot %s of cache serves %v at once", r.id, k, serving[k])
		}
		passing := slices.ContainsFunc(read.Fleet(col).Endpoints, func(e model.Endpoint) bool { return e.Slot == k }) ||
			st.Roll != nil && st.Roll.Phase.Running() && slices.ContainsFunc(read.Fleet(col.Other()).Endpoints, func(e model.Endpoint) bool { return e.Slot == k })
		if passing && len(serving[k]) == 0 {
			w.violate("%s: slot %s of cache has no serving host while a host of it passes (roll %+v)", r.id, k, st.Roll)
		}
	}
}

// final checks the healed world: every replica serves what is stored, and
// a decided rollback stands.
func (w *World) final() {
	for _, svc := range services {
		t, ok := w.stored(svc)
		if !ok {
			w.violate("%s: after healing no state is stored", svc)
			continue
		}
		for _, r := range w.replicas {
			st, ok := r.status(svc)
			if !ok {
				w.violate("%s is not serving 30 s after every fault healed", r.id)
				continue
			}
			if st.Unsaved {
				w.violate("%s still holds an unsaved rollback of %s 30 s after every fault healed", r.id, svc)
			}
			if st.Generation != t.Generation || st.Weights.Green != t.GreenPercent {
				w.violate("%s serves %s generation %d (green %d%%) but generation %d (green %d%%) is stored", r.id, svc, st.Generation, st.Weights.Green, t.Generation, t.GreenPercent)
			}
		}
		for id, d := range w.decided {
			if d.dropped || !strings.HasPrefix(id, svc+"/") {
				continue
			}
			sid := strings.TrimPrefix(id, svc+"/")
			if t.Rollout != nil && t.Rollout.ID == sid && !isBack(t.Rollout.Phase) {
				w.violate("%s: switch %s ended %s although %s decided to roll it back", svc, sid, t.Rollout.Phase, d.by)
			}
			if t.Roll != nil && t.Roll.ID == sid && !rollBack(t.Roll.Phase) {
				w.violate("%s: roll %s ended %s although %s decided to roll it back", svc, sid, t.Roll.Phase, d.by)
			}
		}
	}
}

// checkSwitchVerdicts (invariant 6, checked on the decisions): while no
// verdict is possible (Prometheus down, NaN, no traffic — for longer than
// a round takes), no write moves a switch to a later step or promotes it
// on the analysis. checkOne asks for a passing verdict at the step left;
// this asks that it came from counts read before the metrics went blind,
// not from an analysis of a spell without data. An advance by gates (the
// analysis had passed and the switch waited for its step gates) is theirs.
func (w *World) checkSwitchVerdicts(by, id string, r *model.Rollout) {
	if w.switchSteps == nil {
		w.switchSteps = map[string]storedStep{}
	}
	prev, seen := w.switchSteps[id]
	w.switchSteps[id] = storedStep{step: r.Step, gate: r.Gate}
	if !seen || r.Step <= prev.step || isBack(r.Phase) || prev.gate != "" ||
		w.blindSince.IsZero() || w.s.Now().Sub(w.blindSince) < 100*time.Millisecond {
		return
	}
	w.violate("%s: %s advanced from step %d to %d without a verdict (metrics blind since %s)", by, id, prev.step, r.Step, w.blindSince.Sub(simStart))
}

// storedStep is where a stored switch stood.
type storedStep struct {
	step int
	gate string
}

// checkRollVerdicts (invariant 6 for rolls): while no verdict is possible
// (Prometheus down, NaN, too little traffic — for longer than a round
// takes), a judged roll going forward finishes no bake and, once any
// replacement takes traffic, starts no new slot.
//
// It judges the decisions, i.e. the stored writes, not each replica's
// view: roll steps are stored before anyone serves them, and a follower
// whose watch missed a write (cut off from Consul) sees it late, during
// a blind spell that began after the leader decided (seed 1907: a step
// stored at 2.8 s, seen by a follower at 9.6 s, blind since 6.6 s).
func (w *World) checkRollVerdicts(by, id string, rl *model.Roll) {
	if w.rollSlots == nil {
		w.rollSlots = map[string][]model.SlotState{}
	}
	prev := w.rollSlots[id]
	w.rollSlots[id] = make([]model.SlotState, len(rl.Slots))
	for i, s := range rl.Slots {
		w.rollSlots[id][i] = s.State
	}
	if !rl.Params.Judged || rl.Phase != model.RollRolling || len(prev) != len(rl.Slots) ||
		w.blindSince.IsZero() || w.s.Now().Sub(w.blindSince) < 100*time.Millisecond {
		return
	}
	moving := false
	for _, s := range prev {
		if s != model.SlotPending {
			moving = true
		}
	}
	for i, s := range rl.Slots {
		switch {
		case prev[i] == model.SlotBaking && s.State == model.SlotReplaced:
			w.violate("%s: %s finished the bake of slot %s without a verdict (metrics blind since %s)", by, id, s.Key, w.blindSince.Sub(simStart))
		case moving && prev[i] == model.SlotPending && s.State == model.SlotDraining:
			w.violate("%s: %s started slot %s without a verdict (metrics blind since %s)", by, id, s.Key, w.blindSince.Sub(simStart))
		}
	}
}
