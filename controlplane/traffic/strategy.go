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
	if s.metaRoll.rolling && !svc.Rolling() {
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

// effectiveLocked reads effective() under the controller's lock.
func (s *service) effectiveLocked(c *Controller) model.Service {
	c.mu.Lock()
	defer c.mu.Unlock()
	return s.effective()
}

// pushServiceLocked re-pushes every resource of one service after its
// strategy changed (clusters change load balancer). Caller holds c.mu.
func (c *Controller) pushServiceLocked(s *service) {
	sv := model.ServiceView{Service: s.effective(), Traffic: s.traffic}
	if s.membership != nil {
		sv.Membership = *s.membership
	}
	r := translator.Translate(model.View{Services: []model.ServiceView{sv}, EnvoyListenAddress: c.envoy})
	if err := c.pusher.UpdateService(r); err != nil {
		c.log.Error("push service", "service", s.cfg.Name, "error", err)
	}
}

// pushTrafficLocked pushes what traffic state drives: the route, and the
// endpoints (a roll changes which hosts serve). Clusters and listeners do
// not depend on it. Caller holds c.mu.
func (c *Controller) pushTrafficLocked(s *service) {
	sv := model.ServiceView{Service: s.effective(), Traffic: s.traffic}
	if s.membership != nil {
		sv.Membership = *s.membership
		if err := c.pusher.UpdateEndpoints(translator.Endpoints(sv)); err != nil {
			c.log.Error("push endpoints", "service", s.cfg.Name, "error", err)
		}
	}
	if _, err := c.pusher.UpdateRoute(s.cfg.Name, translator.ServiceRoute(sv.Service, s.traffic)); err != nil {
		c.log.Error("push route", "service", s.cfg.Name, "error", err)
	}
}
