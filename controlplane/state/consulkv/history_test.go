package consulkv

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"

	"github.com/bgctl/bg/controlplane/model"
	"github.com/bgctl/bg/controlplane/state"
	"github.com/bgctl/bg/e2e/harness"
)

var t0 = time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)

// saveSeries saves generations 1..n of a service through Save, alternating
// the split, and returns the entries as written.
func saveSeries(t *testing.T, s *Store, service string, n int) []model.HistoryEntry {
	t.Helper()
	ctx := context.Background()
	var idx state.Index
	var want []model.HistoryEntry
	cur := model.InitialTraffic()
	for gen := uint64(1); gen <= uint64(n); gen++ {
		next := model.InitialTraffic()
		next.Generation = gen
		if gen%2 == 0 {
			next.Target, next.GreenPercent, next.Phase = model.Green, 100, model.PhaseSwitched
		}
		next.Reason = fmt.Sprintf("change %d", gen)
		e := model.HistoryEntry{
			At: t0.Add(time.Duration(gen) * time.Minute), Actor: fmt.Sprintf("cli:ann@host%d (127.0.0.1:1)", gen),
			Reason: next.Reason, FromGreen: cur.GreenPercent, ToGreen: next.GreenPercent, Phase: next.Phase, Stable: next.Stable,
		}
		if gen == 3 {
			e.Override = "steps 10,100 instead of 1,5,25,50,100"
		}
		var err error
		if idx, err = s.Save(ctx, service, next, idx, e); err != nil {
			t.Fatalf("save generation %d: %v", gen, err)
		}
		e.Generation = gen
		want = append(want, e)
		cur = next
	}
	return want
}

func checkEntries(t *testing.T, got, want []model.HistoryEntry) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("got %d entries, want %d: %+v", len(got), len(want), got)
	}
	for i := range want {
		g, w := got[i], want[i]
		if !g.At.Equal(w.At) {
			t.Errorf("entry %d: at %v, want %v", i, g.At, w.At)
		}
		g.At, w.At = time.Time{}, time.Time{}
		if g != w {
			t.Errorf("entry %d:\n got %+v\nwant %+v", i, g, w)
		}
	}
}

func generations(es []model.HistoryEntry) []uint64 {
	out := make([]uint64, len(es))
	for i, e := range es {
		out[i] = e.Generation
	}
	return out
}

