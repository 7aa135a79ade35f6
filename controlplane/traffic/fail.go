package traffic

import (
	"context"
	"fmt"
	"time"

	"github.com/bgctl/bg/controlplane/model"
	"github.com/bgctl/bg/controlplane/rollout"
)

// FailSwitch rolls back the running progressive switch switchID of
// service with a verdict reached outside its own analysis (a release's
// consumer test: model.CauseConsumerRegressed), exactly as its analysis
// would have: stored first, then pushed, confirmed by ACKs. It refuses a
// switch that is not running or not that one (ErrNotRunning), so a late
// verdict never fails the next switch.
func (c *Controller) FailSwitch(ctx context.Context, service, switchID string, cause model.Cause, reason string, timeout time.Duration) (Result, error) {
	if err := cause.Validate(); err != nil || cause == "" {
		return Result{}, fmt.Errorf("fail switch %s of %s: cause %q: %v", switchID, service, cause, err)
	}
	s, err := c.lookup(service)
	if err != nil {
		return Result{}, err
	}
	// The check is on the service's loop, with the change: nothing can
	// end this switch and start another between them.
	changed, err := c.command(ctx, s, func(cur model.Traffic, _ model.Membership) (model.Traffic, effects, error) {
		if r := cur.Rollout; !cur.ProgressiveRunning() || r == nil || r.ID != switchID {
			return cur, effects{}, fmt.Errorf("%w: switch %s of %s is not running", ErrNotRunning, switchID, service)
		}
		now := c.now()
		return decideEvent(cur, rollout.Rollback{Now: now, DetectedAt: now, Cause: cause, Reason: reason})
	})
	if err != nil {
		return Result{}, err
	}
	return c.waitAcked(ctx, Request{Service: service, Timeout: timeout}, changed)
}
