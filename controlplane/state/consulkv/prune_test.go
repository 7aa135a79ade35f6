package consulkv

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"

	"github.com/bgctl/bg/controlplane/release"
	"github.com/bgctl/bg/controlplane/state"
	"github.com/bgctl/bg/e2e/harness"
)

// endedRelease is a stored release that has ended (aborted before it
// started).
func endedRelease(t *testing.T, id string, at time.Time) release.Release {
	t.Helper()
	r, _, err := release.Decide(newRelease(t, id, at), release.Abort{Now: at, Reason: "test"})
	if err != nil || !r.Phase.Ended() {
		t.Fatalf("%s: %s %v", id, r.Phase, err)
	}
	return r
}

// Ended releases are deleted in one transaction with the fence, a
// check-and-set of the pruned-IDs record and a check-and-set delete of
// each release: all or nothing; never a release that has not ended.
func TestPruneReleasesAgainstConsul(t *testing.T) {
	consul := harness.StartConsul(t)
	c := consul.Client()
	s := New(c, "prunetest/")
	ctx := context.Background()
	save := func(r release.Release) state.StoredRelease {
		t.Helper()
		idx, err := s.SaveRelease(ctx, r, 0)
		if err != nil {
			t.Fatal(err)
		}
		return state.StoredRelease{Release: r, Index: idx}
	}
	stored := func() string {
		t.Helper()
		all, err := s.ListReleases(ctx)
		if err != nil {
			t.Fatal(err)
		}
		var ids []string
		for _, r := range all {
			ids = append(ids, r.Release.ID)
		}
		return strings.Join(ids, ",")
	}
	one := save(endedRelease(t, "checkout-1", t0))
	two := save(endedRelease(t, "checkout-2", t0.Add(time.Minute)))
	running, _, err := release.Decide(newRelease(t, "checkout-3", t0.Add(2*time.Minute)), release.Start{Now: t0.Add(2 * time.Minute)})
	if err != nil {
		t.Fatal(err)
	}
	three := save(running)

	ids, idx, err := s.PrunedIDs(ctx)
	if err != nil || len(ids) != 0 || idx != 0 {
		t.Fatalf("PrunedIDs with none stored: %v %d %v", ids, idx, err)
	}
	// Never a release that has not ended, nor more than one write holds.
	if err := s.PruneReleases(ctx, []state.StoredRelease{one, three}, map[string]int{"checkout": 3}, 0); err == nil || !strings.Contains(err.Error(), "checkout-3: it is running") {
		t.Fatalf("pruning a running release: %v", err)
	}
	many := make([]state.StoredRelease, state.MaxPrunedPerWrite+1)
	if err := s.PruneReleases(ctx, many, nil, 0); err == nil || !strings.Contains(err.Error(), "at most") {
		t.Fatalf("pruning %d at once: %v", len(many), err)
	}
	// Check-and-set: a moved revision fails it whole.
	edited := two.Release
	edited.Reason = "edited"
	if nidx, err := s.SaveRelease(ctx, edited, two.Index); err != nil || nidx == two.Index { // rewritten: a new revision
		t.Fatalf("rewrite: %v at %d (was %d)", err, nidx, two.Index)
	}
	if err := s.PruneReleases(ctx, []state.StoredRelease{one, two}, map[string]int{"checkout": 2}, 0); !errors.Is(err, state.ErrConflict) {
		t.Fatalf("a stale revision: %v, want ErrConflict", err)
	}
	if got := stored(); got != "checkout-1,checkout-2,checkout-3" {
		t.Fatalf("a failed prune deleted something: %s", got)
	}
	// Fenced: without the lock, or with a lost one, nothing is deleted.
	lock := "prunetest/leader"
	mine, theirs := holdLock(t, c, lock)
	s.SetFence(func() (Fence, bool) { return Fence{}, false })
	if err := s.PruneReleases(ctx, []state.StoredRelease{one}, map[string]int{"checkout": 1}, 0); !errors.Is(err, state.ErrNotLeader) {
		t.Fatalf("without the lock: %v, want ErrNotLeader", err)
	}
	s.SetFence(func() (Fence, bool) { return Fence{Key: lock, Session: theirs}, true })
	if err := s.PruneReleases(ctx, []state.StoredRelease{one}, map[string]int{"checkout": 1}, 0); !errors.Is(err, state.ErrNotLeader) {
		t.Fatalf("with a lost lock: %v, want ErrNotLeader", err)
	}
	if got := stored(); got != "checkout-1,checkout-2,checkout-3" {
		t.Fatalf("a fenced-off prune deleted something: %s", got)
	}
	// As leader: deleted, and the record written in the same transaction.
	s.SetFence(func() (Fence, bool) { return Fence{Key: lock, Session: mine}, true })
	if err := s.PruneReleases(ctx, []state.StoredRelease{one}, map[string]int{"checkout": 1}, 0); err != nil {
		t.Fatal(err)
	}
	if got := stored(); got != "checkout-2,checkout-3" {
		t.Fatalf("after pruning checkout-1: %s", got)
	}
	ids, idx, err = s.PrunedIDs(ctx)
	if err != nil || ids["checkout"] != 1 || len(ids) != 1 || idx == 0 {
		t.Fatalf("PrunedIDs = %v at %d, %v", ids, idx, err)
	}
	if pair, _, err := c.KV().Get("prunetest/release-ids", nil); err != nil || pair == nil || string(pair.Value) != `{"checkout":1}` {
		t.Fatalf("prunetest/release-ids = %+v %v", pair, err)
	}
	// The record is checked-and-set too: a stale revision of it fails.
	two, _ = reload(t, s, "checkout-2")
	if err := s.PruneReleases(ctx, []state.StoredRelease{two}, map[string]int{"checkout": 2}, 0); !errors.Is(err, state.ErrConflict) {
		t.Fatalf("a stale pruned-IDs revision: %v, want ErrConflict", err)
	}
	// One transaction holds the most one write may prune.
	var batch []state.StoredRelease
	for i := 0; i < state.MaxPrunedPerWrite; i++ {
		batch = append(batch, save(endedRelease(t, fmt.Sprintf("bulk-%d", i+1), t0.Add(time.Hour+time.Duration(i)*time.Second))))
	}
	if err := s.PruneReleases(ctx, batch, map[string]int{"checkout": 1, "bulk": state.MaxPrunedPerWrite}, idx); err != nil {
		t.Fatalf("pruning %d in one write: %v", len(batch), err)
	}
	if got := stored(); got != "checkout-2,checkout-3" {
		t.Fatalf("after pruning the bulk: %s", got)
	}
	// A record that does not decode is an error naming its key.
	if _, err := c.KV().Put(&api.KVPair{Key: "prunetest/release-ids", Value: []byte(`{"checkout":0}`)}, nil); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.PrunedIDs(ctx); err == nil || !strings.Contains(err.Error(), "prunetest/release-ids") {
		t.Fatalf("a bad record: %v", err)
	}
}

func reload(t *testing.T, s *Store, id string) (state.StoredRelease, bool) {
	t.Helper()
	r, idx, found, err := s.LoadRelease(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	return state.StoredRelease{Release: r, Index: idx}, found
}
