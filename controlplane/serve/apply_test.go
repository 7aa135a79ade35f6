package serve

import (
	"context"
	"errors"
	"log/slog"
	"maps"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	apiv1 "github.com/bgctl/bg/controlplane/api/v1"
	"github.com/bgctl/bg/controlplane/config"
	"github.com/bgctl/bg/controlplane/fleetmetrics/prometheus"
	"github.com/bgctl/bg/controlplane/membership"
	"github.com/bgctl/bg/controlplane/model"
	"github.com/bgctl/bg/controlplane/state/memstate"
	"github.com/bgctl/bg/controlplane/traffic"
	"github.com/bgctl/bg/controlplane/xds"
)

// watches records what the applier told membership, the state watch and
// the ACK publisher, and the templates it gave the Prometheus source.
type watches struct {
	mu        sync.Mutex
	members   map[string]string
	expect    []string
	acks      []string
	templates map[string]prometheus.Templates
	failTmpl  error
}

func (w *watches) SetServices(names map[string]string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.members = maps.Clone(names)
}

func (w *watches) Expect(s []string) { w.mu.Lock(); w.expect = slices.Clone(s); w.mu.Unlock() }

type ackWatch struct{ w *watches }

// relWatch records the releases' service list.
type relWatch struct {
	mu    sync.Mutex
	names []string
}

func (r *relWatch) SetServices(s []string) { r.mu.Lock(); r.names = slices.Clone(s); r.mu.Unlock() }

func (a ackWatch) SetServices(s []string) { a.w.mu.Lock(); a.w.acks = slices.Clone(s); a.w.mu.Unlock() }

func (w *watches) SetTemplates(t map[string]prometheus.Templates) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.failTmpl != nil {
		return w.failTmpl
	}
	w.templates = maps.Clone(t)
	return nil
}

func (w *watches) state() (members []string, expect, acks, templates []string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return slices.Sorted(maps.Keys(w.members)), w.expect, w.acks, slices.Sorted(maps.Keys(w.templates))
}

const applyYAML = `
consul: {address: 127.0.0.1:8500}
xds: {listen: 127.0.0.1:18000}
admin: {listen: 127.0.0.1:9090}
prometheus: {address: http://127.0.0.1:9091}
services:
  - name: web
    port: 10000
  - name: cart
    port: 10002
`

