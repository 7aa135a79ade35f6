package consulkv

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/bgctl/bg/controlplane/model"
	"github.com/bgctl/bg/controlplane/state"
	"github.com/bgctl/bg/e2e/harness"
)

// A first start creates absent states in fenced transactions of up to 64
// operations: every state and its first history entry, as Save would; a
// batch where one state already exists is left out whole and nothing of
// it is written; a replica that lost the lock writes nothing.
func TestCreateAbsentAgainstConsul(t *testing.T) {
	consul := harness.StartConsul(t)
	c := consul.Client()
	s := New(c, "createtest/")
	ctx := context.Background()

	lock := "createtest/leader"
	mine, theirs := holdLock(t, c, lock)

	absent := make([]state.Absent, 50) // batches of 21: 0–20, 21–41, 42–49
	for i := range absent {
		tr := model.InitialTraffic()
		tr.Reason = "initial state: blue"
		absent[i] = state.Absent{Service: fmt.Sprintf("svc-%02d", i), Traffic: tr,
			Entry: model.HistoryEntry{At: t0, Actor: "bg", Reason: tr.Reason, Phase: tr.Phase, Stable: tr.Stable}}
	}
	// A stale intent of svc-00 goes with the create, as Save removes it.
	if err := s.SaveIntent(ctx, "svc-00", model.Intent{ID: "gen-9", Cause: model.CauseAnalysisFailed, Reason: "x", By: "r2", At: t0}); err != nil {
		t.Fatal(err)
	}
	// svc-30 appeared meanwhile: its batch (21–41) is left out whole.
	other := model.InitialTraffic()
	other.Stable, other.GreenPercent = model.Green, 100
	if _, err := s.Save(ctx, "svc-30", other, 0, model.HistoryEntry{}); err != nil {
		t.Fatal(err)
	}

	// Fenced off: nothing is written.
	s.SetFence(func() (Fence, bool) { return Fence{}, false })
	if got, err := s.CreateAbsent(ctx, absent); !errors.Is(err, state.ErrNotLeader) || len(got) != 0 {
		t.Fatalf("without the lock: %d created, %v; want none, ErrNotLeader", len(got), err)
	}
	s.SetFence(func() (Fence, bool) { return Fence{Key: lock, Session: theirs, Term: 4, Replica: "r2"}, true })
	if got, err := s.CreateAbsent(ctx, absent); !errors.Is(err, state.ErrNotLeader) || len(got) != 0 {
		t.Fatalf("with a lost lock: %d created, %v; want none, ErrNotLeader", len(got), err)
	}
	if pairs, _, err := c.KV().List("createtest/history/", nil); err != nil || len(pairs) != 1 {
		t.Fatalf("a fenced-off create wrote history: %d keys, %v", len(pairs), err)
	}

	s.SetFence(func() (Fence, bool) { return Fence{Key: lock, Session: mine, Term: 3, Replica: "r1"}, true })
	created, err := s.CreateAbsent(ctx, absent)
	if err != nil {
		t.Fatal(err)
	}
	if len(created) != 29 {
		t.Fatalf("created %d states; want 29 (every batch but the one holding svc-30)", len(created))
	}
	snap, err := s.LoadAll(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for i, a := range absent {
		st, stored := snap.Traffic[a.Service]
		got, reported := created[a.Service]
		inClash := i >= 21 && i <= 41
		switch {
		case a.Service == "svc-30":
			if reported || st.Traffic.Stable != model.Green {
				t.Errorf("svc-30 was overwritten: %+v", st.Traffic)
			}
		case inClash:
			if stored || reported {
				t.Errorf("%s written from the clashing batch", a.Service)
			}
		default:
			if !stored || !reported || st.Index != got.Index || st.Traffic.Term != 3 || got.Traffic.Term != 3 || st.Traffic.Reason != "initial state: blue" {
				t.Errorf("%s: stored %v %+v at %d; reported %v %+v at %d", a.Service, stored, st.Traffic, st.Index, reported, got.Traffic, got.Index)
			}
			h, err := s.History(ctx, a.Service, 0)
			if err != nil || len(h) != 1 || h[0].Generation != 1 || h[0].Term != 3 || h[0].Replica != "r1" {
				t.Errorf("%s history: %+v %v", a.Service, h, err)
			}
		}
	}
	if _, found := snap.Intents["svc-00"]; found {
		t.Error("svc-00's stale intent survived its create")
	}
	owners, err := s.HistoryOwners(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(owners) != 30 || !owners["svc-30"] || !owners["svc-49"] || owners["svc-21"] {
		t.Fatalf("history owners: %d %v", len(owners), owners)
	}
	// A running switch is never created: only a stable state is.
	plan := model.Plan{Steps: []int{50, 100}, Interval: model.Duration(time.Second),
		MinRequests: 1, Confidence: 0.99, UnavailableBudget: model.Duration(time.Second), OnUnavailable: model.OnUnavailableRollback,
		InsufficientBudget: model.Duration(time.Second), OnInsufficient: model.OnUnavailableRollback, Rollback: model.RollbackInstant}
	running := model.Traffic{Stable: model.Blue, Target: model.Green, GreenPercent: 50, Phase: model.PhaseSwitching, Generation: 1,
		Rollout: &model.Rollout{ID: "gen-1", From: model.Blue, To: model.Green, Plan: plan, Phase: model.RolloutProgressing, Verdicts: []model.StepVerdict{}}}
	if err := running.Validate(); err != nil {
		t.Fatal(err)
	}
	if _, err := s.CreateAbsent(ctx, []state.Absent{{Service: "svc-21", Traffic: running}}); err == nil || !strings.Contains(err.Error(), "running a switch") {
		t.Fatalf("created a state running a switch: %v", err)
	}
}
