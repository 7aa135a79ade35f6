package traffic

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/bgctl/bg/controlplane/model"
	"github.com/bgctl/bg/controlplane/rollout"
)

// PlanOverrides replace parts of a service's default plan for one switch.
type PlanOverrides struct {
	Steps    []int
	Bake     *time.Duration
	Interval *time.Duration
}

// plan merges a service's default plan with overrides and validates it.
func (c *Controller) plan(service string, o PlanOverrides) (model.Plan, error) {
	c.mu.Lock()
	p, ok := c.plans[service]
	c.mu.Unlock()
	if !ok {
		return p, fmt.Errorf("%w: no analysis plan for %s", ErrNoAnalysis, service)
	}
	p.Steps = append([]int(nil), p.Steps...)
	if o.Steps != nil {
		p.Steps = append([]int(nil), o.Steps...)
	}
	if o.Bake != nil {
		p.Bake = model.Duration(*o.Bake)
	}
	if o.Interval != nil {
		p.Interval = model.Duration(*o.Interval)
		if p.UnavailableBudget < p.Interval {
			p.UnavailableBudget = p.Interval
		}
		if p.InsufficientBudget < p.Interval {
			p.InsufficientBudget = p.Interval
		}
	}
	if p.Dark && len(p.Steps) > 0 && p.Steps[0] != 0 {
		// Mirroring is on: a 0 % step judges mirrored requests first.
		p.Steps = append([]int{0}, p.Steps...)
	}
	if err := p.Validate(); err != nil {
		return p, fmt.Errorf("%w: %v", ErrBadPlan, err)
	}
	return p, nil
}

// Plan returns the plan a switch of service would run with these overrides.
func (c *Controller) Plan(service string, o PlanOverrides) (model.Plan, error) {
	if _, err := c.Status(service); err != nil {
		return model.Plan{}, err
	}
	return c.plan(service, o)
}

// startProgressive begins a judged, stepped switch and returns once its
// first step is ACKed (or the timeout ends); the runner does the rest.
func (c *Controller) startProgressive(ctx context.Context, req Request) (Result, error) {
	s, err := c.lookup(req.Service)
	if err != nil {
		return Result{}, err
	}
	p, err := c.plan(req.Service, req.Plan)
	if err != nil {
		return Result{}, err
	}
	c.mu.Lock()
	hasSource := c.source != nil
	c.mu.Unlock()
	if !hasSource {
		return Result{}, fmt.Errorf("%w: set prometheus.address to judge switches, or use --instant", ErrNoAnalysis)
	}
	_, err = c.command(ctx, s, func(cur model.Traffic, fleets model.Membership) (model.Traffic, effects, error) {
		if cur.ProgressiveRunning() || cur.RollRunning() {
			return cur, effects{}, busyAny(cur)
		}
		if cur.Serving() == req.To {
			return cur, effects{}, fmt.Errorf("%w: %s already serves all of %s", ErrBadPlan, req.To, req.Service)
		}
		if err := refuseEmpty(fleets, req.To, req); err != nil {
			return cur, effects{}, err
		}
		next, actions, err := rollout.Decide(cur, rollout.Start{Now: c.now(), To: req.To, Plan: p, Reason: req.Reason})
		if err != nil {
			return cur, effects{}, fmt.Errorf("%w: %v", ErrBadPlan, err)
		}
		next.SwitchID, next.Release = next.Rollout.ID, req.Release
		return next, effectsOf(actions), nil
	})
	if err != nil {
		return Result{}, err
	}
	return c.waitAcked(ctx, req, true)
}

// Command applies pause, resume or promote to a running switch.
func (c *Controller) Command(ctx context.Context, service string, ev rollout.Event, timeout time.Duration) (Result, error) {
	s, err := c.lookup(service)
	if err != nil {
		return Result{}, err
	}
	changed, err := c.command(ctx, s, func(cur model.Traffic, _ model.Membership) (model.Traffic, effects, error) {
		return decideEvent(cur, ev)
	})
	if err != nil {
		return Result{}, err
	}
	return c.waitAcked(ctx, Request{Service: service, Timeout: timeout}, changed)
}

// decideEvent applies one event to the running switch: its next state and
// the effects to carry out, or ErrNotRunning.
func decideEvent(cur model.Traffic, ev rollout.Event) (model.Traffic, effects, error) {
	next, actions, err := rollout.Decide(cur, ev)
	if err != nil {
		return cur, effects{}, fmt.Errorf("%w: %v", ErrNotRunning, err)
	}
	return next, effectsOf(actions), nil
}

func busy(t model.Traffic) error {
	r := t.Rollout
	return fmt.Errorf("%w: switch %s from %s to %s is %s at step %d/%d (%d%%); abort, promote or wait for it",
		ErrBusy, r.ID, r.From, r.To, r.Phase, r.Step+1, len(r.Plan.Steps), r.Percent())
}

// lookup finds a published service.
func (c *Controller) lookup(name string) (*service, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	s := c.services[name]
	if s == nil {
		return nil, fmt.Errorf("%w %q", ErrUnknownService, name)
	}
	if !c.pushed {
		return nil, ErrNotReady
	}
	if !s.published {
		return nil, fmt.Errorf("%w: %s was added by a config reload and is not served yet", ErrNotReady, name)
	}
	return s, nil
}

// Pause stops a running switch from advancing; analysis and rollback go on.
func (c *Controller) Pause(ctx context.Context, req Request) (Result, error) {
	if err := c.guardCommand(req); err != nil {
		return Result{}, err
	}
	ctx, err := c.forced(ctx, req, "pause", "nothing (a pause is never gated)")
	if err != nil {
		return Result{}, err
	}
	return c.Command(ctx, req.Service, rollout.Pause{Now: c.now()}, req.Timeout)
}

// Resume lets a paused switch advance again after its step bakes anew.
func (c *Controller) Resume(ctx context.Context, req Request) (Result, error) {
	if err := c.guardCommand(req); err != nil {
		return Result{}, err
	}
	ctx, err := c.forced(ctx, req, "resume", "nothing (a resume is never gated)")
	if err != nil {
		return Result{}, err
	}
	return c.Command(ctx, req.Service, rollout.Resume{Now: c.now()}, req.Timeout)
}

// Promote skips the remaining steps (with Force: and the analysis).
func (c *Controller) Promote(ctx context.Context, req Request) (Result, error) {
	if err := c.guardCommand(req); err != nil {
		return Result{}, err
	}
	if req.Force && strings.TrimSpace(req.Reason) == "" {
		return Result{}, fmt.Errorf("%w: say why this promote overrides analysis and gates", ErrNeedsReason)
	}
	if req.Force {
		c.log.Warn("override: promote --force skips analysis", "service", req.Service, "reason", req.Reason)
	}
	return c.Command(ctx, req.Service, rollout.Promote{Now: c.now(), Force: req.Force, Reason: req.Reason}, req.Timeout)
}