func applyConfig(t *testing.T, body string) *config.Config {
	t.Helper()
	path := filepath.Join(t.TempDir(), "bg.yaml")
	writeConfig(t, path, body)
	cfg, err := config.LoadValid(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// newServedApplier serves old's services (state loaded, published) and
// returns a live applier over them with fake watches, holding plansOf(old).
func newServedApplier(t *testing.T, ctx context.Context, old *config.Config) (*liveApplier, *traffic.Controller, *watches, *relWatch) {
	t.Helper()
	quiet := slog.New(slog.DiscardHandler)
	var services []model.Service
	names := map[string]string{}
	for _, s := range old.Services {
		services = append(services, modelService(s))
		names[s.Name] = s.ConsulService
	}
	ctrl := traffic.New(services, "0.0.0.0", memstate.New(), xds.NewServer(quiet, nil), quiet, traffic.NewMetrics(nil))
	for _, s := range services {
		ctrl.OnMembership(membership.Update{Service: s.Name, Membership: fleets()})
	}
	if err := ctrl.LoadState(ctx); err != nil {
		t.Fatal(err)
	}
	if err := ctrl.Publish(); err != nil {
		t.Fatal(err)
	}
	w, rels := &watches{}, &relWatch{}
	a := &liveApplier{ctx: ctx, ctrl: ctrl, log: quiet, prom: w, members: w, store: w, acks: ackWatch{w},
		notes: newNotifiers(ctx, ctrl, "127.0.0.1:9090", quiet, nil), rels: rels, served: maps.Clone(names)}
	a.plans, a.templates = plansOf(old)
	return a, ctrl, w, rels
}

func TestLiveApplier(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	old := applyConfig(t, applyYAML)
	a, ctrl, w, rels := newServedApplier(t, ctx, old)
	ctrl.SetAnalysis(nil, a.plans)
	ctrl.SetOnRetired(a.onRetired)

	// cart removed, api added, web's steps changed.
	next := applyConfig(t, strings.Replace(strings.Replace(applyYAML, "  - name: cart\n    port: 10002\n", "  - name: api\n    port: 10001\n", 1),
		"port: 10000\n", "port: 10000\n    analysis: {steps: [50, 100]}\n", 1))
	ch, err := config.Diff(old, next)
	if err != nil || ch.String() != "added api; removed cart; updated web" {
		t.Fatalf("diff: %s %v", ch, err)
	}

	// Whatever fails in prepare leaves everything as it was.
	w.failTmpl = errors.New("template: bad")
	if _, err := a.prepare(old, next, ch); err == nil {
		t.Fatal("a failing template set was ignored")
	}
	withBadNotify := *next
	withBadNotify.Notifications = []config.Notification{{Name: "ops", Type: "webhook", URLFile: filepath.Join(t.TempDir(), "missing")}}
	chN := ch
	chN.Notifications = true
	w.failTmpl = nil
	if _, err := a.prepare(old, &withBadNotify, chN); err == nil {
		t.Fatal("a missing url_file was ignored")
	}
	if m, _, _, tmpl := w.state(); m != nil || tmpl != nil || ctrl.Configured("api") || !ctrl.Configured("cart") {
		t.Fatalf("a failed prepare changed something: members %v templates %v", m, tmpl)
	}

	commit, err := a.prepare(old, next, ch)
	if err != nil {
		t.Fatal(err)
	}
	commit()
	// cart was idle: it leaves at once; api is served once its state exists.
	deadline := time.Now().Add(5 * time.Second)
	for ctrl.Configured("cart") || ctrl.PublishService(ctx, "api") != nil {
		if time.Now().After(deadline) {
			t.Fatal("cart did not leave or api was not served")
		}
		ctrl.OnMembership(membership.Update{Service: "api", Membership: fleets()})
		time.Sleep(5 * time.Millisecond)
	}
	for {
		members, expect, acks, tmpl := w.state()
		want := []string{"api", "web"}
		if slices.Equal(members, want) && slices.Equal(expect, want) && slices.Equal(acks, want) {
			if !slices.Equal(tmpl, []string{"api", "cart", "web"}) { // the source keeps cart's until the next reload
				t.Fatalf("templates %v", tmpl)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("watches: members %v expect %v acks %v", members, expect, acks)
		}
		time.Sleep(5 * time.Millisecond)
	}
	rels.mu.Lock()
	if !slices.Equal(rels.names, []string{"web", "api"}) {
		t.Errorf("releases name %v, want the file's services", rels.names)
	}
	rels.mu.Unlock()
	a.mu.Lock()
	steps := a.plans["web"].Steps
	_, cartPlan := a.plans["cart"]
	a.mu.Unlock()
	if !slices.Equal(steps, []int{50, 100}) || cartPlan {
		t.Fatalf("plans after: web steps %v, cart kept %v", steps, cartPlan)
	}
}

func fleets() model.Membership {
	return model.Membership{
		Blue:  model.Fleet{Endpoints: []model.Endpoint{{ID: "b1", Address: "10.0.0.1", Port: 8080, Weight: 1}}},
		Green: model.Fleet{Endpoints: []model.Endpoint{{ID: "g1", Address: "10.0.0.2", Port: 8080, Weight: 1}}},
	}
}

// A running switch counts its series with the queries it started with:
// a reload changing them is refused until it ends.
func TestLiveApplierRefusesNewQueriesMidSwitch(t *testing.T) {
	ctx := context.Background()
	quiet := slog.New(slog.DiscardHandler)
	old := applyConfig(t, applyYAML)
	store := memstate.New()
	now := time.Now()
	running := model.Traffic{Stable: model.Blue, Target: model.Green, GreenPercent: 20, Phase: model.PhaseSwitching, Generation: 2,
		Rollout: &model.Rollout{ID: "gen-2", From: model.Blue, To: model.Green, Phase: model.RolloutProgressing, StartedAt: now, StepSince: now,
			Plan: model.Plan{Steps: []int{20, 100}, Interval: model.Duration(time.Second), Confidence: 0.99, UnavailableBudget: model.Duration(time.Second),
				OnUnavailable: "rollback", InsufficientBudget: model.Duration(time.Second), OnInsufficient: "rollback", Rollback: "instant"}}}
	if _, err := store.Save(ctx, "web", running, 0, model.HistoryEntry{}); err != nil {
		t.Fatal(err)
	}
	if _, err := store.Save(ctx, "cart", model.InitialTraffic(), 0, model.HistoryEntry{}); err != nil {
		t.Fatal(err)
	}
	var services []model.Service
	for _, s := range old.Services {
		services = append(services, modelService(s))
	}
	ctrl := traffic.New(services, "0.0.0.0", store, xds.NewServer(quiet, nil), quiet, traffic.NewMetrics(nil))
	ctrl.UseElection()
	for _, s := range services {
		ctrl.OnMembership(membership.Update{Service: s.Name, Membership: fleets()})
	}
	if err := ctrl.LoadState(ctx); err != nil {
		t.Fatal(err)
	}
	w := &watches{}
	a := &liveApplier{ctx: ctx, ctrl: ctrl, log: quiet, prom: w, members: w, store: w, notes: newNotifiers(ctx, ctrl, "127.0.0.1:9090", quiet, nil),
		served: map[string]string{"web": "web", "cart": "cart"}}
	a.plans, a.templates = plansOf(old)

	newQuery := strings.Replace(applyYAML, "port: 10000\n", "port: 10000\n    analysis: {errors: 'sum(x{cluster=\"{{.Cluster}}\"})'}\n", 1)
	newQuery = strings.Replace(newQuery, "port: 10002\n", "port: 10002\n    analysis: {errors: 'sum(x{cluster=\"{{.Cluster}}\"})'}\n", 1)
	next := applyConfig(t, newQuery)
	ch, err := config.Diff(old, next)
	if err != nil {
		t.Fatal(err)
	}
	_, err = a.prepare(old, next, ch)
	var busy *switchRunningError
	if !errors.As(err, &busy) || !strings.Contains(err.Error(), "services[web].analysis") || strings.Contains(err.Error(), "cart") {
		t.Fatalf("prepare: %v; want refused for web only (cart is idle)", err)
	}
	if _, _, _, tmpl := w.state(); tmpl != nil {
		t.Fatalf("templates changed: %v", tmpl)
	}
	// Steps alone may change: the running switch keeps its own.
	steps := applyConfig(t, strings.Replace(applyYAML, "port: 10000\n", "port: 10000\n    analysis: {steps: [50, 100]}\n", 1))
	ch, err = config.Diff(old, steps)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.prepare(old, steps, ch); err != nil {
		t.Fatalf("a steps change mid-switch: %v", err)
	}

	// The reloader reports such a refusal as refused.
	path := filepath.Join(t.TempDir(), "bg.yaml")
	writeConfig(t, path, newQuery)
	r := newReloader(ConfigSource{Path: path, Load: func() (*config.Config, error) { return next, nil }}, old, a, quiet, newReloadMetrics(nil))
	if at := r.Reload(apiv1.TriggerAPI); at.Result != apiv1.ReloadRefused || !strings.Contains(at.Error, "while a switch runs on web") {
		t.Fatalf("reload: %+v", at)
	}
}

// After a reload, a service the reload removed leaves without touching the
// plans the controller reads: onRetired deleted from the applier's plans,
// which the commit had handed to the controller as the same map, while
// switches and releases read it (found with -race; the controller now gets
// its own copy).
func TestRetiringLeavesTheControllersPlansAlone(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	old := applyConfig(t, applyYAML)
	a, ctrl, _, _ := newServedApplier(t, ctx, old)
	startPlans, _ := plansOf(old) // as serve does: the controller's from analysis()
	ctrl.SetAnalysis(nil, startPlans)
	ctrl.SetOnRetired(a.onRetired)

	stop := make(chan struct{})
	read := make(chan struct{})
	go func() { // switches and releases ask for plans all the while
		defer close(read)
		for {
			select {
			case <-stop:
				return
			default:
				ctrl.Progressive("web")
				ctrl.Progressive("cart")
			}
		}
	}()
	next := applyConfig(t, strings.Replace(applyYAML, "  - name: cart\n    port: 10002\n", "", 1))
	ch, err := config.Diff(old, next)
	if err != nil || ch.String() != "removed cart" {
		t.Fatalf("diff: %s %v", ch, err)
	}
	commit, err := a.prepare(old, next, ch)
	if err != nil {
		t.Fatal(err)
	}
	commit()
	deadline := time.Now().Add(5 * time.Second)
	for {
		a.mu.Lock()
		_, served := a.served["cart"]
		a.mu.Unlock()
		if !served {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("cart did not retire")
		}
		time.Sleep(time.Millisecond)
	}
	close(stop)
	<-read
	a.mu.Lock()
	_, kept := a.plans["cart"]
	a.mu.Unlock()
	if kept {
		t.Fatal("the applier kept the retired service's plan")
	}
}
