package consulkv

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/hashicorp/consul/api"

	"github.com/bgctl/bg/controlplane/model"
	"github.com/bgctl/bg/controlplane/state"
	"github.com/bgctl/bg/e2e/harness"
)

// Desired versions are stored beside the traffic state, check-and-set on
// their own revision, fenced by the leader lock; they list in one read and
// read back strictly.
func TestDesiredAgainstConsul(t *testing.T) {
	consul := harness.StartConsul(t)
	c := consul.Client()
	s := New(c, "desiredtest/")
	ctx := context.Background()
	lock := "desiredtest/leader"
	mine, theirs := holdLock(t, c, lock)

	d := model.Desired{Version: "v2", Actor: "ci", At: t0, Reason: "deploy 42"}.Logged(model.DesireEvent{At: t0, Actor: "ci", What: "desired v2"})
	s.SetFence(func() (Fence, bool) { return Fence{Key: lock, Session: theirs}, true })
	if _, err := s.SaveDesired(ctx, "web", d, 0); !errors.Is(err, state.ErrNotLeader) {
		t.Fatalf("with a lost lock: %v, want ErrNotLeader", err)
	}
	s.SetFence(func() (Fence, bool) { return Fence{}, false })
	if _, err := s.SaveDesired(ctx, "web", d, 0); !errors.Is(err, state.ErrNotLeader) {
		t.Fatalf("without the lock: %v, want ErrNotLeader", err)
	}
	if all, err := s.ListDesired(ctx); err != nil || len(all) != 0 {
		t.Fatalf("fenced-off writes stored something: %v %v", all, err)
	}
	s.SetFence(func() (Fence, bool) { return Fence{Key: lock, Session: mine, Term: 3, Replica: "r1"}, true })
	idx, err := s.SaveDesired(ctx, "web", d, 0)
	if err != nil {
		t.Fatal(err)
	}
	if pair, _, err := c.KV().Get("desiredtest/desired/web", nil); err != nil || pair == nil {
		t.Fatalf("not at desiredtest/desired/web: %v %v", pair, err)
	}
	if _, err := s.SaveDesired(ctx, "web", d, 0); !errors.Is(err, state.ErrConflict) {
		t.Fatalf("creating it twice: %v, want ErrConflict", err)
	}
	failed := d
	failed.Failed = &model.DesiredFailure{Cause: model.FailRolledBack, Reason: "error ratio", SwitchID: "web@4", At: t0}
	idx2, err := s.SaveDesired(ctx, "web", failed, idx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.SaveDesired(ctx, "web", failed, idx); !errors.Is(err, state.ErrConflict) {
		t.Fatalf("a stale revision: %v, want ErrConflict", err)
	}
	bad := failed
	bad.Version = "v 2"
	if _, err := s.SaveDesired(ctx, "web", bad, idx2); err == nil || !strings.Contains(err.Error(), "version") {
		t.Fatalf("invalid desired state stored: %v", err)
	}
	all, err := s.ListDesired(ctx)
	if err != nil {
		t.Fatal(err)
	}
	got := all["web"]
	if len(all) != 1 || got.Index != idx2 || got.Desired.Version != "v2" || got.Desired.Failed == nil || got.Desired.Failed.SwitchID != "web@4" || len(got.Desired.Log) != 1 {
		t.Fatalf("ListDesired = %+v", all)
	}
	// A value that does not decode is an error naming its key, never skipped.
	if _, err := c.KV().Put(&api.KVPair{Key: "desiredtest/desired/api", Value: []byte(`{"version":"v7","actor":"x","at":"2026-01-01T00:00:00Z","extra":1}`)}, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := s.ListDesired(ctx); err == nil || !strings.Contains(err.Error(), "desiredtest/desired/api") {
		t.Fatalf("an undecodable value: %v", err)
	}
}

// SaveDesiredSet is one fenced transaction: one stale revision, a lost
// lock or an invalid state stores nothing; otherwise every key is written.
func TestDesiredSetAgainstConsul(t *testing.T) {
	consul := harness.StartConsul(t)
	c := consul.Client()
	s := New(c, "desiredset/")
	ctx := context.Background()
	lock := "desiredset/leader"
	mine, theirs := holdLock(t, c, lock)
	s.SetFence(func() (Fence, bool) { return Fence{Key: lock, Session: mine, Term: 1, Replica: "r1"}, true })

	d := func(v string) model.Desired {
		return model.Desired{Version: v, Actor: "ci", At: t0, Group: []string{"api", "web"}}.Logged(model.DesireEvent{At: t0, Actor: "ci", What: "desired " + v})
	}
	w := func(service, v string, prev state.Index) state.DesiredWrite {
		return state.DesiredWrite{Service: service, Desired: d(v), Prev: prev}
	}
	webIdx, err := s.SaveDesired(ctx, "web", d("v1"), 0)
	if err != nil {
		t.Fatal(err)
	}
	stored := func() map[string]state.StoredDesired {
		t.Helper()
		all, err := s.ListDesired(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return all
	}
	for name, c := range map[string]struct {
		fence  func() (Fence, bool)
		writes []state.DesiredWrite
		want   error
	}{
		"web's revision is stale":  {nil, []state.DesiredWrite{w("api", "v7", 0), w("web", "v2", webIdx-1)}, state.ErrConflict},
		"web exists, asked absent": {nil, []state.DesiredWrite{w("api", "v7", 0), w("web", "v2", 0)}, state.ErrConflict},
		"lock lost": {func() (Fence, bool) { return Fence{Key: lock, Session: theirs}, true },
			[]state.DesiredWrite{w("api", "v7", 0), w("web", "v2", webIdx)}, state.ErrNotLeader},
		"one invalid": {nil, []state.DesiredWrite{w("api", "v 7", 0), w("web", "v2", webIdx)}, nil},
		"twice":       {nil, []state.DesiredWrite{w("api", "v7", 0), w("api", "v8", 0)}, nil},
	} {
		if c.fence != nil {
			s.SetFence(c.fence)
		}
		_, err := s.SaveDesiredSet(ctx, c.writes)
		s.SetFence(func() (Fence, bool) { return Fence{Key: lock, Session: mine, Term: 1, Replica: "r1"}, true })
		if err == nil || c.want != nil && !errors.Is(err, c.want) {
			t.Errorf("%s: err = %v, want %v", name, err, c.want)
		}
		if all := stored(); len(all) != 1 || all["web"].Index != webIdx {
			t.Errorf("%s: stored %+v; want web alone, unchanged", name, all)
		}
	}
	idx, err := s.SaveDesiredSet(ctx, []state.DesiredWrite{w("api", "v7", 0), w("web", "v2", webIdx)})
	if err != nil {
		t.Fatal(err)
	}
	all := stored()
	if len(all) != 2 || all["api"].Desired.Version != "v7" || all["web"].Desired.Version != "v2" ||
		all["api"].Index != idx["api"] || all["web"].Index != idx["web"] || idx["web"] <= webIdx {
		t.Fatalf("stored %+v, indexes %v", all, idx)
	}
	// As many as one transaction holds, and one more.
	var most []state.DesiredWrite
	for i := range state.MaxDesiredSet {
		most = append(most, state.DesiredWrite{Service: fmt.Sprintf("s%02d", i), Desired: d("v1")})
	}
	if _, err := s.SaveDesiredSet(ctx, most); err != nil {
		t.Fatalf("%d writes: %v", len(most), err)
	}
	if _, err := s.SaveDesiredSet(ctx, append(most, state.DesiredWrite{Service: "s99", Desired: d("v1")})); err == nil {
		t.Fatalf("%d writes accepted", len(most)+1)
	}
}