func TestHistoryAgainstConsul(t *testing.T) {
	consul := harness.StartConsul(t)
	c := consul.Client()
	ctx := context.Background()
	n := 0
	// Each subtest gets its own prefix, so they share one agent.
	newStore := func() *Store {
		n++
		return New(c, fmt.Sprintf("bgtest%d/", n))
	}

	t.Run("newest last, with actors and reasons", func(t *testing.T) {
		s := newStore()
		// 12 entries cross 9→10, where an unpadded key would sort wrongly.
		want := saveSeries(t, s, "web", 12)
		saveSeries(t, s, "web-2", 3) // a name "web" is a prefix of
		got, err := s.History(ctx, "web", 0)
		if err != nil {
			t.Fatal(err)
		}
		checkEntries(t, got, want)
		if got[2].Override == "" || got[0].Actor != "cli:ann@host1 (127.0.0.1:1)" || got[11].Reason != "change 12" {
			t.Errorf("entries lost fields: %+v", got)
		}

		got, err = s.History(ctx, "web", 4)
		if err != nil {
			t.Fatal(err)
		}
		checkEntries(t, got, want[8:])

		got, err = s.History(ctx, "web", 100)
		if err != nil {
			t.Fatal(err)
		}
		checkEntries(t, got, want)

		got, err = s.History(ctx, "nosuch", 10)
		if err != nil || len(got) != 0 {
			t.Fatalf("history of an unknown service = %v, %v; want none", got, err)
		}
	})

	t.Run("prune keeps the newest", func(t *testing.T) {
		s := newStore()
		want := saveSeries(t, s, "web", 12)
		other := saveSeries(t, s, "web-2", 3)
		deleted, err := s.PruneHistory(ctx, "web", 5)
		if err != nil || deleted != 7 {
			t.Fatalf("PruneHistory = %d, %v; want 7 deleted", deleted, err)
		}
		got, err := s.History(ctx, "web", 0)
		if err != nil {
			t.Fatal(err)
		}
		checkEntries(t, got, want[7:])
		// Idempotent, and keep above the count deletes nothing.
		for _, keep := range []int{5, 6, 1000} {
			if deleted, err := s.PruneHistory(ctx, "web", keep); err != nil || deleted != 0 {
				t.Errorf("PruneHistory(keep %d) again = %d, %v; want 0", keep, deleted, err)
			}
		}
		if got, err := s.History(ctx, "web-2", 0); err != nil {
			t.Fatal(err)
		} else {
			checkEntries(t, got, other)
		}
		// The state itself is untouched.
		if tr, _, found, err := s.Load(ctx, "web"); err != nil || !found || tr.Generation != 12 {
			t.Errorf("state after prune = %+v found=%v err=%v", tr, found, err)
		}
		for _, keep := range []int{0, -1} {
			if _, err := s.PruneHistory(ctx, "web", keep); err == nil {
				t.Errorf("PruneHistory(keep %d) accepted", keep)
			}
		}
	})

	t.Run("prune in batches of at most 64", func(t *testing.T) {
		s := newStore()
		// 150 deletions need 3 transactions; one of 150 ops would be refused.
		putRaw(t, c, s, "bulk", 160)
		deleted, err := s.PruneHistory(ctx, "bulk", 10)
		if err != nil || deleted != 150 {
			t.Fatalf("PruneHistory = %d, %v; want 150", deleted, err)
		}
		got, err := s.History(ctx, "bulk", 0)
		if err != nil {
			t.Fatal(err)
		}
		if gens := generations(got); len(gens) != 10 || gens[0] != 151 || gens[9] != 160 {
			t.Errorf("kept generations %v, want 151..160", gens)
		}
	})

	t.Run("prune is fenced", func(t *testing.T) {
		s := newStore()
		putRaw(t, c, s, "web", 70)
		lock := s.prefix + "leader"
		mine, _, err := c.Session().Create(&api.SessionEntry{TTL: "60s"}, nil)
		if err != nil {
			t.Fatal(err)
		}
		theirs, _, err := c.Session().Create(&api.SessionEntry{TTL: "60s"}, nil)
		if err != nil {
			t.Fatal(err)
		}
		if ok, _, err := c.KV().Acquire(&api.KVPair{Key: lock, Session: mine}, nil); err != nil || !ok {
			t.Fatalf("acquire: %v %v", ok, err)
		}

		s.SetFence(func() (Fence, bool) { return Fence{}, false })
		if deleted, err := s.PruneHistory(ctx, "web", 10); !errors.Is(err, state.ErrNotLeader) || deleted != 0 {
			t.Errorf("without the lock: %d, %v; want ErrNotLeader", deleted, err)
		}
		s.SetFence(func() (Fence, bool) { return Fence{Key: lock, Session: theirs}, true })
		if deleted, err := s.PruneHistory(ctx, "web", 10); !errors.Is(err, state.ErrNotLeader) || deleted != 0 {
			t.Errorf("with a lost lock: %d, %v; want ErrNotLeader", deleted, err)
		}
		if got, err := s.History(ctx, "web", 0); err != nil || len(got) != 70 {
			t.Fatalf("a fenced-off prune deleted entries: %d left, %v", len(got), err)
		}
		s.SetFence(func() (Fence, bool) { return Fence{Key: lock, Session: mine}, true })
		if deleted, err := s.PruneHistory(ctx, "web", 10); err != nil || deleted != 60 {
			t.Errorf("as leader: %d, %v; want 60", deleted, err)
		}
	})

	t.Run("bad entries are errors naming the key", func(t *testing.T) {
		cases := []struct {
			name, key, value, inError string
		}{
			{"not JSON", "%s00000000000000000002", `{not json`, "invalid history entry"},
			{"unknown field", "%s00000000000000000002", `{"generation":2,"at":"2025-03-01T12:00:00Z","who":"x"}`, "unknown field"},
			{"trailing data", "%s00000000000000000002", `{"generation":2,"at":"2025-03-01T12:00:00Z"}}`, "trailing"},
			{"null", "%s00000000000000000002", `null`, "no generation"},
			{"generation mismatch", "%s00000000000000000002", `{"generation":7,"at":"2025-03-01T12:00:00Z"}`, "does not match"},
			{"stray key", "%snotes", `{}`, "not a history entry key"},
			{"unpadded key", "%s2", `{"generation":2,"at":"2025-03-01T12:00:00Z"}`, "not a history entry key"},
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				s := newStore()
				saveSeries(t, s, "web", 1)
				key := fmt.Sprintf(tc.key, s.historyPrefix("web"))
				if _, err := c.KV().Put(&api.KVPair{Key: key, Value: []byte(tc.value)}, nil); err != nil {
					t.Fatal(err)
				}
				got, err := s.History(ctx, "web", 0)
				if err == nil || !strings.Contains(err.Error(), key) || !strings.Contains(err.Error(), tc.inError) {
					t.Fatalf("History = %+v, %v; want an error naming %s and %q", got, err, key, tc.inError)
				}
				if tc.name == "stray key" {
					// Prune cannot tell what is oldest, so it deletes nothing.
					if deleted, err := s.PruneHistory(ctx, "web", 1); err == nil || deleted != 0 {
						t.Errorf("PruneHistory = %d, %v; want an error", deleted, err)
					}
				}
			})
		}
	})
}

