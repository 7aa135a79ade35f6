package traffic

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"sync"
	"time"

	"github.com/envoyproxy/go-control-plane/pkg/cache/types"

	"github.com/bgctl/bg/controlplane/fleetmetrics"
	"github.com/bgctl/bg/controlplane/gate"
	"github.com/bgctl/bg/controlplane/membership"
	"github.com/bgctl/bg/controlplane/model"
	"github.com/bgctl/bg/controlplane/state"
	"github.com/bgctl/bg/controlplane/translator"
	"github.com/bgctl/bg/controlplane/window"
	"github.com/bgctl/bg/controlplane/xds"
)

// Pusher is the part of the xDS server the controller drives.
type Pusher interface {
	Load(translator.Resources)
	UpdateRoute(name string, r types.Resource) (uint64, error)
	UpdateEndpoints(map[string]types.Resource) error
	// UpdateService adds or replaces one service's resources of every type.
	UpdateService(translator.Resources) error
	WaitRoute(ctx context.Context, name string) xds.AckResult
	RouteStatus(name string) (subscribed, acked int)
}

// service is the controller's record of one service.
type service struct {
	op sync.Mutex // serialises switches and aborts of this service

	cfg        model.Service
	metaRoll   membershipHint    // Consul meta can mark the service stateful
	membership *model.Membership // nil until the first successful read
	skipped    []string
	readAt     time.Time
	traffic    model.Traffic
	index      state.Index
	loaded     bool
	// runnerActive: an analysis loop drives this service's switch.
	runnerActive bool
}

// Controller keeps the model current and applies traffic changes.
type Controller struct {
	store  state.Store
	pusher Pusher
	log    *slog.Logger
	m      *Metrics
	envoy  string // Envoy listener bind address

	mu       sync.Mutex // guards every service's fields but op, and pushed
	services map[string]*service
	names    []string
	pushed   bool // the full model was loaded into the xDS server
	loadErr  error

	windows    map[string]*window.Schedule
	gates      gate.Caller
	source     fleetmetrics.Source
	plans      map[string]model.Plan
	rollParams map[string]model.RollParams
	ctx        context.Context // lifetime of analysis loops, set by Start
	replica    string
	retention  int
	control    func() any
	now        func() time.Time
}

// New builds a controller for the configured services.
func New(services []model.Service, envoyListenAddress string, store state.Store, pusher Pusher, log *slog.Logger, m *Metrics) *Controller {
	c := &Controller{store: store, pusher: pusher, log: log, m: m, envoy: envoyListenAddress, services: map[string]*service{}, now: time.Now}
	for _, s := range services {
		c.services[s.Name] = &service{cfg: s}
		c.names = append(c.names, s.Name)
	}
	sort.Strings(c.names)
	return c
}

// LoadState reads every service's persisted traffic, creating the initial
// state (all blue) only where none exists. It never overwrites a stored state.
func (c *Controller) LoadState(ctx context.Context) error {
	for _, name := range c.names {
		t, idx, found, err := c.store.Load(ctx, name)
		c.mu.Lock()
		c.loadErr = err
		c.mu.Unlock()
		if err != nil {
			return err
		}
		if !found {
			t = model.InitialTraffic()
			t.Reason = "initial state"
			idx, err = c.store.Save(ctx, name, t, 0, c.entry(ctx, t, t))
			if errors.Is(err, state.ErrConflict) {
				return fmt.Errorf("service %s: state appeared while creating it; retrying", name)
			}
			if err != nil {
				return err
			}
			c.log.Info("created initial traffic state", "service", name, "state", describe(t))
		}
		c.mu.Lock()
		s := c.services[name]
		changed := s.loaded && s.traffic.Generation != t.Generation
		s.traffic, s.index, s.loaded = t, idx, true
		if changed && c.pushed {
			c.pushTrafficLocked(s) // e.g. a new leader's fresh read
		}
		c.mu.Unlock()
		c.m.setWeights(name, t)
	}
	return nil
}

// OnMembership records a successful read and pushes changed endpoints.
func (c *Controller) OnMembership(u membership.Update) {
	c.mu.Lock()
	defer c.mu.Unlock()
	s := c.services[u.Service]
	if s == nil {
		return
	}
	prev := s.membership
	m := u.Membership
	s.membership, s.skipped, s.readAt = &m, u.Skipped, time.Now()
	c.m.setMembers(u.Service, m)
	hint := membershipHint{rolling: u.Rolling, header: u.AffinityHeader}
	strategyChanged := hint != s.metaRoll
	s.metaRoll = hint
	if !c.pushed {
		return
	}
	if strategyChanged {
		c.log.Info("consul meta changed the service's strategy", "service", u.Service, "rolling", s.effective().Rolling())
		c.pushServiceLocked(s)
		return
	}
	if prev != nil && equalFleet(prev.Blue, m.Blue) && equalFleet(prev.Green, m.Green) {
		return
	}
	// Both colours: during a roll one cluster serves hosts of both fleets.
	sv := model.ServiceView{Service: s.effective(), Membership: m, Traffic: s.traffic}
	if err := c.pusher.UpdateEndpoints(translator.Endpoints(sv)); err != nil {
		c.log.Error("push endpoints", "service", u.Service, "error", err)
		return
	}
	c.log.Info("fleet changed", "service", u.Service, "blue", len(m.Blue.Endpoints), "green", len(m.Green.Endpoints))
}

func equalFleet(a, b model.Fleet) bool {
	if len(a.Endpoints) != len(b.Endpoints) {
		return false
	}
	for i := range a.Endpoints {
		if a.Endpoints[i] != b.Endpoints[i] {
			return false
		}
	}
	return true
}

// Missing lists what keeps the model from being complete, empty when ready.
func (c *Controller) Missing() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []string
	for _, name := range c.names {
		s := c.services[name]
		if !s.loaded {
			msg := name + ": traffic state not loaded"
			if c.loadErr != nil {
				msg += " (" + c.loadErr.Error() + ")"
			}
			out = append(out, msg)
		}
		if s.membership == nil {
			out = append(out, name+": membership not read from consul yet")
		}
	}
	return out
}

// Publish loads the complete model into the xDS server. Until then proxies
// get nothing rather than a default that might differ from the stored split.
func (c *Controller) Publish() error {
	if missing := c.Missing(); len(missing) > 0 {
		return fmt.Errorf("%w: %v", ErrNotReady, missing)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.pusher.Load(translator.Translate(c.viewLocked()))
	c.pushed = true
	return nil
}

// Start runs analysis loops until ctx ends, resuming any switch that was
// running when the state was loaded (e.g. after a restart).
func (c *Controller) Start(ctx context.Context) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.ctx = ctx
	for _, name := range c.names {
		c.ensureRunnerLocked(name)
	}
}

// Ready is true once the model has been published.
func (c *Controller) Ready() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.pushed
}

func (c *Controller) viewLocked() model.View {
	v := model.View{EnvoyListenAddress: c.envoy}
	for _, name := range c.names {
		s := c.services[name]
		sv := model.ServiceView{Service: s.effective(), Traffic: s.traffic}
		if s.membership != nil {
			sv.Membership = *s.membership
		}
		v.Services = append(v.Services, sv)
	}
	return v
}
