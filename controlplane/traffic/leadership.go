package traffic

import (
	"context"
	"github.com/bgctl/bg/controlplane/wait"
	"time"

	"github.com/bgctl/bg/controlplane/model"
	"github.com/bgctl/bg/controlplane/state"
)

// Lead makes this replica act until ctx ends (leadership lost): it reloads
// the stored state, then resumes any running switch or roll. Resuming waits
// one interval before acting, so a takeover alone never moves traffic.
func (c *Controller) Lead(ctx context.Context) {
	for ctx.Err() == nil {
		if err := c.LoadState(ctx); err == nil {
			break
		}
		wait.Sleep(ctx, 500*time.Millisecond)
	}
	for ctx.Err() == nil && !c.Ready() {
		wait.Sleep(ctx, 50*time.Millisecond) // act only on a published model
	}
	if ctx.Err() != nil {
		return
	}
	c.Start(ctx)
	go func() {
		<-ctx.Done()
		c.mu.Lock()
		if c.ctx == ctx {
			c.ctx = nil // no new loops; running ones stop on ctx
		}
		c.mu.Unlock()
	}()
}

// OnStored applies a state written by the leader (possibly another
// replica): memory, route and endpoints follow it. Our own writes arrive
// here too and change nothing.
func (c *Controller) OnStored(service string, t model.Traffic, idx state.Index) {
	c.mu.Lock()
	defer c.mu.Unlock()
	s := c.services[service]
	if s == nil || !s.loaded {
		return
	}
	if idx <= s.index {
		return
	}
	if t.Generation <= s.traffic.Generation {
		s.index = max(s.index, idx) // our own write, seen before its index was recorded
		return
	}
	prev := s.traffic
	s.traffic, s.index = t, idx
	if !c.pushed || t.Generation == prev.Generation && t.GreenPercent == prev.GreenPercent {
		return
	}
	c.pushTrafficLocked(s)
	c.m.setWeights(service, t)
	c.log.Info("applied state written by the leader", "service", service, "state", describe(t))
}
