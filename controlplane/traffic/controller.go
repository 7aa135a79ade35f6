package traffic

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"sort"
	"sync"
	"time"

	apiv1 "github.com/bgctl/bg/controlplane/api/v1"

	"github.com/envoyproxy/go-control-plane/pkg/cache/types"

	"github.com/bgctl/bg/controlplane/acks"
	"github.com/bgctl/bg/controlplane/fleetmetrics"
	"github.com/bgctl/bg/controlplane/gate"
	"github.com/bgctl/bg/controlplane/membership"
	"github.com/bgctl/bg/controlplane/model"
	"github.com/bgctl/bg/controlplane/state"
	"github.com/bgctl/bg/controlplane/translator"
	"github.com/bgctl/bg/controlplane/wait"
	"github.com/bgctl/bg/controlplane/window"
	"github.com/bgctl/bg/controlplane/xds"
)

// Pusher is the part of the xDS server the controller drives.
type Pusher interface {
	Load(translator.Resources)
	// UpdateRouteGen pushes a service's route as serving generation gen
	// (an equal route is not pushed again; gen is recorded either way).
	UpdateRouteGen(name string, r types.Resource, gen uint64) (uint64, error)
	// MarkRouteGen records the generation the route in the cache serves.
	MarkRouteGen(name string, gen uint64)
	UpdateEndpoints(map[string]types.Resource) error
	// UpdateService adds or replaces one service's resources of every type.
	UpdateService(translator.Resources) error
	WaitRoute(ctx context.Context, name string) xds.AckResult
	RouteStatus(name string) (subscribed, acked int)
}

// Acks answers whether every proxy of every replica holds a generation
// (controlplane/acks). Without it, only this replica's proxies count.
type Acks interface {
	Wait(ctx context.Context, service string, gen uint64) acks.Result
	Status(ctx context.Context, service string, gen uint64) acks.Result
}

// service is the controller's record of one service. Its loop (Runtime)
// is the only writer; writes and reads from other goroutines (status)
// hold c.mu.
type service struct {
	cfg        model.Service
	metaRoll   membershipHint    // Consul meta can mark the service stateful
	membership *model.Membership // what is served; nil until the first successful read
	guarded    membership.State  // served and last read fleets, holds in force
	recheckAt  time.Time         // when a hold's grace ends (a recheck is scheduled)
	skipped    []string
	readAt     time.Time
	traffic    model.Traffic
	index      state.Index
	loaded     bool
	// unsaved: traffic is a rollback bg decided but could not store yet.
	unsaved bool
	// storedGen is the generation of the stored revision index.
	storedGen uint64
	// intentFor: the switch or roll whose rollback intent this replica wrote.
	intentFor string
	// ticking: an analysis round or roll tick of term tickEpoch is
	// scheduled or running.
	ticking   bool
	tickEpoch uint64
	// published: the service's resources are in the xDS server (Publish,
	// or PublishService for a service a reload added).
	published bool
	// retiring: a reload removed the service; it is served as it is until
	// no switch or roll runs on it, then it leaves (reload.go).
	retiring bool
	// pending is a reload's new settings of the service (pools, mirror),
	// applied once no switch or roll runs on it.
	pending *model.Service
}

// Controller keeps the model current and applies traffic changes. Each
// service has its own reconciler loop (reconciler.go).
type Controller struct {
	store  state.Store
	pusher Pusher
	log    *slog.Logger
	m      *Metrics
	envoy  string // Envoy listener bind address
	rt     Runtime

	mu       sync.Mutex // guards the fields below and every service's fields
	services map[string]*service
	names    []string
	pushed   bool // the full model was loaded into the xDS server
	loadErr  error
	leading  bool
	epoch    uint64 // counts leadership changes: stale ticks see a new epoch

	windows    map[string]*window.Schedule
	gates      GateCaller
	source     fleetmetrics.Source
	plans      map[string]model.Plan
	rollParams map[string]model.RollParams
	replica    string
	retention  int
	control    func() any
	notes      func() []apiv1.NotificationStatus // SetNotificationStatus
	reload     func() apiv1.ReloadStatus         // SetReloadStatus
	converge   func(string) *apiv1.Convergence   // SetConvergeStatus
	guard      membership.Guard
	acks       Acks
	counts     analysisSessions // each running switch's or roll's counters, per service
	// releaseGuard names the running release owning a service (members.go).
	releaseGuard ReleaseGuard
	// subs are told when a service's served state changes (subscribe.go).
	subs subscribers
	// recorder is told of each change the leader stores (record.go).
	recorder atomicRecorder
	// onRetired is told each service a reload removed once it left (reload.go).
	onRetired func(service string)
}

