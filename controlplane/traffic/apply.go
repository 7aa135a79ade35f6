package traffic

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/bgctl/bg/controlplane/model"
	"github.com/bgctl/bg/controlplane/state"
	"github.com/bgctl/bg/controlplane/translator"
)

// applyLocked carries out a transition's actions. The caller holds s.op;
// it is released before any wait for ACKs, so an abort is never queued
// behind a slow proxy.
//
// Persist comes before Push, so proxies only get what a restart would
// serve — except a flip back to the stable colour, which is pushed even
// if the write fails (retried in the background): safety beats bookkeeping.
func (c *Controller) applyLocked(ctx context.Context, s *service, cur, next model.Traffic, eff effects, timeout time.Duration) error {
	name := s.cfg.Name
	confirm := eff.confirm
	if eff.persist {
		c.mu.Lock()
		idx := s.index
		c.mu.Unlock()
		newIdx, err := c.store.Save(ctx, name, next, idx, c.entry(ctx, cur, next))
		switch {
		case err == nil:
			c.mu.Lock()
			s.index = newIdx
			c.mu.Unlock()
			c.maybePrune(name, next.Generation)
		case confirm && !errors.Is(err, state.ErrConflict):
			c.log.Error("could not persist flip back; pushing it anyway and retrying the write", "service", name, "error", err)
			go c.persistLater(name, next.Generation)
		default:
			if errors.Is(err, state.ErrConflict) {
				c.refresh(ctx, s)
			}
			s.op.Unlock()
			return fmt.Errorf("persist traffic state of %s: %w (nothing was changed)", name, err)
		}
	}
	c.mu.Lock()
	s.traffic = next
	c.ensureRunnerLocked(name)
	c.mu.Unlock()
	if eff.pushEndpoints {
		c.pushEndpointsLocked(s, next)
	}
	if eff.pushRoute && routeChanged(cur, next) {
		if _, err := c.pusher.UpdateRoute(name, translator.ServiceRoute(s.effectiveLocked(c), next)); err != nil {
			s.op.Unlock()
			return err
		}
		c.log.Info("traffic changed", "service", name, "from", describe(cur), "to", describe(next), "reason", next.Reason)
	}
	c.m.setWeights(name, next)
	c.m.recordChange(name, cur, next)
	if overrideFrom(ctx) != "" {
		c.m.overrides.WithLabelValues(name).Inc()
	}
	s.op.Unlock()
	if confirm {
		c.confirm(ctx, s, next, timeout)
	}
	return nil
}

// routeChanged: the route depends on the split and on where pools and
// mirrored requests go.
func routeChanged(cur, next model.Traffic) bool {
	return next.GreenPercent != cur.GreenPercent || next.Candidate() != cur.Candidate()
}

// confirm waits until every proxy holds the flip back, then records when.
func (c *Controller) confirm(ctx context.Context, s *service, flipped model.Traffic, timeout time.Duration) {
	if timeout <= 0 {
		timeout = 30 * time.Second
	}
	wctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	acks := c.pusher.WaitRoute(wctx, s.cfg.Name)
	if !acks.Complete() || flipped.Rollout == nil {
		return
	}
	now := c.now()
	s.op.Lock()
	defer s.op.Unlock()
	c.mu.Lock()
	t := s.traffic
	if t.Generation != flipped.Generation || t.Rollout == nil {
		c.mu.Unlock()
		return // something newer happened; it records itself
	}
	r := *t.Rollout
	r.ConfirmedAt = now
	t.Rollout = &r
	s.traffic = t
	idx := s.index
	c.mu.Unlock()
	if !r.DetectedAt.IsZero() {
		c.m.rollbackSeconds.WithLabelValues(s.cfg.Name).Observe(now.Sub(r.DetectedAt).Seconds())
	}
	if newIdx, err := c.store.Save(ctx, s.cfg.Name, t, idx, c.entry(ctx, flipped, t)); err == nil {
		c.mu.Lock()
		s.index = newIdx
		c.mu.Unlock()
	}
}

// persistLater retries writing the in-memory state until it sticks or a
// newer change has superseded it.
func (c *Controller) persistLater(name string, gen uint64) {
	s := c.services[name]
	for delay := 500 * time.Millisecond; ; delay = min(delay*2, 10*time.Second) {
		time.Sleep(delay)
		s.op.Lock()
		c.mu.Lock()
		t, idx := s.traffic, s.index
		c.mu.Unlock()
		if t.Generation != gen {
			s.op.Unlock()
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		newIdx, err := c.store.Save(ctx, name, t, idx, c.entry(ctx, t, t))
		cancel()
		if err == nil {
			c.mu.Lock()
			s.index = newIdx
			c.mu.Unlock()
			s.op.Unlock()
			c.log.Info("persisted flip back after retrying", "service", name)
			return
		}
		s.op.Unlock()
		c.log.Warn("still cannot persist flip back", "service", name, "error", err)
	}
}
