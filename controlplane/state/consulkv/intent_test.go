package consulkv

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/bgctl/bg/controlplane/model"
	"github.com/bgctl/bg/controlplane/state"
	"github.com/bgctl/bg/e2e/harness"
)

// A standing rollback intent keeps any writer from storing the switch
// going forward, in the same transaction as the write; a state that ends
// it removes it; the watch reports it.
func TestIntentAgainstConsul(t *testing.T) {
	consul := harness.StartConsul(t)
	s := New(consul.Client(), "intenttest/")
	ctx := context.Background()
	plan := model.Plan{Steps: []int{50, 100}, Bake: 0, Interval: model.Duration(time.Second),
		MinRequests: 1, Confidence: 0.99, UnavailableBudget: model.Duration(time.Second), OnUnavailable: model.OnUnavailableRollback,
		InsufficientBudget: model.Duration(time.Second), OnInsufficient: model.OnUnavailableRollback, Rollback: model.RollbackInstant}
	running := model.Traffic{Stable: model.Blue, Target: model.Green, GreenPercent: 50, Phase: model.PhaseSwitching, Generation: 2,
		Rollout: &model.Rollout{ID: "gen-2", From: model.Blue, To: model.Green, Plan: plan, Phase: model.RolloutProgressing, Verdicts: []model.StepVerdict{}}}
	idx, err := s.Save(ctx, "web", running, 0, model.HistoryEntry{})
	if err != nil {
		t.Fatal(err)
	}

	intents := make(chan model.Intent, 4)
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go s.Watch(wctx, slog.New(slog.NewTextHandler(io.Discard, nil)), func(string, model.Traffic, state.Index, bool) {},
		func(_ string, in model.Intent, found bool) {
			if found {
				intents <- in
			}
		})

	in := model.Intent{ID: "gen-2", Cause: model.CauseAnalysisFailed, Reason: "analysis failed: 20% vs 1%", By: "r2", At: time.Now().UTC()}
	if err := s.SaveIntent(ctx, "web", in); err != nil {
		t.Fatal(err)
	}
	select {
	case got := <-intents:
		if got.ID != "gen-2" || got.Cause != model.CauseAnalysisFailed || got.By != "r2" {
			t.Fatalf("watch reported %+v", got)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the watch never reported the intent")
	}
	if got, found, err := s.LoadIntent(ctx, "web"); err != nil || !found || got.ID != "gen-2" {
		t.Fatalf("LoadIntent = %+v %v %v", got, found, err)
	}

	// Forward: refused while the intent stands.
	next := running
	r := *running.Rollout
	r.Step = 1
	next.Rollout, next.GreenPercent, next.Generation = &r, 100, 3
	if _, err := s.Save(ctx, "web", next, idx, model.HistoryEntry{}); !errors.Is(err, state.ErrIntent) {
		t.Fatalf("forward write with an intent standing: %v, want ErrIntent", err)
	}
	// Ending forward too: storing the promotion would delete the intent
	// and undo the rollback it stands for (sim seed 7985: an intent
	// written 5 ms before the leader stored the switch's end).
	done := next
	rd := *next.Rollout
	rd.Phase = model.RolloutPromoted
	done.Rollout, done.Phase = &rd, model.PhaseSwitched
	if _, err := s.Save(ctx, "web", done, idx, model.HistoryEntry{}); !errors.Is(err, state.ErrIntent) {
		t.Fatalf("promotion with an intent standing: %v, want ErrIntent", err)
	}
	// The rollback: stored, and the intent goes in the same write.
	back := running
	rb := *running.Rollout
	rb.Phase, rb.Cause = model.RolloutRolledBack, model.CauseAnalysisFailed
	back.Rollout, back.GreenPercent, back.Phase, back.Generation = &rb, 0, model.PhaseRolledBack, 3
	if _, err := s.Save(ctx, "web", back, idx, model.HistoryEntry{}); err != nil {
		t.Fatal(err)
	}
	if _, found, err := s.LoadIntent(ctx, "web"); err != nil || found {
		t.Fatalf("intent after the rollback was stored: found %v, %v", found, err)
	}
	// Bad input is refused and changes nothing.
	if err := s.SaveIntent(ctx, "web", model.Intent{ID: "gen-9"}); err == nil {
		t.Fatal("an intent without a cause was written")
	}
}
