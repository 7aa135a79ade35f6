package traffic_test

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/bgctl/bg/controlplane/membership"
	"github.com/bgctl/bg/controlplane/model"
	"github.com/bgctl/bg/controlplane/state/memstate"
	"github.com/bgctl/bg/controlplane/traffic"
	"github.com/bgctl/bg/controlplane/translator"
	"github.com/bgctl/bg/controlplane/xds"
)

// removals is the real xDS server, recording which services left it.
type removals struct {
	*xds.Server
	mu      sync.Mutex
	removed []string // route names removed
	updated []string // routes added or replaced by UpdateService
}

func (r *removals) RemoveService(res translator.Resources) error {
	r.mu.Lock()
	for name := range res.Routes {
		r.removed = append(r.removed, name)
	}
	r.mu.Unlock()
	return r.Server.RemoveService(res)
}

func (r *removals) UpdateService(res translator.Resources) error {
	r.mu.Lock()
	for name := range res.Routes {
		r.updated = append(r.updated, name)
	}
	r.mu.Unlock()
	return r.Server.UpdateService(res)
}

func (r *removals) got() (removed, updated []string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.removed), slices.Clone(r.updated)
}

var cartService = model.Service{Name: "cart", ListenerPort: 10002, Protocol: model.ProtocolHTTP2}

func fleets() model.Membership {
	return model.Membership{
		Blue:  model.Fleet{Endpoints: []model.Endpoint{{ID: "b1", Address: "10.0.0.1", Port: 8080, Weight: 1}}},
		Green: model.Fleet{Endpoints: []model.Endpoint{{ID: "g1", Address: "10.0.0.2", Port: 8080, Weight: 1}}},
	}
}

// switching is a progressive switch to green at its first step (20 %).
func switching(gen uint64) model.Traffic {
	now := time.Now()
	return model.Traffic{Stable: model.Blue, Target: model.Green, GreenPercent: 20, Phase: model.PhaseSwitching, Generation: gen,
		Rollout: &model.Rollout{ID: "gen-2", From: model.Blue, To: model.Green, Phase: model.RolloutProgressing, StartedAt: now, StepSince: now,
			Plan: model.Plan{Steps: []int{20, 50, 100}, Bake: model.Duration(time.Second), Interval: model.Duration(time.Second), MinRequests: 10,
				Confidence: 0.99, Margin: 0.1, UnavailableBudget: model.Duration(4 * time.Second), OnUnavailable: "rollback",
				InsufficientBudget: model.Duration(time.Minute), OnInsufficient: "rollback", Rollback: "instant"}}}
}

// promoted is that switch's end.
func promoted(gen uint64) model.Traffic {
	t := switching(gen)
	r := *t.Rollout
	r.Phase, r.Step, r.EndedAt = model.RolloutPromoted, 2, time.Now()
	t.Rollout, t.GreenPercent, t.Phase = &r, 100, model.PhaseSwitched
	return t
}

// follower is a published controller that does not lead: its state
// changes come from the store, as the leader's writes.
func follower(t *testing.T, store *memstate.Store, services ...model.Service) (*traffic.Controller, *removals) {
	t.Helper()
	push := &removals{Server: xds.NewServer(quiet, nil)}
	c := traffic.New(services, "0.0.0.0", store, push, quiet, traffic.NewMetrics(nil))
	c.UseElection()
	for _, s := range services {
		c.OnMembership(membership.Update{Service: s.Name, Membership: fleets()})
	}
	if err := c.LoadState(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := c.Publish(); err != nil {
		t.Fatal(err)
	}
	return c, push
}

func eventually(t *testing.T, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not reached", what)
		}
		time.Sleep(time.Millisecond)
	}
}