// New builds a controller for the configured services.
func New(services []model.Service, envoyListenAddress string, store state.Store, pusher Pusher, log *slog.Logger, m *Metrics) *Controller {
	c := &Controller{store: store, pusher: pusher, log: log, m: m, envoy: envoyListenAddress, services: map[string]*service{}, rt: newRealRuntime(),
		leading: true, guard: membership.Guard{Grace: DefaultShrinkGrace}, gates: gate.Caller{}}
	for _, s := range services {
		c.services[s.Name] = &service{cfg: s}
		c.names = append(c.names, s.Name)
	}
	sort.Strings(c.names)
	if m != nil {
		m.state.source(c.metricState)
	}
	return c
}

// metricState copies what the state gauges export, for every loaded service.
func (c *Controller) metricState() []serviceState {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]serviceState, 0, len(c.names))
	for _, name := range c.names {
		s := c.services[name]
		if !s.loaded {
			continue
		}
		out = append(out, serviceState{service: name, traffic: s.traffic, members: s.membership})
	}
	return out
}

// DefaultShrinkGrace is how long a fleet that lost more than half its
// members in one read keeps its last known endpoints.
const DefaultShrinkGrace = 30 * time.Second

// SetShrinkGrace sets membership.shrink_grace (0: no grace; a fleet that
// carries traffic is still never emptied by one read).
func (c *Controller) SetShrinkGrace(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.guard.Grace = d
}

// GateCaller calls one gate webhook (gate.Caller; the simulation fakes it).
type GateCaller interface {
	Call(ctx context.Context, g model.Gate, p gate.Payload) model.GateResult
}

// SetGates replaces the gate webhook caller.
func (c *Controller) SetGates(g GateCaller) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gates = g
}

// SetAcks makes every "done" count the proxies of every replica.
func (c *Controller) SetAcks(a Acks) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.acks = a
}

// waitAcks waits until every proxy holds gen: every replica's with SetAcks,
// else this replica's.
func (c *Controller) waitAcks(ctx context.Context, service string, gen uint64) xds.AckResult {
	c.mu.Lock()
	a := c.acks
	c.mu.Unlock()
	if a == nil {
		return c.pusher.WaitRoute(ctx, service)
	}
	return a.Wait(ctx, service, gen).AckResult()
}

// UseElection makes leadership come from Lead: until a Lead call, this
// replica only follows the stored state. Without it a controller leads.
func (c *Controller) UseElection() { c.setLeading(false) }

// SetRuntime replaces the production runtime (the fault simulation's
// scheduler). Call before anything else.
func (c *Controller) SetRuntime(rt Runtime) { c.rt = rt }

func (c *Controller) now() time.Time { return c.rt.Now() }

// LoadState reads every service's persisted traffic. Where none is stored,
// the leader restores it (history) or creates it; others wait for it. A
// store that can (state.Lister) reads every service in one request.
func (c *Controller) LoadState(ctx context.Context) error {
	load, intent := c.loaders(ctx)
	for _, name := range c.serviceNames() {
		s := c.get(name)
		if s == nil {
			continue // retired meanwhile
		}
		t, idx, found, err := load(name)
		c.mu.Lock()
		c.loadErr = err
		c.mu.Unlock()
		if err != nil {
			return err
		}
		c.call(s, func() {
			if err = c.onStored(s, t, idx, found, true); err == nil {
				c.applyIntent(s, intent) // a new leader carries out a standing intent
			}
		})
		if err != nil {
			c.mu.Lock()
			c.loadErr = err
			c.mu.Unlock()
			return err
		}
	}
	return nil
}

// stateLoader reads one service's stored state; intentLoader its standing
// rollback intent.
type (
	stateLoader  func(service string) (model.Traffic, state.Index, bool, error)
	intentLoader func(service string) (model.Intent, bool, error)
)

// intentOf reads one service's intent from the store, if it keeps intents.
func (c *Controller) intentOf(ctx context.Context) intentLoader {
	return func(service string) (model.Intent, bool, error) {
		if is, ok := c.store.(state.Intents); ok {
			return is.LoadIntent(ctx, service)
		}
		return model.Intent{}, false, nil
	}
}

