package traffic

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/bgctl/bg/controlplane/model"
	"github.com/bgctl/bg/controlplane/rolling"
	"github.com/bgctl/bg/controlplane/rollout"
	"github.com/bgctl/bg/controlplane/state"
	"github.com/bgctl/bg/controlplane/translator"
)

// One reconciler per service: every change of a service's state runs on
// that service's loop (Runtime.Post / Call), one message at a time. A
// message is decided (decide*: which next state, which effects), then the
// effects are carried out in one fixed order by execute: persist (fenced,
// check-and-set), push, record. No lock is held across a message, and
// nothing waits for proxies on the loop: ACK waits and analyses run off it
// and report back as messages.

// effects are what a decision asks execute to do, whichever state machine
// (rollout or rolling) or policy produced it.
type effects struct {
	persist, pushRoute, pushEndpoints, confirm bool
	// safety marks a move back to the stable colour decided by bg itself
	// (rollback): it is served even when it cannot be stored yet, and no
	// later read of an older state may undo it.
	safety bool
}

// effectsOf reads the effects of either state machine's decision.
func effectsOf(a []model.Effect) effects {
	e := effects{}
	for _, x := range a {
		switch x {
		case model.EffectPersist:
			e.persist = true
		case model.EffectPushRoute:
			e.pushRoute = true
		case model.EffectPushEndpoints:
			e.pushEndpoints = true
		case model.EffectConfirm:
			e.confirm = true
		}
	}
	return e
}

// ErrStateMissing: no traffic state is stored and this replica may not
// create one (it does not lead, or no colour has members yet).
var ErrStateMissing = errors.New("no traffic state stored yet")

// post queues fn on the service's loop.
func (c *Controller) post(s *service, fn func()) { c.rt.Post(s.cfg.Name, fn) }

// call runs fn on the service's loop and waits for it.
func (c *Controller) call(s *service, fn func()) { c.rt.Call(s.cfg.Name, fn) }

// execute carries out one decision: persist, then push, then record. Runs
// on the service's loop. A failed persist changes nothing, except for a
// safety move, which is served anyway and stored as soon as possible.
func (c *Controller) execute(ctx context.Context, s *service, cur, next model.Traffic, eff effects) error {
	name := s.cfg.Name
	unsaved := false
	if eff.persist {
		c.mu.Lock()
		idx := s.index
		if s.loaded && s.storedGen > 0 && next.Generation != s.storedGen+1 {
			// Decisions made while a rollback was unsaved each counted a
			// generation; what is stored next is the next one after what
			// is stored, so history stays gapless.
			next.Generation = s.storedGen + 1
		}
		c.mu.Unlock()
		began := time.Now()
		entry := c.entry(ctx, cur, next)
		newIdx, err := c.store.Save(ctx, name, next, idx, entry)
		c.m.stateWrite.Observe(time.Since(began).Seconds())
		switch {
		case err == nil:
			c.mu.Lock()
			s.index, s.unsaved, s.storedGen = newIdx, false, next.Generation
			c.mu.Unlock()
			// Recorded (notifications, history pruning) after the push
			// below: persist, push, then record.
			defer func() {
				c.maybePrune(name, next.Generation)
				c.record(name, cur, next, entry)
			}()
		case eff.safety:
			c.log.Error("could not store the rollback; serving it anyway and retrying the write", "service", name, "error", err)
			unsaved = true
		default:
			if errors.Is(err, state.ErrConflict) || errors.Is(err, state.ErrIntent) {
				c.refresh(ctx, s)
			}
			return fmt.Errorf("persist traffic state of %s: %w (nothing was changed)", name, err)
		}
	}
	c.mu.Lock()
	s.traffic = next
	if unsaved {
		s.unsaved = true
	}
	c.mu.Unlock()
	// Which colours carry traffic may have changed: re-apply the guard.
	c.mu.Lock()
	hasRead := s.membership != nil
	last := s.guarded.Read
	c.mu.Unlock()
	if (hasRead && c.guardFleets(s, last)) || eff.pushEndpoints {
		c.pushEndpoints(s, next)
	}
	// Every generation is pushed (an unchanged route is only re-labelled),
	// so "every proxy holds generation N" has an answer for each N.
	if _, err := c.pusher.UpdateRouteGen(name, translator.ServiceRoute(c.effective(s), next), next.Generation); err != nil {
		c.log.Error("push route", "service", name, "error", err)
	} else if routeChanged(cur, next) {
		c.log.Info("traffic changed", "service", name, "from", describe(cur), "to", describe(next), "reason", next.Reason)
	}
	c.m.setWeights(name, next)
	c.m.recordChange(name, cur, next)
	if overrideFrom(ctx) != "" {
		c.m.overrides.Add(name, "", 1)
	}
	if unsaved {
		c.retrySave(s, next.Generation, 250*time.Millisecond)
	}
	if eff.confirm {
		c.confirmLater(s, next)
	}
	c.schedule(s)
	c.changed(s)
	return nil
}

