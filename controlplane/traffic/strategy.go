package traffic

import (
	"github.com/bgctl/bg/controlplane/model"
	"github.com/bgctl/bg/controlplane/translator"
)

// DefaultAffinityHeader hashes sessions of a service marked stateful only
// through Consul meta, when neither config nor meta names a header.
const DefaultAffinityHeader = "x-bg-session"

// membershipHint is what Consul meta says about a service's strategy.
type membershipHint struct {
	rolling bool
	header  string
}

// effective is the service as served: config, plus Consul meta
// bg-strategy=rolling (and bg-affinity-header). Caller holds c.mu.
func (s *service) effective() model.Service {
	svc := s.cfg
	if s.metaRoll.rolling && !svc.Stateful() {
		svc.Strategy = model.StrategyRolling
		if svc.Affinity.Header == "" && svc.Affinity.Cookie == "" {
			svc.Affinity.Header = s.metaRoll.header
			if svc.Affinity.Header == "" {
				svc.Affinity.Header = DefaultAffinityHeader
			}
		}
	}
	return svc
}

// effective reads s.effective() under the controller's lock.
func (c *Controller) effective(s *service) model.Service {
	c.mu.Lock()
	defer c.mu.Unlock()
	return s.effective()
}

// pushService re-pushes every resource of one service after its strategy
// changed (clusters change load balancer). Runs on the service's loop.
func (c *Controller) pushService(s *service) {
	c.mu.Lock()
	sv := model.ServiceView{Service: s.effective(), Traffic: s.traffic}
	if s.membership != nil {
		sv.Membership = *s.membership
	}
	c.mu.Unlock()
	r := translator.Translate(model.View{Services: []model.ServiceView{sv}, EnvoyListenAddress: c.envoy})
	if err := c.pusher.UpdateService(r); err != nil {
		c.log.Error("push service", "service", s.cfg.Name, "error", err)
		return
	}
	c.pusher.MarkRouteGen(s.cfg.Name, sv.Traffic.Generation)
}
