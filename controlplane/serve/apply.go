package serve

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/bgctl/bg/controlplane/config"
	"github.com/bgctl/bg/controlplane/fleetmetrics/prometheus"
	"github.com/bgctl/bg/controlplane/model"
	"github.com/bgctl/bg/controlplane/notify"
	"github.com/bgctl/bg/controlplane/traffic"
	"github.com/bgctl/bg/controlplane/wait"
	"github.com/bgctl/bg/controlplane/window"
)

// modelService is a configured service as the controller serves it.
func modelService(s config.Service) model.Service {
	return model.Service{Name: s.Name, ListenerPort: s.Port, Protocol: model.Protocol(s.Protocol),
		Strategy: model.Strategy(s.Strategy), Affinity: model.Affinity{Header: s.Affinity.Header, Cookie: s.Affinity.Cookie},
		Pools: s.ModelPools(), MirrorPercent: s.Mirror.Percent}
}

// The parts of bg serve a reload changes besides the controller.
type (
	// watchedSet is the membership source (consulsrc.Source.SetServices).
	watchedSet interface{ SetServices(names map[string]string) }
	// expecter is the state watch (consulkv.Store.Expect).
	expecter interface{ Expect(services []string) }
	// ackSet is the ACK publisher (acks.Aggregator.SetServices), or the
	// releases' service list.
	ackSet interface{ SetServices(services []string) }
	// templateSetter is the Prometheus source (SetTemplates).
	templateSetter interface {
		SetTemplates(map[string]prometheus.Templates) error
	}
)

// switchRunningError: a reload would change what a running switch
// reads; the reload is refused.
type switchRunningError struct{ err error }

func (e *switchRunningError) Error() string { return e.err.Error() }

// liveApplier applies a reload to a running bg serve.
type liveApplier struct {
	ctx     context.Context
	ctrl    *traffic.Controller
	log     *slog.Logger
	prom    templateSetter // nil: no Prometheus
	members watchedSet
	store   expecter
	acks    ackSet // nil: none
	notes   *notifiers
	rels    ackSet // releases.Executor.SetServices: what --all names; nil: none
	// conv follows the services and their auto settings (the convergence
	// loop); nil: none.
	conv interface {
		SetServices(map[string]config.Auto)
	}

	mu sync.Mutex
	// served maps every served service (configured, or removed and still
	// served) to its Consul service: what membership, the state watch and
	// the ACK reports follow.
	served map[string]string
	// plans and templates in force, by service: a removed service's stay
	// until it leaves, since a switch running on it still reads them.
	plans     map[string]model.Plan
	templates map[string]prometheus.Templates
}

var _ applier = (*liveApplier)(nil)

func (a *liveApplier) prepare(_, next *config.Config, ch config.Change) (func(), error) {
	plans, templates := plansOf(next)
	a.mu.Lock()
	for name := range a.served { // removed now or before, and still served
		if _, ok := plans[name]; !ok {
			if p, ok := a.plans[name]; ok {
				plans[name] = p
			}
			if t, ok := a.templates[name]; ok {
				templates[name] = t
			}
		}
	}
	var busy []string
	for name, t := range templates {
		if old, ok := a.templates[name]; ok && old != t && a.ctrl.SwitchRunning(name) {
			busy = append(busy, name)
		}
	}
	a.mu.Unlock()
	if len(busy) > 0 {
		// A running switch counts each series from its start with these
		// queries: other queries mid-way would count other series.
		slices.Sort(busy)
		var es []error
		for _, name := range busy {
			es = append(es, fmt.Errorf("services[%s].analysis requests, errors and latency.query cannot change while a switch runs on %s; reload once it ends", name, name))
		}
		return nil, &switchRunningError{errors.Join(es...)}
	}
	windows := map[string]*window.Schedule{}
	rollParams := map[string]model.RollParams{}
	for _, s := range next.Services {
		sch, err := s.Schedule()
		if err != nil {
			return nil, fmt.Errorf("services %s windows: %w", s.Name, err)
		}
		windows[s.Name] = sch
		rollParams[s.Name] = s.Rolling.Params()
	}
	var targets []notify.Target
	if ch.Notifications {
		var err error
		if targets, err = next.NotifyTargets(); err != nil {
			return nil, err
		}
	}
	// Last, as it changes the source: all of them parse or none is taken.
	if a.prom != nil {
		if err := a.prom.SetTemplates(templates); err != nil {
			return nil, err
		}
	}
	return func() {
		// The controller gets a copy: onRetired deletes from a.plans
		// under a.mu, while the controller reads its map under its own.
		a.ctrl.SetPlans(maps.Clone(plans))
		a.ctrl.SetWindows(windows)
		a.ctrl.SetRolling(rollParams)
		if ch.Notifications {
			a.notes.set(targets)
		}
		for _, s := range next.Services {
			if slices.Contains(ch.Updated, s.Name) {
				a.ctrl.UpdateService(modelService(s))
			}
		}
		if a.rels != nil {
			var names []string
			for _, s := range next.Services {
				names = append(names, s.Name)
			}
			a.rels.SetServices(names)
		}
		if a.conv != nil {
			autos := map[string]config.Auto{}
			for _, s := range next.Services {
				autos[s.Name] = s.Auto
			}
			a.conv.SetServices(autos)
		}
		a.mu.Lock()
		defer a.mu.Unlock()
		a.plans, a.templates = plans, templates
		for _, s := range ch.Added {
			a.served[s.Name] = s.ConsulService
			if a.ctrl.AddService(modelService(s)) {
				go a.publish(s.Name)
			}
		}
		for _, name := range ch.Removed {
			a.ctrl.RetireService(name)
		}
		a.syncLocked()
	}, nil
}

// syncLocked tells the watches which services are served.
func (a *liveApplier) syncLocked() {
	names := slices.Sorted(maps.Keys(a.served))
	a.members.SetServices(maps.Clone(a.served))
	a.store.Expect(names)
	if a.acks != nil {
		a.acks.SetServices(names)
	}
}

// onRetired: a removed service left xDS; its watches end (unless a later
// reload added it back meanwhile).
func (a *liveApplier) onRetired(name string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.ctrl.Configured(name) {
		return
	}
	delete(a.served, name)
	delete(a.plans, name)
	delete(a.templates, name)
	a.syncLocked()
}

// publish serves an added service once its state is loaded (the leader
// creates it as at a first start) and its fleets are read.
func (a *liveApplier) publish(name string) {
	backoff := 50 * time.Millisecond
	for {
		err := a.ctrl.PublishService(a.ctx, name)
		switch {
		case err == nil:
			return
		case errors.Is(err, traffic.ErrUnknownService):
			return // removed again
		case errors.Is(err, traffic.ErrNotReady), errors.Is(err, traffic.ErrStateMissing):
			// Waiting for its first fleet read or the leader's first
			// state: soon, but a service with no instances yet is not
			// polled ten times a second for ever.
			backoff = min(backoff*2, time.Second)
		default:
			a.log.Warn("serving a service added by a reload: retrying", "service", name, "error", err, "retry_in", backoff)
			backoff = min(backoff*2, 5*time.Second)
		}
		if !wait.Sleep(a.ctx, backoff) {
			return
		}
	}
}