// routeChanged: the route depends on the split and on where pools and
// mirrored requests go.
func routeChanged(cur, next model.Traffic) bool {
	return next.GreenPercent != cur.GreenPercent || next.Candidate() != cur.Candidate()
}

// pushEndpoints pushes both colours' load assignments as t implies (a roll
// serves a mix of old and new hosts). Runs on the loop.
func (c *Controller) pushEndpoints(s *service, t model.Traffic) {
	c.mu.Lock()
	if s.membership == nil {
		c.mu.Unlock()
		return
	}
	sv := model.ServiceView{Service: s.effective(), Membership: *s.membership, Traffic: t}
	c.mu.Unlock()
	if err := c.pusher.UpdateEndpoints(translator.Endpoints(sv)); err != nil {
		c.log.Error("push endpoints", "service", s.cfg.Name, "error", err)
	}
}

// confirmLater waits, off the loop, until every proxy holds a flip back,
// then records when on the loop.
func (c *Controller) confirmLater(s *service, flipped model.Traffic) {
	c.rt.Go(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if !c.waitAcks(ctx, s.cfg.Name, flipped.Generation).Complete() || flipped.Rollout == nil {
			return
		}
		at := c.now()
		c.post(s, func() { c.onConfirmed(s, flipped.Generation, at) })
	})
}

func (c *Controller) onConfirmed(s *service, gen uint64, at time.Time) {
	c.mu.Lock()
	t, unsaved, idx := s.traffic, s.unsaved, s.index
	c.mu.Unlock()
	if t.Generation != gen || t.Rollout == nil || !t.Rollout.ConfirmedAt.IsZero() {
		return // something newer happened; it records itself
	}
	next := t
	r := *t.Rollout
	r.ConfirmedAt = at
	next.Rollout = &r
	if !r.DetectedAt.IsZero() {
		c.m.rollbackSeconds.WithLabelValues(s.cfg.Name).Observe(at.Sub(r.DetectedAt).Seconds())
	}
	if unsaved {
		// The pending write of the rollback carries it, in the same
		// generation: history stays gapless.
		c.mu.Lock()
		s.traffic = next
		c.mu.Unlock()
		c.changed(s)
		return
	}
	next.Generation++ // a change of the stored state: its own history entry
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	entry := c.entry(ctx, t, next)
	if newIdx, err := c.store.Save(ctx, s.cfg.Name, next, idx, entry); err == nil {
		c.mu.Lock()
		s.traffic, s.index, s.storedGen = next, newIdx, next.Generation
		c.mu.Unlock()
		c.record(s.cfg.Name, t, next, entry)
		c.pusher.MarkRouteGen(s.cfg.Name, next.Generation)
		c.changed(s)
	}
}

// retrySave schedules another attempt to store an unsaved rollback.
func (c *Controller) retrySave(s *service, gen uint64, delay time.Duration) {
	c.rt.After(delay, func() {
		c.post(s, func() { c.onRetrySave(s, gen, min(delay*2, 5*time.Second)) })
	})
}

