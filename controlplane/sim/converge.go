package sim

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	apiv1 "github.com/bgctl/bg/controlplane/api/v1"
	"github.com/bgctl/bg/controlplane/config"
	"github.com/bgctl/bg/controlplane/converge"
	"github.com/bgctl/bg/controlplane/model"
	"github.com/bgctl/bg/controlplane/state"
	"github.com/bgctl/bg/controlplane/state/consulkv"
	"github.com/bgctl/bg/controlplane/traffic"
)

// Declarative delivery in the simulation (Options.Converge): instead of
// the operator's switch, the operator desires web v2 (green runs v2, blue
// v1) and every replica runs the convergence loop; the leader starts the
// switch. Invariants: a version whose converged switch failed is never
// switched to again (no flapping), its failure is never forgotten, and
// after healing web is either converged or its version failed.

// convergeSettle is web's auto.settle in the simulation.
const convergeSettle = 2 * time.Second

var _ state.Desires = store{}

// SaveDesired: check-and-set, fenced by the lock like Save.
func (s store) SaveDesired(ctx context.Context, service string, d model.Desired, prev state.Index) (state.Index, error) {
	idx, err := s.SaveDesiredSet(ctx, []state.DesiredWrite{{Service: service, Desired: d, Prev: prev}})
	return idx[service], err
}

// SaveDesiredSet: one fenced transaction of check-and-set writes, all or
// none, as Consul's.
func (s store) SaveDesiredSet(_ context.Context, writes []state.DesiredWrite) (map[string]state.Index, error) {
	c := s.c
	if err := state.ValidateDesiredSet(writes); err != nil {
		return nil, err
	}
	if !c.reachable(s.r) {
		return nil, errUnreachable
	}
	if c.holder != s.r.id || c.holderInc != s.r.inc || c.term != s.r.term {
		return nil, state.ErrNotLeader
	}
	bodies := make([][]byte, len(writes))
	for i, w := range writes {
		cur, ok := c.desired[w.Service]
		if (w.Prev == 0 && ok) || (w.Prev != 0 && (!ok || cur.idx != uint64(w.Prev))) {
			return nil, state.ErrConflict
		}
		body, err := json.Marshal(w.Desired)
		if err != nil {
			return nil, err
		}
		bodies[i] = body
	}
	out := make(map[string]state.Index, len(writes))
	for i, w := range writes {
		var old *model.Desired
		if cur, ok := c.desired[w.Service]; ok {
			if o, err := consulkv.DecodeDesired(cur.body); err == nil {
				old = &o
			}
		}
		c.index++
		c.desired[w.Service] = stored{body: bodies[i], idx: c.index}
		c.w.onDesired(w.Service, old, w.Desired)
		out[w.Service] = state.Index(c.index)
	}
	return out, nil
}

// ListDesired reads every desired state.
func (s store) ListDesired(context.Context) (map[string]state.StoredDesired, error) {
	if !s.c.reachable(s.r) {
		return nil, errUnreachable
	}
	out := map[string]state.StoredDesired{}
	for svc, st := range s.c.desired {
		d, err := consulkv.DecodeDesired(st.body)
		if err != nil {
			return nil, err
		}
		out[svc] = state.StoredDesired{Desired: d, Index: state.Index(st.idx)}
	}
	return out, nil
}

// newLoop builds one incarnation's loop: web converges by itself.
func (r *Replica) newLoop(x rt) *converge.Loop {
	return converge.New(r.ctrl, store{r.w.consul, r}, converge.Options{
		Auto: map[string]config.Auto{service: {Enabled: true, Trigger: config.TriggerManual, Settle: convergeSettle}, cache: config.DefaultAuto()},
		Now:  x.Now, Go: x.Go, Timeout: time.Second, Backoff: time.Second, Log: quiet,
	})
}

// convergeTick runs one round of the loop every 500 ms while the
// incarnation lives (serve runs it every second and on every change).
func (r *Replica) convergeTick(x rt) {
	r.loop.Round(context.Background())
	r.w.s.After(500*time.Millisecond, "", x.live("converge", func() { r.convergeTick(x) }))
}

// operatorDesire: `bg desire web --version v2`, sent to the leader,
// retried until some leader stores it.
func (w *World) operatorDesire() {
	r := w.leader()
	if r == nil || !w.consul.reachable(r) || r.loop == nil {
		w.s.After(500*time.Millisecond, "operator: retry desire", w.operatorDesire)
		return
	}
	if _, err := r.loop.Desire(traffic.WithActor(context.Background(), "operator"), service, apiv1.DesireRequest{Version: "v2"}); err != nil {
		w.s.trace("desire refused: %v", err)
		w.s.After(500*time.Millisecond, "operator: retry desire", w.operatorDesire)
		return
	}
	w.s.trace("desired web v2")
	w.check()
}

// onDesired checks each stored desired state against the one it replaces.
func (w *World) onDesired(svc string, old *model.Desired, d model.Desired) {
	same := old != nil && old.Version == d.Version && old.At.Equal(d.At)
	if !same {
		return
	}
	if old.Failed != nil && d.Failed == nil {
		w.violate("%s: desired %s lost its failure (%s) without a retry", svc, d.Version, old.Failed.Reason)
	}
	if old.Failed != nil && d.Attempt != old.Attempt {
		w.violate("%s: desired %s attempted again (%s) after it failed", svc, d.Version, d.Attempt)
	}
	if d.Failed != nil && old.Failed == nil {
		w.failedAt = w.s.Now()
		w.s.trace("desired %s failed: %s %s", d.Version, d.Failed.Cause, d.Failed.Reason)
	}
}

// onConvergeWrite: no switch of web starts after its desired version
// failed (no flapping).
func (w *World) onConvergeWrite(svc string, t model.Traffic) {
	if svc != service || t.Rollout == nil || !t.Rollout.Phase.Running() {
		return
	}
	id := t.Rollout.ID
	if w.convSwitches[id] {
		return
	}
	w.convSwitches[id] = true
	w.s.trace("web switch %s started (converge)", id)
	if !w.failedAt.IsZero() {
		w.violate("web: switch %s started after the desired version failed at %s", id, w.failedAt.Format(time.RFC3339Nano))
	}
}

// finalConverge: after healing, web serves v2 on green at 100 %, or its
// desired version is marked failed.
func (w *World) finalConverge() {
	st, ok := w.consul.desired[service]
	if !ok {
		w.violate("web: no desired version stored 30 s after every fault healed")
		return
	}
	d, err := consulkv.DecodeDesired(st.body)
	if err != nil {
		w.violate("web: stored desired state does not decode: %v", err)
		return
	}
	t, ok := w.stored(service)
	if !ok {
		return // final reports it
	}
	converged := t.GreenPercent == 100 && t.Phase != model.PhaseSwitching
	if !converged && d.Failed == nil {
		w.violate("web: neither converged (green %d%%, %s) nor failed 30 s after every fault healed; desired %+v", t.GreenPercent, t.Phase, d)
	}
	if n := len(w.convSwitches); n == 0 && converged {
		w.violate("web: converged without a switch")
	} else if n > 1 {
		w.violate("web: %d switches for one desired version: %v", n, fmt.Sprint(w.convSwitches))
	}
}
