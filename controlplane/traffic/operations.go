package traffic

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/bgctl/bg/controlplane/model"
	"github.com/bgctl/bg/controlplane/state"
	"github.com/bgctl/bg/controlplane/translator"
	"github.com/bgctl/bg/controlplane/xds"
)

// Request is a switch or an abort as asked for by a user.
type Request struct {
	Service string
	To      model.Color // switch only
	Force   bool        // allow moving traffic to an empty fleet
	Reason  string
	Timeout time.Duration // how long to wait for ACKs
}

// Result says what changed and whether every subscribed proxy holds it.
type Result struct {
	Changed bool          `json:"changed"`
	Status  Status        `json:"status"`
	Acks    xds.AckResult `json:"acks"`
}

// Switch moves all of a service's traffic to req.To.
func (c *Controller) Switch(ctx context.Context, req Request) (Result, error) {
	return c.apply(ctx, req, func(t model.Traffic) (model.Traffic, bool, model.Color) {
		reason := req.Reason
		if reason == "" {
			reason = "switch to " + string(req.To)
		}
		next, changed := switchTo(t, req.To, reason)
		return next, changed, req.To
	})
}

// Abort puts a service's traffic back on its stable colour.
func (c *Controller) Abort(ctx context.Context, req Request) (Result, error) {
	return c.apply(ctx, req, func(t model.Traffic) (model.Traffic, bool, model.Color) {
		reason := req.Reason
		if reason == "" {
			reason = "abort"
		}
		next, changed := abort(t, reason)
		return next, changed, t.Stable
	})
}

type transition func(model.Traffic) (next model.Traffic, changed bool, to model.Color)

// apply persists first and pushes second, so what proxies get is always
// what a restarted bg would serve. Any failure before the push changes nothing.
func (c *Controller) apply(ctx context.Context, req Request, tr transition) (Result, error) {
	c.mu.Lock()
	s := c.services[req.Service]
	pushed := c.pushed
	c.mu.Unlock()
	if s == nil {
		return Result{}, fmt.Errorf("%w %q", ErrUnknownService, req.Service)
	}
	if !pushed {
		return Result{}, ErrNotReady
	}

	s.op.Lock()
	c.mu.Lock()
	cur, idx, fleets := s.traffic, s.index, *s.membership
	c.mu.Unlock()
	next, changed, to := tr(cur)
	if changed {
		if n := len(fleets.Fleet(to).Endpoints); n == 0 && !req.Force {
			s.op.Unlock()
			return Result{}, fmt.Errorf("%w: %s has no passing instances of %s; refusing to move traffic there (use --force to override)", ErrEmptyFleet, to, req.Service)
		}
		newIdx, err := c.store.Save(ctx, req.Service, next, idx)
		if err != nil {
			if errors.Is(err, state.ErrConflict) {
				c.refresh(ctx, s)
			}
			s.op.Unlock()
			return Result{}, fmt.Errorf("persist traffic state of %s: %w (nothing was changed)", req.Service, err)
		}
		c.mu.Lock()
		s.traffic, s.index = next, newIdx
		c.mu.Unlock()
		if _, err := c.pusher.UpdateRoute(req.Service, translator.Route(req.Service, next)); err != nil {
			s.op.Unlock()
			return Result{}, err
		}
		c.m.setWeights(req.Service, next)
		c.log.Info("traffic changed", "service", req.Service, "from", describe(cur), "to", describe(next), "reason", next.Reason, "force", req.Force)
	}
	s.op.Unlock()
	return c.waitAcked(ctx, req, changed)
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
	acks := c.pusher.WaitRoute(wctx, req.Service)
	st, err := c.Status(req.Service)
	if err != nil {
		return Result{}, err
	}
	return Result{Changed: changed, Status: st, Acks: acks}, nil
}

// refresh reloads a service's state after a CAS conflict so the next
// attempt starts from what is stored, and serves that.
func (c *Controller) refresh(ctx context.Context, s *service) {
	t, idx, found, err := c.store.Load(ctx, s.cfg.Name)
	if err != nil || !found {
		c.log.Warn("reload after conflict failed", "service", s.cfg.Name, "error", err)
		return
	}
	c.mu.Lock()
	s.traffic, s.index = t, idx
	c.mu.Unlock()
	if _, err := c.pusher.UpdateRoute(s.cfg.Name, translator.Route(s.cfg.Name, t)); err == nil {
		c.m.setWeights(s.cfg.Name, t)
	}
}
