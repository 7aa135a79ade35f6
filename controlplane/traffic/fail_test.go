package traffic_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/bgctl/bg/controlplane/model"
	"github.com/bgctl/bg/controlplane/traffic"
)

// A verdict reached outside the switch's own analysis (a release's
// consumer test) rolls back exactly that switch with its cause, stored
// and recorded; it never fails a switch that is not running, or another.
func TestFailSwitch(t *testing.T) {
	ctx := context.Background()
	plan := slowPlan()
	c, store := releaseController(t, webService, &plan)
	c.SetAnalysis(noMetrics{}, map[string]model.Plan{"web": plan})

	if _, err := c.FailSwitch(ctx, "web", "gen-2", model.CauseConsumerRegressed, "api failing", time.Second); !errors.Is(err, traffic.ErrNotRunning) {
		t.Fatalf("no switch running: %v, want ErrNotRunning", err)
	}
	if _, err := c.Switch(ctx, traffic.Request{Service: "web", To: model.Green, Release: "checkout-1", Timeout: time.Second}); err != nil {
		t.Fatal(err)
	}
	tr, _ := c.TrafficState("web")
	id := tr.SwitchID
	if _, err := c.FailSwitch(ctx, "web", "gen-9", model.CauseConsumerRegressed, "api failing", time.Second); !errors.Is(err, traffic.ErrNotRunning) {
		t.Fatalf("another switch's verdict: %v, want ErrNotRunning", err)
	}
	if _, err := c.FailSwitch(ctx, "web", id, "bogus", "x", time.Second); err == nil {
		t.Fatal("an unknown cause was accepted")
	}
	if _, err := c.FailSwitch(ctx, "web", id, model.CauseConsumerRegressed, "consumer api: error ratio 5% since the switch began", time.Second); err != nil {
		t.Fatal(err)
	}
	tr, _ = c.TrafficState("web")
	r := tr.Rollout
	if r == nil || r.ID != id || (r.Phase != model.RolloutRolledBack && r.Phase != model.RolloutRollingBack) || r.Cause != model.CauseConsumerRegressed || tr.Release != "checkout-1" {
		t.Fatalf("after the verdict: %+v (release %q)", r, tr.Release)
	}
	last := store.Last()
	if last.Generation != tr.Generation || last.Reason == "" {
		t.Fatalf("history: %+v", last)
	}
	t.Logf("stored: %s %s: %s", r.Phase, r.Cause, last.Reason)
	if _, err := c.FailSwitch(ctx, "web", id, model.CauseConsumerRegressed, "again", time.Second); !errors.Is(err, traffic.ErrNotRunning) && err != nil {
		t.Fatalf("a second verdict: %v", err)
	}
}
