package traffic

import (
	"context"
	"fmt"
	"time"

	"github.com/bgctl/bg/controlplane/judge"
	"github.com/bgctl/bg/controlplane/model"
	"github.com/bgctl/bg/controlplane/rolling"
)

// SetRolling gives each rolling service its roll parameters.
func (c *Controller) SetRolling(params map[string]model.RollParams) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.rollParams = params
}

// startRoll begins a host-by-host switch of a stateful service.
func (c *Controller) startRoll(ctx context.Context, req Request) (Result, error) {
	s, err := c.lookup(req.Service)
	if err != nil {
		return Result{}, err
	}
	c.mu.Lock()
	params, ok := c.rollParams[req.Service]
	c.mu.Unlock()
	if !ok {
		return Result{}, fmt.Errorf("%w: no rolling parameters for %s", ErrBadPlan, req.Service)
	}
	_, err = c.command(ctx, s, func(cur model.Traffic, fleets model.Membership) (model.Traffic, effects, error) {
		if cur.ProgressiveRunning() {
			return cur, effects{}, busyAny(cur)
		}
		if err := refuseEmpty(fleets, req.To, req); err != nil {
			return cur, effects{}, err
		}
		next, actions, err := rolling.Decide(cur, fleets, rolling.Start{Now: c.now(), To: req.To, Params: params, Reason: req.Reason})
		if err != nil {
			return cur, effects{}, fmt.Errorf("%w: %v", ErrBadPlan, err)
		}
		return next, effectsOf(actions), nil
	})
	if err != nil {
		return Result{}, err
	}
	return c.waitAcked(ctx, req, true)
}

// abortRoll reverses a running roll, host by host.
func (c *Controller) abortRoll(ctx context.Context, req Request) (Result, error) {
	return c.rollEvent(ctx, req.Service, rolling.Abort{Now: c.now(), Reason: orDefault(req.Reason, "aborted by hand")}, req.Timeout)
}

// rollEvent feeds one event to a service's roll.
func (c *Controller) rollEvent(ctx context.Context, name string, ev rolling.Event, timeout time.Duration) (Result, error) {
	s, err := c.lookup(name)
	if err != nil {
		return Result{}, err
	}
	changed, err := c.command(ctx, s, func(cur model.Traffic, fleets model.Membership) (model.Traffic, effects, error) {
		next, actions, err := rolling.Decide(cur, fleets, ev)
		if err != nil {
			return cur, effects{}, fmt.Errorf("%w: %v", ErrNotRunning, err)
		}
		return next, effectsOf(actions), nil
	})
	if err != nil {
		return Result{}, err
	}
	return c.waitAcked(ctx, Request{Service: name, Timeout: timeout}, changed)
}

// rollHealth judges the new hosts against the old ones while both serve,
// as a typed verdict: healthy or regressed from the judge; insufficient when
// the judge has too little traffic; unavailable when the counts cannot be
// read (the error) or judged (invalid counts), or nothing can judge this
// service. An unjudged roll (no metrics source configured) gets no verdict
// and is never sampled: it bakes on time and Consul health alone.
func (c *Controller) rollHealth(ctx context.Context, name string, r *model.Roll) model.RollVerdict {
	if !r.Params.Judged {
		return model.RollVerdict{}
	}
	c.mu.Lock()
	p, ok := c.plans[name]
	c.mu.Unlock()
	if !ok {
		return model.RollVerdict{Outcome: model.VerdictUnavailable, Reason: "no analysis plan for " + name}
	}
	ro := &model.Rollout{From: r.From, To: r.To, Plan: p}
	cand, base, err := c.sample(ctx, name, ro) // no source: an error, so unavailable
	if err != nil {
		return model.RollVerdict{Outcome: model.VerdictUnavailable, Reason: err.Error()}
	}
	v := judge.Judge(cand, base, judge.Params{Confidence: p.Confidence, Margin: p.Margin, MinRequests: p.MinRequests})
	switch v.Outcome {
	case judge.Pass:
		return model.RollVerdict{Outcome: model.VerdictHealthy, Reason: v.Reason}
	case judge.Fail:
		return model.RollVerdict{Outcome: model.VerdictRegressed, Reason: v.Reason}
	case judge.Insufficient:
		return model.RollVerdict{Outcome: model.VerdictInsufficient, Reason: v.Reason}
	default: // judge.Invalid, or an outcome this code does not know
		return model.RollVerdict{Outcome: model.VerdictUnavailable, Reason: "invalid counts: " + v.Reason}
	}
}

// busyAny names whatever switch or roll is running.
func busyAny(t model.Traffic) error {
	if t.RollRunning() {
		r := t.Roll
		return fmt.Errorf("%w: roll %s from %s to %s is %s; abort it or wait for it", ErrBusy, r.ID, r.From, r.To, r.Phase)
	}
	return busy(t)
}

func orDefault(s, d string) string {
	if s == "" {
		return d
	}
	return s
}