// putRaw writes history entries 1..n directly, faster than n Saves.
func putRaw(t *testing.T, c *api.Client, s *Store, service string, n int) {
	t.Helper()
	var ops api.TxnOps
	flush := func() {
		if ok, resp, _, err := c.Txn().Txn(ops, nil); err != nil || !ok {
			t.Fatalf("txn: %v %+v", err, resp)
		}
		ops = nil
	}
	for gen := 1; gen <= n; gen++ {
		v := fmt.Sprintf(`{"generation":%d,"at":"2025-03-01T12:00:00Z","actor":"test","from_green_percent":0,"to_green_percent":0,"phase":"stable","stable":"blue"}`, gen)
		ops = append(ops, &api.TxnOp{KV: &api.KVTxnOp{Verb: api.KVSet, Key: s.HistoryKey(service, uint64(gen)), Value: []byte(v)}})
		if len(ops) == maxTxnOps {
			flush()
		}
	}
	if len(ops) > 0 {
		flush()
	}
}

// DecodeHistory needs no Consul.
func TestDecodeHistory(t *testing.T) {
	e, err := DecodeHistory([]byte(`{"generation":3,"at":"2025-03-01T12:00:00Z","actor":"bg:r1","term":4,"from_green_percent":10,"to_green_percent":25,"phase":"switching","stable":"blue","override":"force"}`))
	if err != nil {
		t.Fatal(err)
	}
	if e.Generation != 3 || e.Actor != "bg:r1" || e.Term != 4 || e.ToGreen != 25 || e.Override != "force" || !e.At.Equal(t0) {
		t.Errorf("decoded %+v", e)
	}
	for _, s := range []string{``, `null`, `{}`, `[]`, `{"generation":"3"}`, `{"generation":3,"x":1}`, `{"generation":3} {}`, `{"generation":3}]`} {
		if _, err := DecodeHistory([]byte(s)); err == nil {
			t.Errorf("DecodeHistory(%q) accepted bad data", s)
		}
	}
}
