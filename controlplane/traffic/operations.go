package traffic

import (
	"context"
	"fmt"
	"time"

	apiv1 "github.com/bgctl/bg/controlplane/api/v1"
	"github.com/bgctl/bg/controlplane/model"
	"github.com/bgctl/bg/controlplane/rollout"
)

// Request is a switch or an abort as asked for by a user.
type Request struct {
	Service string
	To      model.Color // switch only; "" = the idle colour (see idleColor)
	Instant bool        // switch: move 100% at once, no analysis
	Plan    PlanOverrides
	Force   bool // allow moving traffic to an empty fleet
	Reason  string
	Timeout time.Duration // how long to wait for ACKs
	// Release tags a switch started by that release (model.Traffic's
	// Release) and lets the release act on its member services, which
	// refuse every other command while it runs (ErrInRelease).
	Release string
	// Back: the release's switch back to the colour its member came from
	// after a failure. Like an abort, no window or gate holds it back.
	Back bool
}

// Result says what changed and whether every subscribed proxy holds it
// (the admin API's wire type).
type Result = apiv1.Result

// Switch moves a service's traffic to req.To (none: the idle colour): at
// once with Instant, otherwise step by step, judged against the baseline.
//
// Unless forced, a switch starts only inside the service's deploy windows
// and after its pre gates pass. --force (with --reason) skips windows,
// gates and analysis: a forced blue-green switch is instant.
func (c *Controller) Switch(ctx context.Context, req Request) (Result, error) {
	svc, err := c.lookup(req.Service)
	if err != nil {
		return Result{}, err
	}
	if err := c.refuseRetiring(svc, "a new switch"); err != nil {
		return Result{}, err
	}
	if err := c.checkRelease(req.Service, req.Release); err != nil {
		return Result{}, err
	}
	ctx, err = c.forced(ctx, req, "switch", "windows, gates and analysis")
	if err != nil {
		return Result{}, err
	}
	if !req.Force && !req.Back {
		if err := c.checkWindow(req.Service); err != nil {
			return Result{}, err
		}
	}
	if req.To == "" {
		t, err := c.traffic(req.Service)
		if err != nil {
			return Result{}, err
		}
		if req.To, err = idleColor(t); err != nil {
			return Result{}, err
		}
	}
	if c.effective(svc).Stateful() {
		if !req.Instant {
			return c.startRoll(ctx, req)
		}
		if !req.Force {
			return Result{}, fmt.Errorf("%w: %s is stateful (strategy rolling): an instant switch moves every session at once; use --force to do it anyway", ErrBadPlan, req.Service)
		}
	} else if req.Force {
		req.Instant = true
	}
	if !req.Instant {
		return c.startProgressive(ctx, req)
	}
	if !req.Force && !req.Back {
		if t, err := c.traffic(req.Service); err == nil && t.Serving() != req.To && !t.ProgressiveRunning() && !t.RollRunning() {
			if err := c.preGatesInstant(ctx, req); err != nil {
				return Result{}, err
			}
		}
	}
	reason := req.Reason
	if reason == "" {
		reason = "instant switch to " + string(req.To)
	}
	return c.apply(ctx, req, func(t model.Traffic) (model.Traffic, bool, model.Color, error) {
		next, changed := switchTo(t, req.To, reason)
		if changed {
			next.SwitchID, next.Release = model.InstantSwitchID(next.Generation), req.Release
		}
		return next, changed, req.To, nil
	})
}

// Abort puts a service's traffic back on its stable colour, mid-plan too.
func (c *Controller) Abort(ctx context.Context, req Request) (Result, error) {
	if _, err := c.lookup(req.Service); err != nil {
		return Result{}, err
	}
	if err := c.checkRelease(req.Service, req.Release); err != nil {
		return Result{}, err
	}
	// Nothing else holds an abort back; --force only records it as an override.
	ctx, err := c.forced(ctx, req, "abort", "the empty-fleet check (aborts are never gated)")
	if err != nil {
		return Result{}, err
	}
	if t, err := c.traffic(req.Service); err == nil && t.ProgressiveRunning() {
		return c.Command(ctx, req.Service, rollout.Abort{Now: c.now(), Reason: req.Reason}, req.Timeout)
	} else if err == nil && t.RollRunning() {
		return c.abortRoll(ctx, req)
	}
	reason := req.Reason
	if reason == "" {
		reason = "abort"
	}
	return c.apply(ctx, req, func(t model.Traffic) (model.Traffic, bool, model.Color, error) {
		next, changed := abort(t, reason)
		return next, changed, t.Stable, nil
	})
}