// onRetrySave re-reads the stored state and lets onStored decide: it
// writes the rollback over the state it undoes, or adopts a newer decision.
func (c *Controller) onRetrySave(s *service, gen uint64, next time.Duration) {
	c.mu.Lock()
	pending := s.unsaved
	c.mu.Unlock()
	if !pending {
		return
	}
	c.rt.Go(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		t, idx, found, err := c.store.Load(ctx, s.cfg.Name)
		c.post(s, func() {
			if err == nil {
				c.onStored(s, t, idx, found, true)
			}
			c.mu.Lock()
			still := s.unsaved
			g := s.traffic.Generation
			c.mu.Unlock()
			if still {
				c.retrySave(s, g, next)
			}
		})
	})
}

// undoes is true when stored, if served, would undo the rollback that
// ours decided: the same switch or roll, still running forward. One that
// already ended forward (promoted, completed) before the rollback reached
// Consul stands: the decision came too late to bind anyone else.
func undoes(stored, ours model.Traffic) bool {
	if !stored.Forward() {
		return false
	}
	if r := ours.Rollout; r != nil && rolloutBack(r.Phase) {
		return stored.Rollout != nil && stored.Rollout.ID == r.ID
	}
	if r := ours.Roll; r != nil && rollBack(r.Phase) {
		return stored.Roll != nil && stored.Roll.ID == r.ID
	}
	return false
}

// onStored takes a read of the stored state: the initial load, a fresh
// read by a new leader (fresh), or the watch. Runs on the loop.
//
//   - An unsaved rollback wins over any stored state that would undo it:
//     a leader writes it over that state; nobody serves the older state.
//   - A missing key never becomes a default while anything serves: a
//     leader writes back what it served; the first load restores the last
//     history entry, or starts a fresh install on a colour with members.
func (c *Controller) onStored(s *service, t model.Traffic, idx state.Index, found, fresh bool) error {
	c.mu.Lock()
	in := storedInput{cur: s.traffic, curIdx: s.index, loaded: s.loaded, unsaved: s.unsaved, leading: c.leading,
		stored: t, idx: idx, found: found, fresh: fresh}
	c.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cur := in.cur
	switch decideStored(in) {
	case storedIgnore:
		return nil
	case storedKeepRollback:
		c.log.Warn("stored state would undo a rollback this replica decided; keeping the rollback until the leader stores it", "service", s.cfg.Name)
		c.writeIntent(ctx, s, cur)
		return nil
	case storedWriteRollback:
		// The next generation after what is stored: history stays gapless.
		return c.writeBack(ctx, s, withGeneration(cur, t.Generation+1), idx, t, "stored the rollback decided while Consul could not be written")
	case storedWriteBack:
		c.mu.Lock()
		gen := s.storedGen + 1 // the next after the last one stored: gapless
		c.mu.Unlock()
		if gen == 1 {
			gen = cur.Generation + 1
		}
		return c.writeBack(ctx, s, withGeneration(cur, gen), 0, cur, "the stored state was missing; wrote back the state this replica served")
	case storedCreate:
		return c.createMissing(ctx, s)
	}
	// storedAdopt. (A replica giving up an unsaved rollback for a stored
	// end that came first may adopt the number its rollback used: that
	// generation was never stored, so only its own ACK reports saw it.)
	c.mu.Lock()
	s.traffic, s.index, s.loaded, s.unsaved, s.storedGen = t, idx, true, false, t.Generation
	pushed := c.pushed && s.published
	c.mu.Unlock()
	c.m.setWeights(s.cfg.Name, t)
	if in.loaded && pushed && (t.Generation != cur.Generation || t.GreenPercent != cur.GreenPercent) {
		c.pushTraffic(s)
		c.log.Info("serving the stored state", "service", s.cfg.Name, "state", describe(t))
	}
	c.schedule(s)
	c.changed(s)
	return nil
}

// storedInput is what decideStored weighs: what this replica serves, and a
// read of the stored state.
type storedInput struct {
	cur                      model.Traffic // served now
	curIdx                   state.Index   // stored revision cur was read or written at
	loaded, unsaved, leading bool
	stored                   model.Traffic
	idx                      state.Index
	found                    bool // false: no key is stored
	fresh                    bool // a consistent read (load, takeover, retry), not the watch
}

// storedAction is what a replica does with a read of the stored state.
type storedAction int

