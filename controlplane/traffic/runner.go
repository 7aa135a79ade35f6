package traffic

import (
	"context"
	"github.com/bgctl/bg/controlplane/wait"
	"time"

	"github.com/bgctl/bg/controlplane/model"
	"github.com/bgctl/bg/controlplane/rollout"
)

// minQueryTimeout keeps very short intervals from starving slow queries.
const minQueryTimeout = 2 * time.Second

// ensureRunner starts the analysis loop of a service's running switch,
// once. Called with c.mu held.
func (c *Controller) ensureRunnerLocked(name string) {
	s := c.services[name]
	if s.runnerActive || c.ctx == nil {
		return
	}
	switch {
	case s.traffic.Switching():
		s.runnerActive = true
		go c.run(c.ctx, name)
	case s.traffic.Rolling():
		s.runnerActive = true
		go func() {
			defer c.runnerDone(name)
			c.runRoll(c.ctx, name)
		}()
	}
}

// run analyses every interval and feeds the state machine until the
// switch ends. The wait comes first, so a resumed switch never acts on
// takeover alone.
func (c *Controller) run(ctx context.Context, name string) {
	defer c.runnerDone(name)
	s := c.services[name]
	for {
		c.mu.Lock()
		t := s.traffic
		c.mu.Unlock()
		if !t.Switching() {
			return
		}
		r := *t.Rollout
		if !wait.Sleep(ctx, r.Plan.Interval.D()) {
			return
		}
		if r.Gate != "" && r.Phase == model.RolloutProgressing {
			res := c.callGates(ctx, name, t, r.Gate, r.Plan.GatesAt(r.Gate))
			if err := c.decide(ctx, name, r.ID, rollout.GateOutcome{Now: c.now(), Stage: r.Gate, Results: res}); err != nil {
				c.log.Warn("gate results not applied", "service", name, "switch", r.ID, "error", err)
			}
			c.mu.Lock()
			after := s.traffic.Rollout
			c.mu.Unlock()
			if r.Gate == model.GatePre || after == nil || after.ID != r.ID || after.Gate != r.Gate || after.Step != r.Step {
				continue // nothing moved yet, or it just moved: judge the new state next round
			}
		}
		a := c.analyse(ctx, name, &r)
		if err := c.decide(ctx, name, r.ID, a); err != nil {
			c.log.Warn("analysis step not applied", "service", name, "switch", r.ID, "error", err)
		}
	}
}

// decide applies one analysis if the same switch is still running.
func (c *Controller) decide(ctx context.Context, name, id string, a rollout.Event) error {
	s := c.services[name]
	s.op.Lock()
	c.mu.Lock()
	cur := s.traffic
	c.mu.Unlock()
	if !cur.Switching() || cur.Rollout.ID != id {
		s.op.Unlock()
		return nil
	}
	next, actions, err := rollout.Decide(cur, a)
	if err != nil {
		s.op.Unlock()
		return err
	}
	if actions == nil {
		// Verdict bookkeeping only: shown in status, persisted with the next step.
		c.mu.Lock()
		s.traffic = next
		c.mu.Unlock()
		s.op.Unlock()
		return nil
	}
	return c.applyLocked(ctx, s, cur, next, rolloutEffects(actions), 0)
}

// runnerDone frees the service for a new loop, starting one if a new
// switch or roll began meanwhile.
func (c *Controller) runnerDone(name string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.services[name].runnerActive = false
	c.ensureRunnerLocked(name)
}