// transition computes an instant change; to is the colour that must have
// passing instances ("" = none needed).
type transition func(model.Traffic) (next model.Traffic, changed bool, to model.Color, err error)

// apply runs an instant change through the same persist-then-push path as
// progressive switches. Any failure before the push changes nothing.
func (c *Controller) apply(ctx context.Context, req Request, tr transition) (Result, error) {
	s, err := c.lookup(req.Service)
	if err != nil {
		return Result{}, err
	}
	changed, err := c.command(ctx, s, func(cur model.Traffic, fleets model.Membership) (model.Traffic, effects, error) {
		if cur.ProgressiveRunning() || cur.RollRunning() {
			return cur, effects{}, busyAny(cur)
		}
		next, changed, to, err := tr(cur)
		if err != nil || !changed {
			return cur, effects{}, err
		}
		if to != "" {
			if err := refuseEmpty(fleets, to, req); err != nil {
				return cur, effects{}, err
			}
		}
		return next, effects{persist: true, pushRoute: true}, nil
	})
	if err != nil {
		return Result{}, err
	}
	return c.waitAcked(ctx, req, changed)
}

// command runs one decision on the service's loop: decide sees the state
// in force and the passing fleets and returns the next state and its
// effects, which execute carries out. No effects: nothing changed.
func (c *Controller) command(ctx context.Context, s *service, decide func(cur model.Traffic, fleets model.Membership) (model.Traffic, effects, error)) (changed bool, err error) {
	c.call(s, func() {
		c.mu.Lock()
		if c.services[s.cfg.Name] != s {
			c.mu.Unlock()
			err = fmt.Errorf("%w %q: %w", ErrUnknownService, s.cfg.Name, ErrRemoved)
			return
		}
		cur := s.traffic
		// Consul's last read: a command never counts held members (the
		// shrink guard's last known ones) as passing.
		var fleets model.Membership
		if s.membership != nil {
			fleets = s.guarded.Read
		}
		c.mu.Unlock()
		next, eff, e := decide(cur, fleets)
		if e != nil || eff == (effects{}) {
			err = e
			return
		}
		changed = true
		err = c.execute(ctx, s, cur, next, eff)
	})
	return changed, err
}

// refuseEmpty refuses to move traffic to a colour with no passing
// instances unless forced.
func refuseEmpty(fleets model.Membership, to model.Color, req Request) error {
	if len(fleets.Fleet(to).Endpoints) == 0 && !req.Force {
		return fmt.Errorf("%w: %s has no passing instances of %s; refusing to move traffic there (use --force to override)", ErrEmptyFleet, to, req.Service)
	}
	return nil
}

// waitAcked waits for the route now in force, so repeating a command whose
// ACKs timed out waits again instead of reporting success.
func (c *Controller) waitAcked(ctx context.Context, req Request, changed bool) (Result, error) {
	timeout := req.Timeout
	if timeout <= 0 {
		timeout = 30 * time.Second
	}
	wctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	t, err := c.traffic(req.Service)
	if err != nil {
		return Result{}, err
	}
	acks := c.waitAcks(wctx, req.Service, t.Generation)
	st, err := c.Status(req.Service)
	if err != nil {
		return Result{}, err
	}
	return Result{Changed: changed, Status: st, Acks: acks}, nil
}

func (c *Controller) traffic(name string) (model.Traffic, error) {
	s, err := c.lookup(name)
	if err != nil {
		return model.Traffic{}, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return s.traffic, nil
}

// refresh reloads a service's state after a CAS conflict so the next
// attempt starts from what is stored, and serves that. Runs on the loop.
func (c *Controller) refresh(ctx context.Context, s *service) {
	t, idx, found, err := c.store.Load(ctx, s.cfg.Name)
	if err != nil || !found {
		c.log.Warn("reload after conflict failed", "service", s.cfg.Name, "error", err)
		return
	}
	if err := c.onStored(s, t, idx, true, true); err != nil {
		c.log.Warn("reload after conflict failed", "service", s.cfg.Name, "error", err)
	}
	c.loadIntent(ctx, s) // a standing rollback intent refused the write
}