const (
	storedIgnore        storedAction = iota // nothing: our own write, an older read, or the leader's job
	storedAdopt                             // serve what is stored
	storedKeepRollback                      // follower: keep serving our unsaved rollback
	storedWriteRollback                     // leader: write our unsaved rollback over the stored state
	storedWriteBack                         // leader: the key vanished; write back what we served
	storedCreate                            // first load with no key: restore from history or create
)

// decideStored is the policy for stored-state reads (invariants 1 and 4):
// an unsaved rollback wins over any stored state that would undo it, and a
// missing key never becomes a default while anything serves. Pure.
func decideStored(in storedInput) storedAction {
	switch {
	case !in.found && !in.loaded:
		return storedCreate // createMissing refuses unless leading
	case !in.found && in.leading:
		return storedWriteBack
	case !in.found:
		return storedIgnore // the leader writes it back; keep serving
	case in.loaded && in.unsaved && undoes(in.stored, in.cur) && in.leading:
		return storedWriteRollback
	case in.loaded && in.unsaved && undoes(in.stored, in.cur):
		return storedKeepRollback
	case in.loaded && !in.fresh && in.idx <= in.curIdx:
		return storedIgnore // our own write, or older than what we hold
	case in.loaded && in.idx == in.curIdx && in.stored.Generation == in.cur.Generation:
		return storedIgnore
	}
	return storedAdopt
}

// writeIntent hands a rollback this replica cannot store to the leader: an
// intent any replica may write, which the leader carries out and which
// keeps every replica from storing the switch going forward meanwhile.
func (c *Controller) writeIntent(ctx context.Context, s *service, cur model.Traffic) {
	is, ok := c.store.(state.Intents)
	in, has := model.IntentOf(cur, c.replicaID())
	if !ok || !has {
		return
	}
	c.mu.Lock()
	done := s.intentFor == in.ID
	c.mu.Unlock()
	if done {
		return
	}
	if err := is.SaveIntent(ctx, s.cfg.Name, in); err != nil {
		c.log.Warn("cannot write the rollback intent yet; retrying", "service", s.cfg.Name, "error", err)
		return
	}
	c.log.Warn("wrote a rollback intent for the leader", "service", s.cfg.Name, "id", in.ID, "cause", in.Cause)
	c.mu.Lock()
	s.intentFor = in.ID
	c.mu.Unlock()
}

// OnIntent takes a rollback intent read by the watch (found false: removed).
func (c *Controller) OnIntent(service string, in model.Intent, found bool) {
	s := c.get(service)
	if s == nil || !found {
		return
	}
	c.post(s, func() { c.onIntent(s, in) })
}