// A service a reload removed is served as it is while its switch runs,
// refuses a new one, and leaves xDS (and the model) once the switch ends.
func TestRetireWaitsForTheSwitch(t *testing.T) {
	ctx := context.Background()
	store := memstate.New()
	if _, err := store.Save(ctx, "web", model.InitialTraffic(), 0, model.HistoryEntry{}); err != nil {
		t.Fatal(err)
	}
	idx, err := store.Save(ctx, "cart", switching(2), 0, model.HistoryEntry{})
	if err != nil {
		t.Fatal(err)
	}
	c, push := follower(t, store, webService, cartService)
	var retired []string
	var mu sync.Mutex
	c.SetOnRetired(func(s string) { mu.Lock(); retired = append(retired, s); mu.Unlock() })

	c.RetireService("cart")
	st, err := c.Status("cart")
	if err != nil || st.ConfigNote != traffic.RetiringNote || st.Weights.Green != 20 {
		t.Fatalf("retiring cart: %+v %v", st, err)
	}
	if _, err := c.Switch(ctx, traffic.Request{Service: "cart", To: model.Blue, Instant: true}); !errors.Is(err, traffic.ErrRemoved) {
		t.Fatalf("a new switch of a removed service: %v", err)
	}
	// A step of the switch: still served.
	st2 := switching(3)
	st2.GreenPercent, st2.Rollout.Step = 50, 1
	if idx, err = store.Save(ctx, "cart", st2, idx, model.HistoryEntry{}); err != nil {
		t.Fatal(err)
	}
	c.OnStored("cart", st2, idx, true)
	eventually(t, "cart at 50%", func() bool { s, err := c.Status("cart"); return err == nil && s.Weights.Green == 50 })
	if removed, _ := push.got(); len(removed) != 0 || !c.Configured("cart") {
		t.Fatalf("cart left while its switch ran: %v", removed)
	}
	// The switch ends: cart leaves.
	end := promoted(4)
	if idx, err = store.Save(ctx, "cart", end, idx, model.HistoryEntry{}); err != nil {
		t.Fatal(err)
	}
	c.OnStored("cart", end, idx, true)
	eventually(t, "cart gone", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return !c.Configured("cart") && len(retired) > 0 // told after it left xDS
	})
	if _, err := c.Status("cart"); !errors.Is(err, traffic.ErrUnknownService) {
		t.Fatalf("status of a retired service: %v", err)
	}
	removed, _ := push.got()
	mu.Lock()
	defer mu.Unlock()
	if !slices.Equal(removed, []string{"cart"}) || !slices.Equal(retired, []string{"cart"}) {
		t.Fatalf("removed from xDS %v, told %v; want cart once", removed, retired)
	}
	if got := c.StatusAll(); len(got) != 1 || got[0].Service != "web" {
		t.Fatalf("StatusAll after retiring: %+v", got)
	}
	if _, _, found, _ := store.Load(ctx, "cart"); !found {
		t.Fatal("retiring deleted the stored state")
	}
}

// An idle removed service leaves at once.
func TestRetireIdle(t *testing.T) {
	c, push := follower(t, memstateWith(t, "web", "cart"), webService, cartService)
	c.RetireService("cart")
	eventually(t, "cart gone", func() bool { removed, _ := push.got(); return !c.Configured("cart") && len(removed) > 0 })
	if removed, _ := push.got(); !slices.Equal(removed, []string{"cart"}) {
		t.Fatalf("removed %v", removed)
	}
	if _, err := c.Status("web"); err != nil {
		t.Fatal(err)
	}
}

func memstateWith(t *testing.T, services ...string) *memstate.Store {
	t.Helper()
	store := memstate.New()
	for _, s := range services {
		if _, err := store.Save(context.Background(), s, model.InitialTraffic(), 0, model.HistoryEntry{}); err != nil {
			t.Fatal(err)
		}
	}
	return store
}

// A service a reload added is served once its state is loaded and its
// fleets read; until then commands about it answer not ready. The leader
// creates its state as at a first start.
func TestAddServiceLeader(t *testing.T) {
	ctx := context.Background()
	store := memstateWith(t, "web")
	push := &removals{Server: xds.NewServer(quiet, nil)}
	c := traffic.New([]model.Service{webService}, "0.0.0.0", store, push, quiet, traffic.NewMetrics(nil))
	c.OnMembership(membership.Update{Service: "web", Membership: fleets()})
	if err := c.LoadState(ctx); err != nil {
		t.Fatal(err)
	}
	if err := c.Publish(); err != nil {
		t.Fatal(err)
	}
	if !c.AddService(cartService) {
		t.Fatal("cart not added")
	}
	if c.AddService(cartService) {
		t.Fatal("cart added twice")
	}
	if st, err := c.Status("cart"); err != nil || st.ConfigNote != traffic.AddedNote {
		t.Fatalf("status of an added service: %+v %v", st, err)
	}
	if _, err := c.Switch(ctx, traffic.Request{Service: "cart", To: model.Green, Instant: true}); !errors.Is(err, traffic.ErrNotReady) {
		t.Fatalf("switch of an unpublished service: %v", err)
	}
	if err := c.PublishService(ctx, "cart"); !errors.Is(err, traffic.ErrStateMissing) {
		t.Fatalf("publish before the fleets are read: %v", err)
	}
	if _, updated := push.got(); len(updated) != 0 {
		t.Fatalf("pushed before it was ready: %v", updated)
	}
	c.OnMembership(membership.Update{Service: "cart", Membership: fleets()})
	if err := c.PublishService(ctx, "cart"); err != nil {
		t.Fatal(err)
	}
	if _, updated := push.got(); !slices.Equal(updated, []string{"cart"}) {
		t.Fatalf("pushed %v, want cart", updated)
	}
	if tr, _, found, _ := store.Load(ctx, "cart"); !found || tr.Stable != model.Blue || tr.GreenPercent != 0 {
		t.Fatalf("cart's state: %+v found %v", tr, found)
	}
	if _, err := c.Switch(ctx, traffic.Request{Service: "cart", To: model.Green, Instant: true, Timeout: time.Millisecond}); err != nil {
		t.Fatalf("switch of the added service: %v", err)
	}
	if st, _ := c.Status("cart"); st.ConfigNote != "" {
		t.Fatalf("note once served: %q", st.ConfigNote)
	}
	if names := statusNames(c); !slices.Equal(names, []string{"cart", "web"}) {
		t.Fatalf("StatusAll: %v", names)
	}
}

