package releases_test

import (
	"context"
	"log/slog"
	"math"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/bgctl/bg/controlplane/fleetmetrics"
	"github.com/bgctl/bg/controlplane/membership"
	"github.com/bgctl/bg/controlplane/model"
	"github.com/bgctl/bg/controlplane/notify"
	"github.com/bgctl/bg/controlplane/release"
	"github.com/bgctl/bg/controlplane/releases"
	"github.com/bgctl/bg/controlplane/state"
	"github.com/bgctl/bg/controlplane/state/memstate"
	"github.com/bgctl/bg/controlplane/traffic"
	"github.com/bgctl/bg/controlplane/traffic/traffictest"
	"github.com/bgctl/bg/controlplane/xds"
)

var (
	quiet = slog.New(slog.DiscardHandler)
	t0    = time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC)
)

// fakeRuntime is the shared fake clock (traffictest.Runtime).
type fakeRuntime = traffictest.Runtime

func newFakeRuntime(t *testing.T) *fakeRuntime { return traffictest.NewRuntime(t, t0) }

// recorder is the traffic controller with a record of the switches and
// aborts the executor asked for, in order.
type recorder struct {
	*traffic.Controller
	mu    sync.Mutex
	calls []string // "switch web green", "back web blue", "abort web"
}

func (r *recorder) Switch(ctx context.Context, req traffic.Request) (traffic.Result, error) {
	verb := "switch"
	if req.Back {
		verb = "back"
	}
	r.mu.Lock()
	r.calls = append(r.calls, verb+" "+req.Service+" "+string(req.To))
	r.mu.Unlock()
	return r.Controller.Switch(ctx, req)
}

func (r *recorder) Abort(ctx context.Context, req traffic.Request) (traffic.Result, error) {
	r.mu.Lock()
	r.calls = append(r.calls, "abort "+req.Service)
	r.mu.Unlock()
	return r.Controller.Abort(ctx, req)
}

func (r *recorder) Calls() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.calls)
}

// rig is a leading control plane on a fake clock: the traffic controller
// (memstate store, no proxies beyond the xDS server's bookkeeping) and
// the release executor over the same store.
type rig struct {
	t     *testing.T
	rt    *fakeRuntime
	store *memstate.Store
	rels  state.Releases
	ctrl  *traffic.Controller
	rec   *recorder
	exec  *releases.Executor
	reg   *prometheus.Registry
	m     *releases.Metrics
	ctx   context.Context
	stop  context.CancelFunc
}

type rigOptions struct {
	services []string
	deps     map[string][]string
	groups   map[string][]string
	// progressive: plans for these services with a metrics source that
	// never answers and hour-long intervals: their switches run until
	// aborted.
	progressive []string
	// emptyGreen: these services have no green instances.
	emptyGreen []string
	rels       state.Releases // default: the memstate store
	maxPar     int
	groupGates map[string][]model.Gate
	gates      releases.GateCaller
	keep       int // release.keep (0: the default)
	consumers  *releases.ConsumerWatch
	notify     func(notify.Event)
}

func fleets(service string, green bool) model.Membership {
	m := model.Membership{Blue: model.Fleet{Endpoints: []model.Endpoint{{ID: service + "-b1", Address: "10.0.0.1", Port: 8080, Weight: 1}}}}
	if green {
		m.Green = model.Fleet{Endpoints: []model.Endpoint{{ID: service + "-g1", Address: "10.0.1.1", Port: 8080, Weight: 1}}}
	}
	return m
}

func hourPlan() model.Plan {
	hour := model.Duration(time.Hour)
	return model.Plan{Steps: []int{50, 100}, Bake: hour, Interval: hour, MinRequests: 10, Confidence: 0.99,
		UnavailableBudget: hour, OnUnavailable: model.OnUnavailableRollback,
		InsufficientBudget: hour, OnInsufficient: model.OnUnavailableRollback, Rollback: model.RollbackInstant}
}

type noMetrics struct{}

func (noMetrics) Read(context.Context, fleetmetrics.Query) (fleetmetrics.Reading, error) {
	return fleetmetrics.Reading{}, fleetmetrics.ErrUnavailable
}

func newRig(t *testing.T, o rigOptions) *rig {
	t.Helper()
	rt := newFakeRuntime(t)
	store := memstate.New()
	var svcs []model.Service
	for i, name := range o.services {
		svcs = append(svcs, model.Service{Name: name, ListenerPort: 10000 + i, Protocol: model.ProtocolHTTP1})
	}
	reg := prometheus.NewRegistry()
	ctrl := traffic.New(svcs, "0.0.0.0", store, xds.NewServer(quiet, nil), quiet, traffic.NewMetrics(nil))
	ctrl.SetRuntime(rt)
	if len(o.progressive) > 0 {
		plans := map[string]model.Plan{}
		for _, s := range o.progressive {
			plans[s] = hourPlan()
		}
		ctrl.SetAnalysis(noMetrics{}, plans)
	}
	for _, s := range o.services {
		ctrl.OnMembership(membership.Update{Service: s, Membership: fleets(s, !slices.Contains(o.emptyGreen, s))})
	}
	if err := ctrl.LoadState(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := ctrl.Publish(); err != nil {
		t.Fatal(err)
	}
	r := &rig{t: t, rt: rt, store: store, rels: o.rels, ctrl: ctrl, rec: &recorder{Controller: ctrl}, reg: reg, m: releases.NewMetrics(reg)}
	if r.rels == nil {
		r.rels = store
	}
	r.exec = r.newExecutor(o)
	r.ctx, r.stop = context.WithCancel(context.Background())
	t.Cleanup(r.stop)
	r.exec.Lead(r.ctx)
	rt.Advance(0)
	return r
}

func (r *rig) newExecutor(o rigOptions) *releases.Executor {
	e := releases.New(r.rec, r.rels, releases.Options{
		Services: o.services, Dependencies: o.deps, Groups: o.groups, GroupGates: o.groupGates, Gates: o.gates, MaxParallel: o.maxPar, Keep: o.keep,
		Consumers: o.consumers, Notify: o.notify, Timeout: time.Second, Tick: time.Second, Runtime: r.rt, Log: quiet, Metrics: r.m,
	})
	r.ctrl.SetReleaseGuard(e.Guard)
	return e
}

// stored is the release as stored.
func (r *rig) stored(id string) release.Release {
	r.t.Helper()
	rel, _, found, err := r.rels.LoadRelease(context.Background(), id)
	if err != nil || !found {
		r.t.Fatalf("release %s: found %v, %v", id, found, err)
	}
	return rel
}

func (r *rig) traffic(service string) model.Traffic {
	r.t.Helper()
	t, err := r.ctrl.TrafficState(service)
	if err != nil {
		r.t.Fatal(err)
	}
	return t
}

// member returns the stored phase of one member.
func phaseOf(rel release.Release, service string) release.MemberPhase {
	m, _ := rel.Find(service)
	return m.Phase
}

// metric reads one series' value (NaN if absent).
func metric(t *testing.T, reg *prometheus.Registry, name string, labels map[string]string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	next:
		for _, m := range mf.GetMetric() {
			got := map[string]string{}
			for _, lp := range m.GetLabel() {
				got[lp.GetName()] = lp.GetValue()
			}
			for k, v := range labels {
				if got[k] != v {
					continue next
				}
			}
			if c := m.GetCounter(); c != nil {
				return c.GetValue()
			}
			return m.GetGauge().GetValue()
		}
	}
	return math.NaN()
}
