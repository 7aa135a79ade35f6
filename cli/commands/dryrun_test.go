package commands_test

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/bgctl/bg/cli/commands"
	"github.com/bgctl/bg/controlplane/judge"
	"github.com/bgctl/bg/controlplane/model"
	"github.com/bgctl/bg/controlplane/traffic"
)

func dryRunReport(latency *model.LatencyPlan) *traffic.DryRunReport {
	return &traffic.DryRunReport{
		Service: "web", From: model.Blue, To: model.Green,
		Plan: model.Plan{
			Steps: []int{1, 5, 25, 50, 100}, Bake: model.Duration(time.Minute), Interval: model.Duration(10 * time.Second),
			MinRequests: 200, Confidence: 0.99, Margin: 0.1,
			UnavailableBudget: model.Duration(time.Minute), OnUnavailable: model.OnUnavailableRollback,
			InsufficientBudget: model.Duration(5 * time.Minute), OnInsufficient: model.OnUnavailableHold,
			Rollback: model.RollbackInstant, Latency: latency,
		},
		Candidate: traffic.FleetSample{Color: model.Green, Sample: &judge.Sample{Requests: 1234, Errors: 5}, Series: 2},
		Baseline:  traffic.FleetSample{Color: model.Blue, Error: "metrics unavailable: query timed out"},
	}
}

// The dry run prints the plan as the switch will judge it: no window, the
// whole-switch guarantee, both budgets, the latency judge when on, and each
// fleet's counters as read now.
func TestDryRunOutput(t *testing.T) {
	c := newFake()
	c.dryRun = dryRunReport(&model.LatencyPlan{Quantile: 0.99, Relative: 0.2, Absolute: model.Duration(50 * time.Millisecond), Unit: model.Duration(time.Millisecond)})
	addr := server(t, c, "")
	code, out, errOut := run(t, "--addr", addr, "switch", "web", "--to", "green", "--dry-run", "--bake", "30s", "--interval", "5s")
	expect(t, code, out, errOut, commands.ExitOK)
	for _, want := range []string{
		"switch web from blue to green\n",
		"  steps [1 5 25 50 100], bake 1m0s, interval 10s\n",
		"at 0.990 over the whole switch", "baseline's ×1.10", "at least 200 requests per fleet at each step",
		"  latency: fail when the candidate's p99 is worse than the baseline's by more than 20% and 50ms\n",
		"  metrics unavailable for 1m0s → rollback; insufficient data for 5m0s → hold; rollback instant\n",
		"  green 1234 requests, 5 errors counted so far (2 series)",
		"  blue  query failed: metrics unavailable: query timed out\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("dry run lacks %q:\n%s", want, out)
		}
	}
	for _, gone := range []string{"window", "verdict now"} {
		if strings.Contains(out, gone) {
			t.Errorf("dry run mentions %q:\n%s", gone, out)
		}
	}
	// The plan flags that remain reach the controller; nothing is switched.
	ops, reqs := c.requests()
	if len(ops) != 1 || ops[0] != "dry-run" {
		t.Fatalf("controller got %v", ops)
	}
	if p := reqs[0].Plan; p.Bake == nil || *p.Bake != 30*time.Second || p.Interval == nil || *p.Interval != 5*time.Second {
		t.Errorf("plan overrides %+v, want bake 30s and interval 5s", p)
	}
}

func TestDryRunOutputWithoutLatency(t *testing.T) {
	c := newFake()
	c.dryRun = dryRunReport(nil)
	addr := server(t, c, "")
	code, out, errOut := run(t, "--addr", addr, "switch", "web", "--to", "green", "--dry-run")
	expect(t, code, out, errOut, commands.ExitOK)
	if strings.Contains(out, "latency") {
		t.Errorf("latency line without a latency plan:\n%s", out)
	}
}

// -o json carries the new plan keys and no window.
func TestDryRunJSON(t *testing.T) {
	c := newFake()
	c.dryRun = dryRunReport(&model.LatencyPlan{Quantile: 0.95, Relative: 0.5, Absolute: 0, Unit: model.Duration(time.Second)})
	addr := server(t, c, "")
	code, out, errOut := run(t, "--addr", addr, "switch", "web", "--to", "green", "--dry-run", "-o", "json")
	expect(t, code, out, errOut, commands.ExitOK)
	var rep traffic.DryRunReport
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("%v:\n%s", err, out)
	}
	if rep.Plan.InsufficientBudget.D() != 5*time.Minute || rep.Plan.OnInsufficient != model.OnUnavailableHold ||
		rep.Plan.Latency == nil || *rep.Plan.Latency != *c.dryRun.Plan.Latency || rep.Candidate.Series != 2 {
		t.Errorf("json report %+v", rep)
	}
	if strings.Contains(out, `"window"`) {
		t.Errorf("json mentions window:\n%s", out)
	}
}