// loaders reads from one snapshot when the store can list, else service by service.
func (c *Controller) loaders(ctx context.Context) (stateLoader, intentLoader) {
	byService := func(service string) (model.Traffic, state.Index, bool, error) { return c.store.Load(ctx, service) }
	intent := c.intentOf(ctx)
	l, ok := c.store.(state.Lister)
	if !ok {
		return byService, intent
	}
	snap, err := l.LoadAll(ctx)
	if err != nil {
		return func(string) (model.Traffic, state.Index, bool, error) { return model.Traffic{}, 0, false, err }, intent
	}
	c.createAbsent(ctx, snap)
	return func(service string) (model.Traffic, state.Index, bool, error) {
			if err := snap.Invalid[service]; err != nil {
				return model.Traffic{}, 0, false, err
			}
			st, found := snap.Traffic[service]
			return st.Traffic, st.Index, found, nil
		}, func(service string) (model.Intent, bool, error) {
			in, found := snap.Intents[service]
			return in, found, nil
		}
}

// createAbsent creates, in a few writes, the states of services that have
// none, no history and a first membership read, when this replica leads
// and the store can (state.Creator); it adds them to snap, where LoadState
// adopts them. Whatever it leaves out (an error, a state that appeared, a
// history to restore) LoadState creates one service at a time.
func (c *Controller) createAbsent(ctx context.Context, snap state.Snapshot) {
	cr, ok := c.store.(state.Creator)
	c.mu.Lock()
	leading := c.leading
	c.mu.Unlock()
	if !ok || !leading {
		return
	}
	var absent []state.Absent
	var owners map[string]bool
	for _, name := range c.serviceNames() {
		if _, found := snap.Traffic[name]; found || snap.Invalid[name] != nil {
			continue
		}
		s := c.get(name)
		if s == nil {
			continue
		}
		c.mu.Lock()
		loaded, ms := s.loaded, s.membership
		c.mu.Unlock()
		if loaded || ms == nil {
			continue
		}
		if owners == nil {
			var err error
			if owners, err = cr.HistoryOwners(ctx); err != nil {
				c.log.Warn("cannot list history; creating states one at a time", "error", err)
				return
			}
		}
		if owners[name] {
			continue // restored from its history by createMissing
		}
		t, why := initialState(*ms)
		t.Reason = why
		e := c.entry(ctx, t, t)
		absent = append(absent, state.Absent{Service: name, Traffic: t, Entry: e})
	}
	if len(absent) == 0 {
		return
	}
	start := c.now()
	created, err := cr.CreateAbsent(ctx, absent)
	for name, st := range created {
		snap.Traffic[name] = st
		delete(snap.Intents, name) // removed in the same write
	}
	if err != nil {
		c.log.Warn("creating traffic states in batches failed; creating the rest one at a time", "created", len(created), "error", err)
		return
	}
	c.log.Info("created traffic states", "services", len(created), "of", len(absent), "took", c.now().Sub(start).Round(time.Millisecond))
}

// OnStored applies a state read by the watch (possibly written by another
// replica, or deleted: found false). Our own writes change nothing.
func (c *Controller) OnStored(service string, t model.Traffic, idx state.Index, found bool) {
	s := c.get(service)
	if s == nil {
		return
	}
	c.post(s, func() {
		c.mu.Lock()
		loaded := s.loaded
		c.mu.Unlock()
		if !loaded {
			return // LoadState decides the first state
		}
		if err := c.onStored(s, t, idx, found, false); err != nil {
			c.log.Warn("stored state not applied", "service", service, "error", err)
		}
	})
}

// OnMembership records a successful read and pushes changed endpoints.
func (c *Controller) OnMembership(u membership.Update) {
	s := c.get(u.Service)
	if s == nil {
		return
	}
	c.call(s, func() { c.onMembership(s, u) })
}

func (c *Controller) onMembership(s *service, u membership.Update) {
	c.mu.Lock()
	s.skipped, s.readAt = u.Skipped, c.now()
	hint := membershipHint{rolling: u.Rolling, header: u.AffinityHeader}
	strategyChanged := hint != s.metaRoll
	s.metaRoll = hint
	pushed := c.pushed && s.published
	c.mu.Unlock()
	changed := c.guardFleets(s, u.Membership)
	if !pushed {
		return
	}
	if strategyChanged {
		c.log.Info("consul meta changed the service's strategy", "service", u.Service, "rolling", c.effective(s).Stateful())
		c.pushService(s)
		return
	}
	if changed {
		c.pushEndpoints(s, c.trafficOf(s))
	}
}

