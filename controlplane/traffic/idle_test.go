package traffic_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/bgctl/bg/controlplane/fleetmetrics"
	"github.com/bgctl/bg/controlplane/membership"
	"github.com/bgctl/bg/controlplane/model"
	"github.com/bgctl/bg/controlplane/state/memstate"
	"github.com/bgctl/bg/controlplane/traffic"
	"github.com/bgctl/bg/controlplane/xds"
)

// slowPlan is a valid plan whose analysis never runs within a test.
func slowPlan() model.Plan {
	hour := model.Duration(time.Hour)
	return model.Plan{Steps: []int{50, 100}, Bake: hour, Interval: hour, MinRequests: 10, Confidence: 0.99,
		UnavailableBudget: hour, OnUnavailable: model.OnUnavailableRollback,
		InsufficientBudget: hour, OnInsufficient: model.OnUnavailableRollback, Rollback: model.RollbackInstant}
}

// noMetrics is a metrics source that never has counts.
type noMetrics struct{}

func (noMetrics) Read(context.Context, fleetmetrics.Query) (fleetmetrics.Reading, error) {
	return fleetmetrics.Reading{}, fleetmetrics.ErrUnavailable
}

// A switch without a colour goes to the idle one: the control plane
// decides, so every client agrees.
func TestSwitchWithoutColourGoesToIdle(t *testing.T) {
	plan := slowPlan()
	c, _ := releaseController(t, webService, &plan)
	ctx := context.Background()

	rep, err := c.DryRun(ctx, traffic.Request{Service: "web"})
	if err != nil || rep.From != model.Blue || rep.To != model.Green || rep.Candidate.Color != model.Green || rep.Baseline.Color != model.Blue {
		t.Fatalf("dry run without a colour: %+v %v", rep, err)
	}
	res, err := c.Switch(ctx, traffic.Request{Service: "web", Instant: true, Timeout: time.Second})
	if err != nil || !res.Changed || res.Status.Weights.Green != 100 || res.Status.Target != model.Green {
		t.Fatalf("switch without a colour from blue: %+v %v", res.Status, err)
	}
	res, err = c.Switch(ctx, traffic.Request{Service: "web", Instant: true, Timeout: time.Second})
	if err != nil || !res.Changed || res.Status.Weights.Blue != 100 || res.Status.Stable != model.Green {
		t.Fatalf("switch without a colour from green: %+v %v", res.Status, err)
	}
	// Forced without --instant: still the idle colour, and at once.
	res, err = c.Switch(ctx, traffic.Request{Service: "web", Force: true, Reason: "INC-7", Timeout: time.Second})
	if err != nil || res.Status.Weights.Green != 100 || res.Status.Switch != nil {
		t.Fatalf("forced switch without a colour: %+v %v", res.Status, err)
	}
	// The reason check comes first, as with a colour.
	if _, err := c.Switch(ctx, traffic.Request{Service: "web", Force: true}); !errors.Is(err, traffic.ErrNeedsReason) {
		t.Fatalf("forced without a reason: %v", err)
	}
	if _, err := c.Switch(ctx, traffic.Request{Service: "nosuch"}); !errors.Is(err, traffic.ErrUnknownService) {
		t.Fatalf("unknown service: %v", err)
	}
}

// While traffic is split there is no idle colour: the switch is refused
// and nothing changes; naming the colour still works.
func TestSwitchWithoutColourRefusedWhenSplit(t *testing.T) {
	plan := slowPlan()
	store := memstate.New()
	if _, err := store.Save(context.Background(), "web", model.Traffic{Stable: model.Blue, Target: model.Green, GreenPercent: 30, Phase: model.PhaseSwitched, Generation: 5}, 0, model.HistoryEntry{}); err != nil {
		t.Fatal(err)
	}
	c := traffic.New([]model.Service{webService}, "0.0.0.0", store, xds.NewServer(quiet, nil), quiet, traffic.NewMetrics(nil))
	c.SetAnalysis(nil, map[string]model.Plan{"web": plan})
	ctx := context.Background()
	c.OnMembership(membership.Update{Service: "web", Membership: webMembership()})
	if err := c.LoadState(ctx); err != nil {
		t.Fatal(err)
	}
	if err := c.Publish(); err != nil {
		t.Fatal(err)
	}

	for _, req := range []traffic.Request{
		{Service: "web", Instant: true, Timeout: time.Second},
		{Service: "web", Force: true, Reason: "r", Timeout: time.Second},
		{Service: "web", Timeout: time.Second},
	} {
		if _, err := c.Switch(ctx, req); !errors.Is(err, traffic.ErrBadPlan) || !strings.Contains(err.Error(), "traffic is split; name the colour with --to") {
			t.Fatalf("switch %+v while split: %v", req, err)
		}
	}
	if _, err := c.DryRun(ctx, traffic.Request{Service: "web"}); !errors.Is(err, traffic.ErrBadPlan) {
		t.Fatalf("dry run while split: %v", err)
	}
	if st, _ := c.Status("web"); st.Generation != 5 || st.Weights.Green != 30 {
		t.Fatalf("a refused switch changed state: %+v", st)
	}
	res, err := c.Switch(ctx, traffic.Request{Service: "web", To: model.Green, Instant: true, Timeout: time.Second})
	if err != nil || res.Status.Weights.Green != 100 {
		t.Fatalf("switch naming the colour while split: %+v %v", res.Status, err)
	}
}

// While a switch runs, a switch without a colour is refused like any
// second switch: with the running switch's id.
func TestSwitchWithoutColourWhileSwitching(t *testing.T) {
	plan := slowPlan()
	c, _ := releaseController(t, webService, &plan)
	c.SetAnalysis(noMetrics{}, map[string]model.Plan{"web": plan})
	ctx := context.Background()
	res, err := c.Switch(ctx, traffic.Request{Service: "web", Timeout: time.Second})
	if err != nil || res.Status.Switch == nil || res.Status.Switch.To != model.Green || !res.Status.Switch.Phase.Running() {
		t.Fatalf("progressive switch without a colour: %+v %v", res.Status, err)
	}
	id := res.Status.Switch.ID
	for _, req := range []traffic.Request{{Service: "web"}, {Service: "web", Instant: true}} {
		if _, err := c.Switch(ctx, req); !errors.Is(err, traffic.ErrBusy) || !strings.Contains(err.Error(), id) {
			t.Fatalf("switch %+v while %s runs: %v", req, id, err)
		}
	}
	if _, err := c.Abort(ctx, traffic.Request{Service: "web", Timeout: time.Second}); err != nil {
		t.Fatal(err)
	}
}
