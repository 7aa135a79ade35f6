package traffic_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/bgctl/bg/controlplane/membership"
	"github.com/bgctl/bg/controlplane/model"
	"github.com/bgctl/bg/controlplane/state/memstate"
	"github.com/bgctl/bg/controlplane/traffic"
	"github.com/bgctl/bg/controlplane/xds"
)

// Every switch start names the switch (SwitchID) and the release that
// started it, whatever its kind; history says so.
func TestSwitchesAreTagged(t *testing.T) {
	ctx := context.Background()
	plan := slowPlan()
	c, store := releaseController(t, webService, &plan)
	c.SetAnalysis(noMetrics{}, map[string]model.Plan{"web": plan})

	res, err := c.Switch(ctx, traffic.Request{Service: "web", To: model.Green, Instant: true, Release: "", Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	tr, _ := c.TrafficState("web")
	if tr.SwitchID != "gen-2" || tr.Release != "" || res.Status.SwitchID != "gen-2" || res.Status.Release != "" {
		t.Fatalf("instant switch alone: state %q/%q, status %q/%q", tr.SwitchID, tr.Release, res.Status.SwitchID, res.Status.Release)
	}
	res, err = c.Switch(ctx, traffic.Request{Service: "web", To: model.Blue, Release: "checkout-1", Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	tr, _ = c.TrafficState("web")
	if tr.Rollout == nil || tr.SwitchID != tr.Rollout.ID || tr.SwitchID != "gen-3" || tr.Release != "checkout-1" || res.Status.Release != "checkout-1" {
		t.Fatalf("progressive switch of a release: %q/%q (rollout %+v)", tr.SwitchID, tr.Release, tr.Rollout)
	}
	var started model.HistoryEntry
	for _, e := range store.Entries() {
		if e.Generation == 3 {
			started = e
		}
	}
	if !strings.Contains(started.Detail, "switch gen-3 of release checkout-1") {
		t.Fatalf("history detail %q does not name the release", started.Detail)
	}
	// An abort ends that switch; it stays the latest, still tagged.
	if _, err := c.Abort(ctx, traffic.Request{Service: "web", Timeout: time.Second}); err != nil {
		t.Fatal(err)
	}
	if tr, _ = c.TrafficState("web"); tr.SwitchID != "gen-3" || tr.Release != "checkout-1" || tr.Rollout.Phase != model.RolloutAborted {
		t.Fatalf("after the abort: %q/%q %s", tr.SwitchID, tr.Release, tr.Rollout.Phase)
	}
	// A later instant switch replaces the tag.
	if _, err := c.Switch(ctx, traffic.Request{Service: "web", To: model.Blue, Instant: true, Timeout: time.Second}); err != nil {
		t.Fatal(err)
	}
	if tr, _ = c.TrafficState("web"); tr.SwitchID != model.InstantSwitchID(tr.Generation) || tr.Release != "" || tr.Rollout != nil {
		t.Fatalf("instant after a progressive: %+v", tr)
	}
}

func TestRollIsTagged(t *testing.T) {
	svc := model.Service{Name: "kv", ListenerPort: 10010, Protocol: model.ProtocolHTTP2, Strategy: model.StrategyRolling, Affinity: model.Affinity{Header: "x-session"}}
	c := traffic.New([]model.Service{svc}, "0.0.0.0", memstate.New(), xds.NewServer(quiet, nil), quiet, traffic.NewMetrics(nil))
	c.SetRolling(map[string]model.RollParams{"kv": {MaxUnavailable: 1, MinAvailable: 1, ReplaceTimeout: model.Duration(time.Minute), Interval: model.Duration(time.Hour)}})
	ctx := context.Background()
	c.OnMembership(membership.Update{Service: "kv", Membership: model.Membership{
		Blue:  model.Fleet{Endpoints: []model.Endpoint{{ID: "b1", Address: "10.0.0.1", Port: 8080, Weight: 1, Slot: "s1"}}},
		Green: model.Fleet{Endpoints: []model.Endpoint{{ID: "g1", Address: "10.0.1.1", Port: 8080, Weight: 1, Slot: "s1"}}},
	}})
	if err := c.LoadState(ctx); err != nil {
		t.Fatal(err)
	}
	if err := c.Publish(); err != nil {
		t.Fatal(err)
	}
	if !c.Progressive("kv") {
		t.Fatal("a stateful service is not switched instantly by a release")
	}
	if _, err := c.Switch(ctx, traffic.Request{Service: "kv", To: model.Green, Release: "r-1", Timeout: time.Second}); err != nil {
		t.Fatal(err)
	}
	tr, _ := c.TrafficState("kv")
	if tr.Roll == nil || tr.SwitchID != tr.Roll.ID || tr.Release != "r-1" {
		t.Fatalf("roll of a release: %q/%q roll %+v", tr.SwitchID, tr.Release, tr.Roll)
	}
}

// A service a release owns refuses every command that does not carry
// that release's tag, naming the release; the release's own commands pass.
func TestReleaseOwnsItsMembers(t *testing.T) {
	ctx := context.Background()
	plan := slowPlan()
	c, _ := releaseController(t, webService, &plan)
	if c.Progressive("web") {
		t.Fatal("progressive without a metrics source")
	}
	c.SetAnalysis(noMetrics{}, map[string]model.Plan{"web": plan})
	if !c.Progressive("web") {
		t.Fatal("not progressive with a plan and a source")
	}
	owner, guardErr := "checkout-3", error(nil)
	c.SetReleaseGuard(func(service string) (string, error) {
		if service != "web" {
			return "", nil
		}
		return owner, guardErr
	})
	req := traffic.Request{Service: "web", To: model.Green, Timeout: time.Second}
	ops := map[string]func(context.Context, traffic.Request) (traffic.Result, error){
		"switch": c.Switch, "abort": c.Abort, "pause": c.Pause, "resume": c.Resume, "promote": c.Promote,
	}
	for name, op := range ops {
		for _, tag := range []string{"", "other-1"} {
			r := req
			r.Release = tag
			_, err := op(ctx, r)
			if !errors.Is(err, traffic.ErrInRelease) || !strings.Contains(err.Error(), "release checkout-3") {
				t.Errorf("%s tagged %q on a member of checkout-3: %v", name, tag, err)
			}
		}
	}
	// Forced commands too: the release decides.
	if _, err := c.Switch(ctx, traffic.Request{Service: "web", Force: true, Reason: "INC-1"}); !errors.Is(err, traffic.ErrInRelease) {
		t.Fatalf("forced switch of a member: %v", err)
	}
	if st, _ := c.Status("web"); st.Generation != 1 {
		t.Fatalf("a refused command changed the state: %+v", st)
	}

	// The release's own switch and abort pass.
	r := req
	r.Release = "checkout-3"
	if _, err := c.Switch(ctx, r); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Abort(ctx, traffic.Request{Service: "web", Release: "checkout-3", Timeout: time.Second}); err != nil {
		t.Fatal(err)
	}
	// A guard that cannot tell yet refuses everything.
	guardErr = traffic.ErrNotReady
	if _, err := c.Switch(ctx, req); !errors.Is(err, traffic.ErrNotReady) {
		t.Fatalf("switch while the releases are not loaded: %v", err)
	}
	// Released: a tagged request from a release that no longer owns the
	// service is refused (a deposed leader's release acts on nothing);
	// untagged ones pass.
	owner, guardErr = "", nil
	if _, err := c.Switch(ctx, r); !errors.Is(err, traffic.ErrInRelease) || !strings.Contains(err.Error(), "no longer a member") {
		t.Fatalf("switch tagged by a release that no longer owns it: %v", err)
	}
	if _, err := c.Switch(ctx, traffic.Request{Service: "web", To: model.Green, Instant: true, Timeout: time.Second}); err != nil {
		t.Fatal(err)
	}
	// Unknown services are still unknown first.
	if _, err := c.Abort(ctx, traffic.Request{Service: "nosuch"}); !errors.Is(err, traffic.ErrUnknownService) {
		t.Fatalf("abort of an unknown service: %v", err)
	}
}
