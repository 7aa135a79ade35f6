package commands

import (
	"strings"
	"testing"
	"time"

	apiv1 "github.com/bgctl/bg/controlplane/api/v1"
	"github.com/bgctl/bg/controlplane/model"
)

// The progress line says which budget runs, how much of it is left and
// what happens then, and shows the evidence against its threshold.
func TestProgressLineShowsBudgetsAndEvidence(t *testing.T) {
	now := time.Now()
	r := &model.Rollout{ID: "gen-4", From: model.Blue, To: model.Green, Phase: model.RolloutProgressing, Step: 1,
		Plan: model.Plan{Steps: []int{10, 50, 100}, Confidence: 0.99, InsufficientBudget: model.Duration(5 * time.Minute),
			OnInsufficient: "rollback", UnavailableBudget: model.Duration(time.Minute), OnUnavailable: "hold",
			Latency: &model.LatencyPlan{Quantile: 0.99}},
		Reason:            "holding: candidate served 40 of the 200 requests needed at this step",
		InsufficientSince: now.Add(-2 * time.Minute),
		UnavailableSince:  now.Add(-2 * time.Minute),
		Evidence:          &model.Evidence{ErrorsE: 3.21, Latency: []byte("{}"), LatencyE: 0.75, CandidateQuantile: 0.12, BaselineQuantile: 0.02},
	}
	line := progressLine(apiv1.Status{Service: "web", Switch: r})
	for _, want := range []string{
		"[insufficient data budget: 3m0s of 5m0s left, then rollback]",
		"[metrics unavailable budget 1m0s spent: hold]",
		"errors e=3.21", "latency e=0.75", "p99 candidate 120ms baseline 20ms", "fails at 100",
	} {
		if !strings.Contains(line, want) {
			t.Errorf("progress line lacks %q:\n%s", want, line)
		}
	}
}