// A follower waits for the leader to create an added service's state.
func TestAddServiceFollower(t *testing.T) {
	ctx := context.Background()
	store := memstateWith(t, "web")
	c, _ := follower(t, store, webService)
	c.AddService(cartService)
	c.OnMembership(membership.Update{Service: "cart", Membership: fleets()})
	if err := c.PublishService(ctx, "cart"); !errors.Is(err, traffic.ErrStateMissing) {
		t.Fatalf("a follower created state or published without it: %v", err)
	}
	if _, _, found, _ := store.Load(ctx, "cart"); found {
		t.Fatal("a follower wrote state")
	}
	green := model.Traffic{Stable: model.Green, GreenPercent: 100, Phase: model.PhaseStable, Generation: 7}
	if _, err := store.Save(ctx, "cart", green, 0, model.HistoryEntry{}); err != nil {
		t.Fatal(err)
	}
	if err := c.PublishService(ctx, "cart"); err != nil {
		t.Fatal(err)
	}
	if st, err := c.Status("cart"); err != nil || st.Weights.Green != 100 || st.Generation != 7 {
		t.Fatalf("cart serves %+v %v, want the stored state", st, err)
	}
}

// New pools of a service whose switch runs wait for it to end: a reload
// moves no traffic.
func TestUpdateServiceWaitsForTheSwitch(t *testing.T) {
	ctx := context.Background()
	store := memstateWith(t, "web")
	idx, err := store.Save(ctx, "cart", switching(2), 0, model.HistoryEntry{})
	if err != nil {
		t.Fatal(err)
	}
	c, push := follower(t, store, webService, cartService)
	withPools := cartService
	withPools.Pools = []model.Pool{{Header: "x-staff", Value: "1"}}
	c.UpdateService(withPools)
	eventually(t, "pending", func() bool { st, _ := c.Status("cart"); return st.ConfigNote == traffic.PendingNote })
	if st, _ := c.Status("cart"); len(st.Pools) != 0 {
		t.Fatalf("pools applied mid-switch: %v", st.Pools)
	}
	if _, updated := push.got(); len(updated) != 0 {
		t.Fatalf("pushed mid-switch: %v", updated)
	}
	end := promoted(3)
	if idx, err = store.Save(ctx, "cart", end, idx, model.HistoryEntry{}); err != nil {
		t.Fatal(err)
	}
	c.OnStored("cart", end, idx, true)
	eventually(t, "pools applied", func() bool {
		st, _ := c.Status("cart")
		_, updated := push.got()
		return len(st.Pools) == 1 && st.ConfigNote == "" && len(updated) > 0
	})
	if _, updated := push.got(); !slices.Equal(updated, []string{"cart"}) {
		t.Fatalf("pushed %v after the switch", updated)
	}
	// The same settings again change nothing.
	c.UpdateService(withPools)
	time.Sleep(20 * time.Millisecond)
	if st, _ := c.Status("cart"); st.ConfigNote != "" {
		t.Fatalf("note %q", st.ConfigNote)
	}
}

func statusNames(c *traffic.Controller) []string {
	var out []string
	for _, st := range c.StatusAll() {
		out = append(out, st.Service)
	}
	return out
}
