package traffic

import (
	"slices"

	"github.com/envoyproxy/go-control-plane/pkg/cache/types"

	"github.com/bgctl/bg/controlplane/model"
	"github.com/bgctl/bg/controlplane/rollout"
	"github.com/bgctl/bg/controlplane/translator"
)

// effects are what a transition asks the controller to do, whichever
// state machine (rollout or rolling) produced it.
type effects struct {
	persist, pushRoute, pushEndpoints, confirm bool
}

func rolloutEffects(a []rollout.Action) effects {
	return effects{
		persist:   slices.Contains(a, rollout.Persist),
		pushRoute: slices.Contains(a, rollout.Push),
		confirm:   slices.Contains(a, rollout.Confirm),
	}
}

// pushEndpointsLocked pushes both colours' load assignments as next
// implies (a roll serves a mix of old and new hosts). Caller holds s.op.
func (c *Controller) pushEndpointsLocked(s *service, next model.Traffic) {
	c.mu.Lock()
	if s.membership == nil {
		c.mu.Unlock()
		return
	}
	sv := model.ServiceView{Service: s.effective(), Membership: *s.membership, Traffic: next}
	c.mu.Unlock()
	cla := map[string]types.Resource{}
	for name, r := range translator.Endpoints(sv) {
		cla[name] = r
	}
	if err := c.pusher.UpdateEndpoints(cla); err != nil {
		c.log.Error("push endpoints", "service", s.cfg.Name, "error", err)
	}
}