// guardFleets applies a read (or, with the last read, a recheck) through
// the shrink guard: one read never empties a fleet that carries traffic,
// and a fleet that loses more than half its members keeps them for the
// grace. It returns whether the served fleets changed. Runs on the loop.
func (c *Controller) guardFleets(s *service, read model.Membership) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	t, prev := s.traffic, s.membership
	carrying := func(col model.Color) bool { return !s.loaded || membership.Carries(t, col) }
	next, at := c.guard.ApplyMembership(s.guarded, read, carrying, c.now())
	for _, col := range model.Colors {
		was, now := s.guarded.Hold(col), next.Hold(col)
		if was == nil && now != nil {
			c.log.Warn("holding fleet: a read lost most of its members", "service", s.cfg.Name, "color", col, "served", now.Served, "read", now.Read, "reason", now.Reason)
		} else if was != nil && now == nil {
			c.log.Info("fleet hold ended", "service", s.cfg.Name, "color", col, "served", len(next.Served.Fleet(col).Endpoints))
		}
	}
	s.guarded = next
	served := next.Served
	s.membership = &served
	c.m.held.Observe(s.cfg.Name, next)
	if !at.IsZero() && (s.recheckAt.IsZero() || at.Before(s.recheckAt)) {
		s.recheckAt = at
		c.rt.After(at.Sub(c.now()), func() {
			c.post(s, func() {
				c.mu.Lock()
				due := !s.recheckAt.IsZero() && !c.now().Before(s.recheckAt)
				if due {
					s.recheckAt = time.Time{}
				}
				last := s.guarded.Read
				c.mu.Unlock()
				if due && c.guardFleets(s, last) {
					c.pushEndpoints(s, c.trafficOf(s))
				}
			})
		})
	}
	return prev == nil || !equalFleet(prev.Blue, served.Blue) || !equalFleet(prev.Green, served.Green)
}

func (c *Controller) trafficOf(s *service) model.Traffic {
	c.mu.Lock()
	defer c.mu.Unlock()
	return s.traffic
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
	for _, name := range c.names {
		c.pusher.MarkRouteGen(name, c.services[name].traffic.Generation)
		c.services[name].published = true
	}
	c.pushed = true
	return nil
}

// Lead makes this replica act until ctx ends (leadership lost): every
// service re-reads its stored state (an unsaved rollback wins over it) and
// resumes a running switch or roll. The first round comes one interval
// after takeover, so a takeover alone never moves traffic.
func (c *Controller) Lead(ctx context.Context) {
	term := c.setLeading(true)
	go func() {
		<-ctx.Done()
		c.deposeTerm(term) // never a later term the elector already started
	}()
	for ctx.Err() == nil {
		if err := c.LoadState(ctx); err == nil {
			break
		}
		wait.Sleep(ctx, 500*time.Millisecond)
	}
	for ctx.Err() == nil && !c.Ready() {
		wait.Sleep(ctx, 50*time.Millisecond) // act only on a published model
	}
	c.Start()
}

// Elected: this replica leads from now on (in a new term).
func (c *Controller) Elected() { c.setLeading(true) }

// Deposed: this replica no longer leads; rounds of its term are void.
func (c *Controller) Deposed() { c.setLeading(false) }

// setLeading records a leadership change and returns its epoch; a new
// epoch voids scheduled rounds.
func (c *Controller) setLeading(on bool) uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.leading = on
	c.epoch++
	return c.epoch
}

// deposeTerm ends the term that began at epoch, unless a later one began
// meanwhile: the end of an old term must not depose a new one.
func (c *Controller) deposeTerm(epoch uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.epoch == epoch && c.leading {
		c.leading = false
		c.epoch++
	}
}

// Start schedules the rounds of every running switch or roll.
func (c *Controller) Start() {
	for _, name := range c.serviceNames() {
		if s := c.get(name); s != nil {
			c.post(s, func() { c.schedule(s) })
		}
	}
}

// get returns the named service, nil if it is not configured (a reload
// adds and retires services while the loops run).
func (c *Controller) get(name string) *service {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.services[name]
}

// serviceNames copies the configured services' names, sorted.
func (c *Controller) serviceNames() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.names)
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
