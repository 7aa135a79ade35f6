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
		next.SwitchID, next.Release = next.Roll.ID, req.Release
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
// as a typed verdict, on exact counts since the roll began (or since this
// replica's term began): regressed when the sequential error test fails;
// insufficient before each side has served min_requests, or while a side
// has no request series; healthy otherwise. Unavailable when the counts
// cannot be read or judged, or nothing can judge this service. An unjudged
// roll (no metrics source configured) gets no verdict and is never sampled:
// it bakes on time and Consul health alone.
//
// The roll's test lives in memory: a new leader starts a new one, which
// costs it the evidence gathered so far, never the guarantee of one test.
func (c *Controller) rollHealth(ctx context.Context, name string, epoch uint64, r *model.Roll) model.RollVerdict {
	if !r.Params.Judged {
		return model.RollVerdict{}
	}
	s := c.counts.get(name, r.ID, epoch) // this round has begun: the next keeps the interval
	c.mu.Lock()
	p, ok := c.plans[name]
	c.mu.Unlock()
	if !ok {
		return model.RollVerdict{Outcome: model.VerdictUnavailable, Reason: "no analysis plan for " + name}
	}
	got, err := c.count(ctx, name, s, r.From, r.To, model.Plan{Interval: p.Interval, MinRequests: p.MinRequests}, r.StartedAt)
	if err != nil { // no source: an error, so unavailable
		return model.RollVerdict{Outcome: model.VerdictUnavailable, Reason: err.Error()}
	}
	if s.test == nil {
		if s.test, err = judge.NewSequential(judge.Params{Confidence: p.Confidence, Margin: p.Margin, MinRequests: p.MinRequests}); err != nil {
			return model.RollVerdict{Outcome: model.VerdictUnavailable, Reason: err.Error()}
		}
	}
	if !got.primed {
		return model.RollVerdict{Outcome: model.VerdictInsufficient, Reason: "counting from now"}
	}
	if err := s.test.Observe(sample(got.cand), sample(got.base)); err != nil {
		return model.RollVerdict{Outcome: model.VerdictUnavailable, Reason: "invalid counts: " + err.Error()}
	}
	cand, base := s.test.Counts()
	switch {
	case s.test.Failed():
		return model.RollVerdict{Outcome: model.VerdictRegressed, Reason: s.test.Reason()}
	case got.noData != "":
		return model.RollVerdict{Outcome: model.VerdictInsufficient, Reason: got.noData}
	case cand.Requests < p.MinRequests || base.Requests < p.MinRequests:
		return model.RollVerdict{Outcome: model.VerdictInsufficient,
			Reason: fmt.Sprintf("new hosts served %.0f and old hosts %.0f requests; %.0f each are needed", cand.Requests, base.Requests, p.MinRequests)}
	}
	return model.RollVerdict{Outcome: model.VerdictHealthy, Reason: s.test.Reason()}
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
