package sim

import (
	"context"
	"fmt"
	"time"

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

// storedBack: Consul holds switch id ended back.
func (w *World) storedBack(id string) bool {
	t, _, found, err := store{w.consul, &Replica{alive: true}}.Load(context.Background(), service)
	return err == nil && found && t.Rollout != nil && t.Rollout.ID == id && isBack(t.Rollout.Phase)
}

// onWrite checks every stored state as it is written.
func (w *World) onWrite(_ string, t model.Traffic) {
	c := w.consul
	if w.maxGen > 0 && t.Generation != w.maxGen+1 {
		w.violate("stored generation went from %d to %d: history must be gapless and rising", w.maxGen, t.Generation)
	}
	w.maxGen = max(w.maxGen, t.Generation)
	if who, ok := w.termOf[c.term]; ok && who != c.holder {
		w.violate("term %d written by %s but held by %s", c.term, c.holder, who)
	}
	if r := t.Rollout; r != nil {
		if d := w.decided[r.ID]; d != nil && !d.dropped && !isBack(r.Phase) {
			w.violate("stored switch %s as %s at %d%% after %s decided to roll it back", r.ID, r.Phase, r.Applied(), d.by)
		}
	}
}

// check runs the per-event invariants on every replica.
func (w *World) check() {
	for _, r := range w.replicas {
		st, ok := r.status()
		if !ok {
			continue
		}
		key := fmt.Sprintf("%s#%d", r.id, r.inc)
		o := w.seen[key]
		if o == nil {
			o = &observed{gen: st.Generation, green: st.Weights.Green, share: map[string]int{}, back: map[string]bool{}}
			w.seen[key] = o
		}
		// 4: the split moves only with a new generation.
		if st.Weights.Green != o.green && st.Generation == o.gen {
			w.violate("%s changed green %d%% → %d%% at the same generation %d", r.id, o.green, st.Weights.Green, st.Generation)
		}
		o.gen, o.green = st.Generation, st.Weights.Green
		// 1: rollbacks are final.
		if sw := st.Switch; sw != nil {
			share := st.Weights.Green
			if sw.To == model.Blue {
				share = st.Weights.Blue
			}
			if isBack(sw.Phase) && w.decided[sw.ID] == nil {
				w.decided[sw.ID] = &decision{by: r.id}
				w.s.trace("%s decided %s for %s", r.id, sw.Phase, sw.ID)
			}
			if d := w.decided[sw.ID]; d != nil && !d.dropped {
				if prev, seen := o.share[sw.ID]; seen && share > prev {
					w.violate("%s raised candidate share of %s from %d%% to %d%% after %s decided to roll it back", r.id, sw.ID, prev, share, d.by)
				}
				if o.back[sw.ID] && !isBack(sw.Phase) {
					w.violate("%s serves %s as %s again after serving it %s", r.id, sw.ID, sw.Phase, "ended back")
				}
			}
			o.share[sw.ID] = share
			if isBack(sw.Phase) {
				o.back[sw.ID] = true
			}
		}
		// 3: a carrying fleet never empties.
		for _, col := range model.Colors {
			n := st.Fleets[col].Served
			if n > 0 {
				r.everServed[col] = true
			}
			carries := (col == model.Green && st.Weights.Green > 0) || (col == model.Blue && st.Weights.Blue > 0)
			if carries && n == 0 && r.everServed[col] {
				w.violate("%s emptied %s, which carries %d%% of traffic", r.id, col, map[bool]int{true: st.Weights.Green, false: st.Weights.Blue}[col == model.Green])
			}
		}
	}
}

// final checks the healed world: every replica serves what is stored, and
// a decided rollback stands.
func (w *World) final() {
	t, _, found, err := store{w.consul, &Replica{alive: true}}.Load(context.Background(), service)
	if err != nil || !found {
		w.violate("after healing no state is stored (found %v, err %v)", found, err)
		return
	}
	for _, r := range w.replicas {
		st, ok := r.status()
		if !ok {
			w.violate("%s is not serving 30 s after every fault healed", r.id)
			continue
		}
		if st.Unsaved {
			w.violate("%s still holds an unsaved rollback 30 s after every fault healed", r.id)
		}
		if st.Generation != t.Generation || st.Weights.Green != t.GreenPercent {
			w.violate("%s serves generation %d (green %d%%) but generation %d (green %d%%) is stored", r.id, st.Generation, st.Weights.Green, t.Generation, t.GreenPercent)
		}
	}
	for id, d := range w.decided {
		if d.dropped {
			continue
		}
		if t.Rollout != nil && t.Rollout.ID == id && !isBack(t.Rollout.Phase) {
			w.violate("switch %s ended %s although %s decided to roll it back", id, t.Rollout.Phase, d.by)
		}
	}
}