// onIntent: the leader carries out another replica's rollback of the
// switch or roll it names, as its own analysis would have; an intent
// naming nothing that runs forward is stale and removed.
func (c *Controller) onIntent(s *service, in model.Intent) {
	c.mu.Lock()
	cur, leading, fleets := s.traffic, c.leading, s.membership
	c.mu.Unlock()
	if !leading {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	switch {
	case !in.Roll && cur.Rollout != nil && cur.Rollout.ID == in.ID && cur.Forward():
		c.log.Warn("carrying out another replica's rollback", "service", s.cfg.Name, "switch", in.ID, "by", in.By, "cause", in.Cause)
		if err := c.decideRollout(s, cur, rollout.Rollback{Now: c.now(), DetectedAt: in.At, Cause: in.Cause, Reason: in.Reason}); err != nil {
			c.log.Warn("rollback intent not applied", "service", s.cfg.Name, "error", err)
		}
	case in.Roll && cur.Roll != nil && cur.Roll.ID == in.ID && cur.Forward() && fleets != nil:
		c.log.Warn("carrying out another replica's roll rollback", "service", s.cfg.Name, "roll", in.ID, "by", in.By)
		next, actions, err := rolling.Decide(cur, *fleets, rolling.Rollback{Now: c.now(), Reason: in.Reason})
		if err == nil && actions != nil {
			eff := effectsOf(actions)
			eff.safety = true
			err = c.execute(ctx, s, cur, next, eff)
		}
		if err != nil {
			c.log.Warn("rollback intent not applied", "service", s.cfg.Name, "error", err)
		}
	default:
		if is, ok := c.store.(state.Intents); ok {
			if err := is.DeleteIntent(ctx, s.cfg.Name); err != nil {
				c.log.Warn("cannot remove a stale rollback intent", "service", s.cfg.Name, "error", err)
			}
		}
	}
}

// loadIntent reads a standing intent and acts on it (leader only).
func (c *Controller) loadIntent(ctx context.Context, s *service) {
	c.applyIntent(s, c.intentOf(ctx))
}

// applyIntent acts on the service's standing intent, if load finds one.
func (c *Controller) applyIntent(s *service, load intentLoader) {
	if in, found, err := load(s.cfg.Name); err == nil && found {
		c.onIntent(s, in)
	}
}

func withGeneration(t model.Traffic, g uint64) model.Traffic {
	t.Generation = g
	return t
}

// writeBack stores t over the stored revision prev (0: none), recording
// why; before is what was stored (what t changes, for the recorder).
func (c *Controller) writeBack(ctx context.Context, s *service, t model.Traffic, prev state.Index, before model.Traffic, why string) error {
	c.mu.Lock()
	cur := s.traffic
	c.mu.Unlock()
	e := c.entry(ctx, cur, t)
	e.Reason = why
	idx, err := c.store.Save(ctx, s.cfg.Name, t, prev, e)
	if err != nil {
		return fmt.Errorf("service %s: %s: %w", s.cfg.Name, why, err)
	}
	c.log.Warn(why, "service", s.cfg.Name, "state", describe(t))
	c.mu.Lock()
	s.traffic, s.index, s.unsaved, s.storedGen = t, idx, false, t.Generation
	c.mu.Unlock()
	c.record(s.cfg.Name, before, t, e)
	c.pushTraffic(s)
	c.schedule(s)
	c.changed(s)
	return nil
}

// createMissing gives a service its first state. Only the leader creates
// one. With history under the prefix, the last recorded split comes back;
// a fresh install starts on blue if blue has members, else on the only
// colour that has them.
func (c *Controller) createMissing(ctx context.Context, s *service) error {
	c.mu.Lock()
	leading, ms := c.leading, s.membership
	c.mu.Unlock()
	if !leading {
		return fmt.Errorf("%w for %s; waiting for the leader to create it", ErrStateMissing, s.cfg.Name)
	}
	t, why, err := c.restoreFromHistory(ctx, s.cfg.Name)
	if err != nil {
		return err
	}
	if why == "" {
		if ms == nil {
			return fmt.Errorf("%w for %s; waiting for its first membership read to choose a colour", ErrStateMissing, s.cfg.Name)
		}
		t, why = initialState(*ms)
	}
	t.Reason = why
	e := c.entry(ctx, t, t)
	e.Reason = why
	idx, err := c.store.Save(ctx, s.cfg.Name, t, 0, e)
	if errors.Is(err, state.ErrConflict) {
		return fmt.Errorf("service %s: state appeared while creating it; retrying", s.cfg.Name)
	}
	if err != nil {
		return err
	}
	c.log.Info("created traffic state", "service", s.cfg.Name, "state", describe(t), "why", why)
	c.mu.Lock()
	s.traffic, s.index, s.loaded, s.storedGen = t, idx, true, t.Generation
	c.mu.Unlock()
	c.m.setWeights(s.cfg.Name, t)
	return nil
}

// initialState is a new service's first state: all on blue, or on green
// when only green has members.
func initialState(ms model.Membership) (model.Traffic, string) {
	t := model.InitialTraffic()
	if len(ms.Blue.Endpoints) == 0 && len(ms.Green.Endpoints) > 0 {
		t.Stable, t.GreenPercent = model.Green, 100
		return t, "initial state: green (blue has no members)"
	}
	return t, "initial state: blue"
}

// restoreFromHistory rebuilds a lost state from the service's last
// history entry: the split it recorded, with no switch running (the
// running switch's plan is not in the entry; the operator starts it anew).
func (c *Controller) restoreFromHistory(ctx context.Context, name string) (model.Traffic, string, error) {
	h, ok := c.store.(historian)
	if !ok {
		return model.Traffic{}, "", nil
	}
	es, err := h.History(ctx, name, 1)
	if err != nil {
		return model.Traffic{}, "", fmt.Errorf("service %s: no stored state, and its history cannot be read: %w", name, err)
	}
	if len(es) == 0 {
		return model.Traffic{}, "", nil
	}
	last := es[len(es)-1]
	t := model.Traffic{Stable: last.Stable, GreenPercent: last.ToGreen, Phase: model.PhaseStable, Generation: last.Generation + 1}
	if t.Stable == "" {
		t.Stable = model.Blue
	}
	if t.Serving() != t.Stable {
		t.Target = t.Stable.Other()
		t.Phase = model.PhaseSwitched
		if t.Serving() == "" {
			// It was mid-switch: keep the split, hold it as an ended switch
			// the operator finishes with switch or abort.
			t.Phase = model.PhaseSwitched
		}
	}
	return t, fmt.Sprintf("restored from history generation %d: the stored state was missing", last.Generation), nil
}

// pushTraffic pushes what traffic state drives: the route, and the
// endpoints (a roll changes which hosts serve).
func (c *Controller) pushTraffic(s *service) {
	c.mu.Lock()
	hasRead, last := s.membership != nil, s.guarded.Read
	c.mu.Unlock()
	if hasRead {
		c.guardFleets(s, last) // which colours carry traffic may have changed
	}
	c.mu.Lock()
	if !c.pushed || !s.published {
		c.mu.Unlock()
		return
	}
	sv := model.ServiceView{Service: s.effective(), Traffic: s.traffic}
	hasMembers := s.membership != nil
	if hasMembers {
		sv.Membership = *s.membership
	}
	c.mu.Unlock()
	if hasMembers {
		if err := c.pusher.UpdateEndpoints(translator.Endpoints(sv)); err != nil {
			c.log.Error("push endpoints", "service", s.cfg.Name, "error", err)
		}
	}
	if _, err := c.pusher.UpdateRouteGen(s.cfg.Name, translator.ServiceRoute(sv.Service, sv.Traffic), sv.Traffic.Generation); err != nil {
		c.log.Error("push route", "service", s.cfg.Name, "error", err)
	}
}

// schedule starts the next analysis or roll tick of a running switch, once,
// while this replica leads. Runs on the loop.
func (c *Controller) schedule(s *service) {
	c.mu.Lock()
	defer c.mu.Unlock()
	t := s.traffic
	if !c.leading || !c.pushed || s.ticking && s.tickEpoch == c.epoch || s.unsaved {
		return
	}
	var every time.Duration
	switch {
	case t.ProgressiveRunning():
		every = t.Rollout.Plan.Interval.D()
		if !c.counts.primed(s.cfg.Name, t.Rollout.ID, c.epoch) && t.Rollout.Phase != model.RolloutRollingBack {
			every = 0 // read the starting point now: counts begin with the switch (or the term)
		}
	case t.RollRunning():
		every = t.Roll.Params.Interval.D()
		if t.Roll.Params.Judged && !c.counts.primed(s.cfg.Name, t.Roll.ID, c.epoch) {
			every = 0
		}
	default:
		return
	}
	s.ticking, s.tickEpoch = true, c.epoch
	epoch := c.epoch
	c.rt.After(every, func() { c.post(s, func() { c.onTick(s, epoch) }) })
}

// onTick runs one round of a switch's gates or analysis, or a roll's
// health check, off the loop; the result comes back as a message.
func (c *Controller) onTick(s *service, epoch uint64) {
	c.mu.Lock()
	t, current := s.traffic, epoch == c.epoch && c.leading
	c.mu.Unlock()
	if !current {
		return // a round of an earlier term; the new term schedules its own
	}
	switch {
	case t.ProgressiveRunning():
		r := *t.Rollout
		if r.Gate != "" && r.Phase == model.RolloutProgressing {
			c.rt.Go(func() {
				res := c.callGates(context.Background(), s.cfg.Name, t, r.Gate, r.Plan.GatesAt(r.Gate))
				c.post(s, func() { c.onRolloutEvent(s, epoch, r, rollout.GateOutcome{Now: c.now(), Stage: r.Gate, Results: res}) })
			})
			return
		}
		c.analyseLater(s, epoch, r)
	case t.RollRunning():
		r := *t.Roll
		c.rt.Go(func() {
			healthy := c.rollHealth(context.Background(), s.cfg.Name, epoch, &r)
			c.post(s, func() { c.onRollTick(s, epoch, r.ID, rolling.Tick{Now: c.now(), Verdict: healthy}) })
		})
	default:
		c.tickDone(s, epoch)
	}
}

// tickDone ends a round of epoch and schedules the next; rounds of an
// earlier term leave the current term's bookkeeping alone.
func (c *Controller) tickDone(s *service, epoch uint64) {
	c.mu.Lock()
	if epoch == c.epoch {
		s.ticking = false
	}
	c.mu.Unlock()
	c.schedule(s)
}

func (c *Controller) analyseLater(s *service, epoch uint64, r model.Rollout) {
	c.rt.Go(func() {
		a := c.analyse(context.Background(), s.cfg.Name, epoch, &r)
		c.post(s, func() { c.onRolloutEvent(s, epoch, r, a) })
	})
}

// onRolloutEvent applies a round's gate results or analysis if the same
// switch still runs and this replica still leads in the same term.
func (c *Controller) onRolloutEvent(s *service, epoch uint64, was model.Rollout, ev rollout.Event) {
	c.mu.Lock()
	cur, current := s.traffic, epoch == c.epoch && c.leading
	c.mu.Unlock()
	done := func() { c.tickDone(s, epoch) }
	if !current || !cur.ProgressiveRunning() || cur.Rollout.ID != was.ID {
		done()
		return
	}
	if err := c.decideRollout(s, cur, ev); err != nil {
		c.log.Warn("switch round not applied", "service", s.cfg.Name, "switch", was.ID, "error", err)
	}
	if a, ok := ev.(rollout.Analysis); ok {
		if a.Unavailable != "" {
			c.m.analyses.WithLabelValues(s.cfg.Name, "unavailable").Inc()
		} else if a.Primed {
			c.mu.Lock()
			after := s.traffic.Rollout
			c.mu.Unlock()
			if after != nil && after.ID == was.ID {
				c.recordAnalysis(s.cfg.Name, after)
			}
		}
	}
	if _, gated := ev.(rollout.GateOutcome); gated && was.Gate != model.GatePre {
		c.mu.Lock()
		after := s.traffic.Rollout
		c.mu.Unlock()
		if after != nil && after.ID == was.ID && after.Gate == was.Gate && after.Step == was.Step && after.Phase.Running() {
			c.analyseLater(s, epoch, *after) // gates hold: judge this step too
			return
		}
	}
	done()
}

// decideRollout feeds one event to the running switch and executes the result.
func (c *Controller) decideRollout(s *service, cur model.Traffic, ev rollout.Event) error {
	next, actions, err := rollout.Decide(cur, ev)
	if err != nil {
		return err
	}
	if actions == nil {
		c.mu.Lock()
		s.traffic = next // verdict bookkeeping only: persisted with the next step
		c.mu.Unlock()
		return nil
	}
	eff := effectsOf(actions)
	eff.safety = next.Rollout != nil && rolloutBack(next.Rollout.Phase) && next.Rollout.Phase != model.RolloutAborted
	return c.execute(context.Background(), s, cur, next, eff)
}

func (c *Controller) onRollTick(s *service, epoch uint64, id string, ev rolling.Event) {
	c.mu.Lock()
	cur, current := s.traffic, epoch == c.epoch && c.leading
	fleets := s.membership
	c.mu.Unlock()
	if current && cur.RollRunning() && cur.Roll.ID == id && fleets != nil {
		next, actions, err := rolling.Decide(cur, *fleets, ev)
		if err != nil {
			c.log.Warn("roll step not applied", "service", s.cfg.Name, "roll", id, "error", err)
		} else if actions != nil {
			eff := effectsOf(actions)
			eff.safety = next.Roll != nil && rollBack(next.Roll.Phase) && !next.Roll.ByHand
			if err := c.execute(context.Background(), s, cur, next, eff); err != nil {
				c.log.Warn("roll step not applied", "service", s.cfg.Name, "roll", id, "error", err)
			}
		}
	}
	c.tickDone(s, epoch)
}
