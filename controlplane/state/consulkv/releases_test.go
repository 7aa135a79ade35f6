package consulkv

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"

	"github.com/bgctl/bg/controlplane/model"
	"github.com/bgctl/bg/controlplane/release"
	"github.com/bgctl/bg/controlplane/state"
	"github.com/bgctl/bg/e2e/harness"
)

func newRelease(t *testing.T, id string, at time.Time) release.Release {
	t.Helper()
	r, err := release.New(id, "checkout", []release.Spec{
		{Service: "web", DependsOn: []string{"api"}, From: model.Blue, To: model.Green, Base: "gen-4"},
		{Service: "api", From: model.Green, To: model.Blue},
	}, 4, at)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// Releases are stored next to the services' states, check-and-set on
// their revision and fenced by the leader lock in the same transaction;
// they read back strictly.
func TestReleasesAgainstConsul(t *testing.T) {
	consul := harness.StartConsul(t)
	c := consul.Client()
	s := New(c, "reltest/")
	ctx := context.Background()

	r1 := newRelease(t, "checkout-1", t0)
	idx, err := s.SaveRelease(ctx, r1, 0)
	if err != nil {
		t.Fatal(err)
	}
	if pair, _, err := c.KV().Get("reltest/releases/checkout-1", nil); err != nil || pair == nil {
		t.Fatalf("not at reltest/releases/checkout-1: %v %v", pair, err)
	}
	got, gotIdx, found, err := s.LoadRelease(ctx, "checkout-1")
	if err != nil || !found || gotIdx != idx || got.ID != "checkout-1" || got.Members[0].Service != "api" || !got.CreatedAt.Equal(t0) {
		t.Fatalf("LoadRelease = %+v %d %v %v", got, gotIdx, found, err)
	}
	if _, _, found, err := s.LoadRelease(ctx, "checkout-9"); found || err != nil {
		t.Fatalf("a missing release: found %v, %v", found, err)
	}
	if _, _, found, err := s.LoadRelease(ctx, "../services"); found || err != nil {
		t.Fatalf("an id that is no key: found %v, %v", found, err)
	}

	// Create-only and check-and-set.
	if _, err := s.SaveRelease(ctx, r1, 0); !errors.Is(err, state.ErrConflict) {
		t.Fatalf("creating it twice: %v, want ErrConflict", err)
	}
	started, _, err := release.Decide(r1, release.Start{Now: t0.Add(time.Second)})
	if err != nil {
		t.Fatal(err)
	}
	idx2, err := s.SaveRelease(ctx, started, idx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.SaveRelease(ctx, started, idx); !errors.Is(err, state.ErrConflict) {
		t.Fatalf("a stale revision: %v, want ErrConflict", err)
	}
	// An invalid state is never written.
	bad := started
	bad.MaxParallel = 0
	if _, err := s.SaveRelease(ctx, bad, idx2); err == nil || !strings.Contains(err.Error(), "max_parallel") {
		t.Fatalf("invalid release stored: %v", err)
	}

	// Fenced: without the lock, or with a lost one, nothing is written.
	lock := "reltest/leader"
	mine, theirs := holdLock(t, c, lock)
	paused, _, err := release.Decide(started, release.Pause{Now: t0.Add(2 * time.Second)})
	if err != nil {
		t.Fatal(err)
	}
	s.SetFence(func() (Fence, bool) { return Fence{}, false })
	if _, err := s.SaveRelease(ctx, paused, idx2); !errors.Is(err, state.ErrNotLeader) {
		t.Fatalf("without the lock: %v, want ErrNotLeader", err)
	}
	s.SetFence(func() (Fence, bool) { return Fence{Key: lock, Session: theirs}, true })
	if _, err := s.SaveRelease(ctx, paused, idx2); !errors.Is(err, state.ErrNotLeader) {
		t.Fatalf("with a lost lock: %v, want ErrNotLeader", err)
	}
	if got, _, _, _ := s.LoadRelease(ctx, "checkout-1"); got.Phase != release.Running {
		t.Fatalf("a fenced-off write changed the release: %s", got.Phase)
	}
	s.SetFence(func() (Fence, bool) { return Fence{Key: lock, Session: mine}, true })
	idx3, err := s.SaveRelease(ctx, paused, idx2)
	if err != nil {
		t.Fatal(err)
	}
	if got, i, _, _ := s.LoadRelease(ctx, "checkout-1"); got.Phase != release.Paused || i != idx3 || got.Generation != 3 {
		t.Fatalf("as leader: %s at %d (gen %d), want paused at %d", got.Phase, i, got.Generation, idx3)
	}

	// List: every release, oldest first; the traffic watch's folder is
	// not touched.
	if _, err := s.SaveRelease(ctx, newRelease(t, "checkout-2", t0.Add(time.Hour)), 0); err != nil {
		t.Fatal(err)
	}
	if _, err := s.SaveRelease(ctx, newRelease(t, "aaa-1", t0.Add(-time.Hour)), 0); err != nil {
		t.Fatal(err)
	}
	all, err := s.ListReleases(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, r := range all {
		ids = append(ids, r.Release.ID)
	}
	if strings.Join(ids, ",") != "aaa-1,checkout-1,checkout-2" || all[1].Index != idx3 {
		t.Fatalf("ListReleases = %v (checkout-1 at %d, want %d)", ids, all[1].Index, idx3)
	}
	if snap, err := s.LoadAll(ctx); err != nil || len(snap.Traffic) != 0 || len(snap.Invalid) != 0 {
		t.Fatalf("the services folder saw releases: %+v %v", snap, err)
	}

	// A stored release that does not decode is an error naming its key.
	for _, bad := range []struct{ value, inError string }{
		{`{not json`, "release:"},
		{`{"id":"checkout-3","name":"checkout","phase":"running","bogus":1}`, "unknown field"},
		{`{"id":"checkout-3","name":"checkout","phase":"running","max_parallel":1,"created_at":"2025-03-01T12:00:00Z","generation":1,"members":[]}`, "members"},
	} {
		if _, err := c.KV().Put(&api.KVPair{Key: "reltest/releases/checkout-3", Value: []byte(bad.value)}, nil); err != nil {
			t.Fatal(err)
		}
		if _, err := s.ListReleases(ctx); err == nil || !strings.Contains(err.Error(), "reltest/releases/checkout-3") || !strings.Contains(err.Error(), bad.inError) {
			t.Errorf("list with %s: %v", bad.value, err)
		}
		if _, _, _, err := s.LoadRelease(ctx, "checkout-3"); err == nil || !strings.Contains(err.Error(), bad.inError) {
			t.Errorf("load of %s: %v", bad.value, err)
		}
	}
	// A key that holds another release's state.
	if _, err := c.KV().Delete("reltest/releases/checkout-3", nil); err != nil {
		t.Fatal(err)
	}
	other, _, _, _ := s.LoadRelease(ctx, "checkout-2")
	body, _ := jsonOf(other)
	if _, err := c.KV().Put(&api.KVPair{Key: "reltest/releases/copy", Value: body}, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := s.ListReleases(ctx); err == nil || !strings.Contains(err.Error(), `holds release "checkout-2"`) {
		t.Errorf("list with a misplaced release: %v", err)
	}
}

func jsonOf(r release.Release) ([]byte, error) { return json.Marshal(r) }
