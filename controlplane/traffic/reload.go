package traffic

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"time"

	"github.com/bgctl/bg/controlplane/model"
	"github.com/bgctl/bg/controlplane/translator"
)

// A config reload (controlplane/serve) changes the set of services while
// the loops run:
//
//   - AddService adds one; PublishService then loads its stored state (the
//     leader creates it, as at a first start) and, once its fleets are
//     read, puts its resources in the xDS server. Until then commands
//     about it answer ErrNotReady and no proxy sees it.
//   - UpdateService takes new settings of a kept service. Pools and mirror
//     shape its route, so they wait until no switch or roll runs on it:
//     a running switch keeps what it started with, and no reload moves
//     traffic.
//   - RetireService marks one removed: it is served as it is until no
//     switch or roll runs on it, then its resources leave the xDS server
//     and OnRetired is told.
//
// Analysis plans, gates, windows and rolling parameters are replaced with
// SetAnalysis / SetPlans, SetWindows and SetRolling; a running switch
// keeps the plan stored in its state and a running roll its parameters.

// ErrRemoved: the service was removed from the config and only finishes
// what runs on it.
var ErrRemoved = errors.New("removed from config")

// RetiringNote is what status says of a removed service still served.
const RetiringNote = "removed from config; still served until its switch ends"

// AddedNote is what status says of a service a reload added that is not
// served yet.
const AddedNote = "added by a config reload; served once its traffic state and fleets are read"

// PendingNote is what status says of a service whose new pools or mirror
// wait for its switch to end.
const PendingNote = "config change (pools, mirror) waits for the running switch to end"

// confirmWait bounds how long a retiring service waits for its ended
// switch's confirmation (confirmLater waits up to 30 s for ACKs).
const confirmWait = 35 * time.Second

// ServiceRemover is the part of the xDS server that removes a service's
// resources. A pusher without it keeps a retired service's resources.
type ServiceRemover interface {
	RemoveService(translator.Resources) error
}

// SetOnRetired is told each service that left the xDS server after a
// reload removed it.
func (c *Controller) SetOnRetired(f func(service string)) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.onRetired = f
}

// SetPlans replaces every service's default plan (used by switches that
// start from now on).
func (c *Controller) SetPlans(plans map[string]model.Plan) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.plans = plans
}

// AddService adds a service a reload added. A service still retiring is
// kept instead (its new settings apply as UpdateService's do). It reports
// whether the service is new.
func (c *Controller) AddService(svc model.Service) bool {
	c.mu.Lock()
	if s := c.services[svc.Name]; s != nil {
		s.retiring = false
		c.mu.Unlock()
		c.UpdateService(svc)
		return false
	}
	defer c.mu.Unlock()
	c.services[svc.Name] = &service{cfg: svc}
	i, _ := slices.BinarySearch(c.names, svc.Name)
	c.names = slices.Insert(c.names, i, svc.Name)
	return true
}

// PublishService loads a service AddService added and serves it once its
// fleets are read. It answers ErrNotReady (wrapped) while something is
// missing; call it again. A service already served returns nil.
func (c *Controller) PublishService(ctx context.Context, name string) error {
	s := c.get(name)
	if s == nil {
		return fmt.Errorf("%w %q", ErrUnknownService, name)
	}
	c.mu.Lock()
	published, loaded, pushed := s.published, s.loaded, c.pushed
	c.mu.Unlock()
	if published {
		return nil
	}
	if !pushed {
		return fmt.Errorf("%w: the first publish has not happened", ErrNotReady) // Publish includes it
	}
	if !loaded {
		t, idx, found, err := c.store.Load(ctx, name)
		if err != nil {
			return err
		}
		c.call(s, func() {
			if err = c.onStored(s, t, idx, found, true); err == nil {
				c.applyIntent(s, c.intentOf(ctx)) // a new leader carries out a standing intent
			}
		})
		if err != nil {
			return err
		}
	}
	var missing error
	c.call(s, func() {
		c.mu.Lock()
		switch {
		case !s.loaded:
			missing = fmt.Errorf("%w: %s: traffic state not loaded", ErrNotReady, name)
		case s.membership == nil:
			missing = fmt.Errorf("%w: %s: membership not read from consul yet", ErrNotReady, name)
		}
		c.mu.Unlock()
		if missing != nil {
			return
		}
		c.pushService(s)
		c.mu.Lock()
		s.published = true
		c.mu.Unlock()
		c.log.Info("serving a service added by a config reload", "service", name)
		c.schedule(s) // a re-added service may have a switch to resume
		c.changed(s)
	})
	return missing
}

// UpdateService takes a reload's new settings of a kept service; pools
// and mirror (the route) wait until no switch or roll runs on it.
func (c *Controller) UpdateService(svc model.Service) {
	s := c.get(svc.Name)
	if s == nil {
		return
	}
	c.post(s, func() {
		c.mu.Lock()
		if reflect.DeepEqual(s.cfg, svc) {
			s.pending = nil
			c.mu.Unlock()
			return
		}
		s.pending = &svc
		c.mu.Unlock()
		c.settle(s)
	})
}

// RetireService marks a service a reload removed: it leaves once no switch
// or roll runs on it (at once if none does).
func (c *Controller) RetireService(name string) {
	s := c.get(name)
	if s == nil {
		return
	}
	c.mu.Lock()
	s.retiring = true
	c.mu.Unlock()
	c.post(s, func() { c.settle(s) })
}

// settle applies what a reload left waiting for the service to be idle:
// new pools or mirror, or its removal. Runs on the loop, after every
// change of its state.
func (c *Controller) settle(s *service) {
	c.mu.Lock()
	if c.services[s.cfg.Name] != s {
		c.mu.Unlock()
		return // already gone
	}
	t := s.traffic
	busy := t.ProgressiveRunning() || t.RollRunning()
	retire, pending := s.retiring, s.pending
	c.mu.Unlock()
	if busy {
		return
	}
	// A rollback that just ended is confirmed once every proxy ACKs it
	// (confirmLater): wait for that, a bounded time, so its record is
	// complete before the service leaves.
	if r := t.Rollout; retire && r != nil && !r.DetectedAt.IsZero() && r.ConfirmedAt.IsZero() && !r.EndedAt.IsZero() {
		if left := confirmWait - c.now().Sub(r.EndedAt); left > 0 {
			c.rt.After(left, func() { c.post(s, func() { c.settle(s) }) })
			return
		}
	}
	if retire {
		c.retire(s)
		return
	}
	if pending == nil {
		return
	}
	c.mu.Lock()
	s.cfg, s.pending = *pending, nil
	published := s.published && c.pushed
	c.mu.Unlock()
	if published {
		c.pushService(s)
	}
	c.log.Info("applied a config reload's new service settings", "service", s.cfg.Name)
}

// retire removes an idle retiring service: from the model, then from the
// xDS server (listeners first, so nothing routes to what leaves).
func (c *Controller) retire(s *service) {
	name := s.cfg.Name
	c.mu.Lock()
	sv := model.ServiceView{Service: s.effective(), Traffic: s.traffic}
	if s.membership != nil {
		sv.Membership = *s.membership
	}
	published := s.published
	delete(c.services, name)
	if i, ok := slices.BinarySearch(c.names, name); ok {
		c.names = slices.Delete(c.names, i, i+1)
	}
	done := c.onRetired
	c.mu.Unlock()
	if rm, ok := c.pusher.(ServiceRemover); ok && published {
		r := translator.Translate(model.View{Services: []model.ServiceView{sv}, EnvoyListenAddress: c.envoy})
		if err := rm.RemoveService(r); err != nil {
			c.log.Error("remove a retired service from xDS", "service", name, "error", err)
		}
	}
	c.log.Info("a service removed from the config left xDS", "service", name)
	if done != nil {
		done(name)
	}
}

// retiring refuses what would start something new on a removed service.
func (c *Controller) refuseRetiring(s *service, what string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if s.retiring {
		return fmt.Errorf("%w %q: it was %w, so %s is refused; it is served only until its running switch ends", ErrUnknownService, s.cfg.Name, ErrRemoved, what)
	}
	return nil
}

// configNote is status's word on an added, removed or changing service.
// pushed: the first publish happened. Caller holds c.mu.
func (s *service) configNote(pushed bool) string {
	switch {
	case pushed && !s.published:
		return AddedNote
	case s.retiring:
		return RetiringNote
	case s.pending != nil:
		return PendingNote
	}
	return ""
}

// Configured reports whether the service is in the model (configured, or
// removed and still served).
func (c *Controller) Configured(name string) bool { return c.get(name) != nil }

// SwitchRunning reports whether a progressive switch or a roll runs on the
// service (false for an unknown one).
func (c *Controller) SwitchRunning(name string) bool {
	s := c.get(name)
	if s == nil {
		return false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return s.traffic.ProgressiveRunning() || s.traffic.RollRunning()
}
