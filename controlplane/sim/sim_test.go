package sim

import (
	"flag"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/bgctl/bg/controlplane/model"
)

// defaultSeeds is how many seeds TestSim runs (fewer under -race).
var defaultSeeds = 2000

var (
	seed  = flag.Int64("seed", -1, "run only this seed (printed by a failing run)")
	seeds = flag.Int("seeds", 0, "how many seeds TestSim runs (default 2,000; 200 under -race)")
)

// TestSim attacks the invariants with random faults, one world per seed.
// A failure prints the command that replays it exactly.
func TestSim(t *testing.T) {
	first, n := int64(1), int64(defaultSeeds)
	if *seeds > 0 {
		n = int64(*seeds)
	}
	if *seed >= 0 {
		first, n = *seed, 1
	}
	failed := 0
	var bad []int64
	for s := first; s < first+n; s++ {
		w := New(s, Random(s))
		if v := w.Run(); len(v) > 0 {
			failed++
			bad = append(bad, s)
			if failed <= 3 {
				t.Errorf("seed %d: %v\noptions: %+v\nreplay: go test ./controlplane/sim -run 'TestSim$' -seed %d -v\nlast events:\n%s", s, v, w.opts, s, w.s.Trace())
			}
		}
	}
	if failed > 0 {
		t.Errorf("%d of %d seeds broke an invariant: %v", failed, n, bad)
	}
}

// TestSimDeterministic: the same seed gives the same run.
func TestSimDeterministic(t *testing.T) {
	for _, s := range []int64{3, 17, 99} {
		a, b := New(s, Random(s)), New(s, Random(s))
		a.Run()
		b.Run()
		if a.s.Trace() != b.s.Trace() {
			t.Fatalf("seed %d: two runs differ", s)
		}
	}
}

// Named scenarios: the defects issue 10 reported, each as a fixed run.
func TestScenarios(t *testing.T) {
	for _, tc := range []struct {
		name string
		seed int64
		opts Options
		// cacheEnds, if set, is how the cache's roll must end.
		cacheEnds model.RollPhase
		reason    string // a part of the roll's cause
		// promoted: web's switch must end promoted (green is healthy).
		promoted bool
	}{
		{"rollback decided while Consul is down is stored once it returns", 1, Options{
			Replicas: 2, GreenBadAt: 3500 * time.Millisecond,
			Faults: []Fault{{At: 3 * time.Second, Kind: ConsulOutage, For: 6 * time.Second}},
		}, "", "", false},
		{"rollback decided by a partitioned leader survives re-election", 2, Options{
			Replicas: 3, GreenBadAt: 3500 * time.Millisecond,
			Faults: []Fault{{At: 3200 * time.Millisecond, Kind: Partition, Replica: -1, For: 8 * time.Second}},
		}, "", "", false},
		{"paused leader resumes after another took over", 3, Options{
			Replicas: 2, GreenBadAt: 3500 * time.Millisecond,
			Faults: []Fault{{At: 3200 * time.Millisecond, Kind: Pause, Replica: -1, For: 6 * time.Second}},
		}, "", "", false},
		{"empty health read of the serving fleet", 4, Options{
			Replicas: 1,
			Faults:   []Fault{{At: 8 * time.Second, Kind: EmptyRead, Replica: 0, For: 10 * time.Second}},
		}, "", "", false},
		{"state key deleted while green serves", 5, Options{
			Replicas: 3,
			Faults:   []Fault{{At: 12 * time.Second, Kind: DeleteKey}},
		}, "", "", false},
		{"leader killed mid-switch while green fails", 6, Options{
			Replicas: 3, GreenBadAt: 3 * time.Second,
			Faults: []Fault{{At: 3 * time.Second, Kind: Crash, Replica: -1, For: 2 * time.Second}},
		}, "", "", false},
		{"follower with a stale empty read when the leader aborts back (found as seed 1455)", 1455, Options{
			Replicas: 3, Abort: 9100 * time.Millisecond,
			Faults: []Fault{{At: 5750 * time.Millisecond, Kind: EmptyRead, Replica: -2, For: 5700 * time.Millisecond}},
		}, "", "", false},
		{"a state key written back and deleted again before the watch saw it is written back again (seed 2046, frozen)", 2046, Options{
			Replicas: 3, GreenBadAt: 5418667445 * time.Nanosecond, StaleGreen: true,
			Faults: []Fault{
				{At: 3119064797 * time.Nanosecond, Kind: Pause, Replica: 2, For: 2516597270 * time.Nanosecond, Service: service, Slot: 1},
				{At: 11964851442 * time.Nanosecond, Kind: DeleteKey, Replica: 2, For: 1214138706 * time.Nanosecond, Service: cache, Slot: 4},
				{At: 19737671806 * time.Nanosecond, Kind: GateFail, Replica: -1, For: 5628668663 * time.Nanosecond, Service: service, Slot: 4},
				{At: 11949149146 * time.Nanosecond, Kind: DeleteKey, Replica: -1, For: 6891782134 * time.Nanosecond, Service: cache, Slot: 4},
				{At: 4590345609 * time.Nanosecond, Kind: NoTraffic, Replica: -1, For: 5640208903 * time.Nanosecond, Service: service, Slot: 1},
			},
		}, "", "", false},
		{"a restarted follower behind the leader's unsaved rollback is not counted done (seed 1658, frozen)", 1658, Options{
			Replicas: 2, GreenBadAt: 5345203374,
			Faults: []Fault{
				{At: 1876200711, Kind: NoTraffic, Replica: 1, For: 2883505124, Service: cache, Slot: 2},
				{At: 24492136768, Kind: PromOutage, Replica: -1, For: 5160417409, Service: service, Slot: 1},
				{At: 3110457699, Kind: ConsulOutage, Replica: -1, For: 6626450556, Service: cache, Slot: 2},
				{At: 9914416503, Kind: Crash, Replica: 1, For: 2444335390, Service: service, Slot: 2},
				{At: 8619506221, Kind: HalvedRead, Replica: 1, For: 2265793999, Service: service, Slot: 3},
				{At: 28286377215, Kind: Vanish, Replica: -1, For: 5910993619, Service: service, Slot: 2},
			},
		}, "", "", false},
		{"a failing step gate rolls back for good", 9, Options{
			Replicas: 2, Gates: true,
			Faults: []Fault{{At: 2 * time.Second, Kind: GateFail, For: 20 * time.Second}, {At: 2500 * time.Millisecond, Kind: Partition, Replica: -1, For: 4 * time.Second}},
		}, "", "", false},
		{"a cache replacement vanishes mid-roll: its old host returns in the same push", 7, Options{
			Replicas: 2,
			Faults:   []Fault{{At: 3500 * time.Millisecond, Kind: Vanish, Slot: 2, For: 3 * time.Second}},
		}, model.RollRolledBack, "", false},
		{"Prometheus down mid-roll: the roll holds, then rolls back past the budget", 8, Options{
			Replicas: 1,
			Faults:   []Fault{{At: 2500 * time.Millisecond, Kind: PromOutage, For: 6 * time.Second}},
		}, model.RollRolledBack, "metrics unavailable", false},
		{"a bad green first judged after a Prometheus outage: the overwhelming evidence is stored with the rollback (seed 1251, frozen)", 1251, Options{
			Replicas: 1, GreenBadAt: 5194518693, CacheBadAt: 11655157929,
			Faults: []Fault{
				{At: 16422037800, Kind: PromNaN, Replica: 0, For: 3724065367, Service: service, Slot: 3},
				{At: 4191275242, Kind: PromOutage, Replica: -1, For: 3621934724, Service: service, Slot: 1},
			},
		}, "", "", false},
		{"a healthy green after a failed attempt is promoted: its old errors are not counted", 12, Options{
			Replicas: 2, StaleGreen: true, Scrape: time.Second,
		}, "", "", true},
		{"Prometheus down as the switch starts: rounds keep their interval, then judge from a later start", 13, Options{
			Replicas: 1, StaleGreen: true, Scrape: time.Second,
			Faults: []Fault{{At: 900 * time.Millisecond, Kind: PromOutage, For: 3 * time.Second}},
		}, "", "", true},
		{"the leader killed mid-switch: the next term counts afresh from its own start", 14, Options{
			Replicas: 3, StaleGreen: true, Scrape: 250 * time.Millisecond,
			Faults: []Fault{{At: 2600 * time.Millisecond, Kind: Crash, Replica: -1, For: 2 * time.Second}},
		}, "", "", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := New(tc.seed, tc.opts)
			if v := w.Run(); len(v) > 0 {
				t.Fatalf("%v\nlast events:\n%s", v, w.s.Trace())
			}
			if w.switchID == "" {
				t.Fatalf("no switch ever started:\n%s", w.s.Trace())
			}
			if tc.cacheEnds != "" {
				c, _ := w.stored(cache)
				if c.Roll == nil || c.Roll.Phase != tc.cacheEnds || !strings.Contains(c.Roll.Cause, tc.reason) {
					t.Fatalf("cache roll ended %+v, want %s (%q)", c.Roll, tc.cacheEnds, tc.reason)
				}
			}
			st, _ := w.stored(service)
			if (tc.opts.GreenBadAt > 0 || tc.opts.Gates) && (st.Rollout == nil || st.Rollout.Phase != model.RolloutRolledBack || st.GreenPercent != 0) {
				t.Fatalf("green failed but the switch ended %+v at green %d%%:\n%s", st.Rollout, st.GreenPercent, w.s.Trace())
			}
			if tc.promoted && (st.Rollout == nil || st.Rollout.Phase != model.RolloutPromoted || st.GreenPercent != 100) {
				t.Fatalf("green is healthy but the switch ended %+v at green %d%%:\n%s", st.Rollout, st.GreenPercent, w.s.Trace())
			}
			for _, f := range tc.opts.Faults {
				if f.Kind == DeleteKey && !slices.ContainsFunc(w.consul.history[svcOf(f)], func(e model.HistoryEntry) bool { return strings.Contains(e.Reason, "missing") }) {
					t.Fatalf("the deleted key was not written back with a history entry")
				}
			}
		})
	}
}

// A proxy on a follower that NACKs keeps the leader from reporting done,
// and the leader's answer names it with its message (invariant 2).
func TestSimFollowerNACKShowsInLeadersAnswer(t *testing.T) {
	w := New(11, Options{Replicas: 3})
	w.opts.Faults = []Fault{{At: 500 * time.Millisecond, Kind: Nack, Replica: -2, Slot: 0, For: 20 * time.Second}}
	var seen bool
	w.s.At(simStart.Add(8*time.Second), "probe", func() {
		l := w.leader()
		if l == nil {
			return
		}
		st, ok := l.status(service)
		if !ok || st.Acks == nil {
			return
		}
		for _, p := range st.Acks.Pending {
			if p.LastNACK != nil && strings.Contains(p.LastNACK.Message, "rejected") && p.Replica != l.id {
				seen = true
			}
		}
		if st.Acks.Complete {
			t.Errorf("leader reports done while a follower's proxy NACKs: %+v", st.Acks)
		}
	})
	if v := w.Run(); len(v) > 0 {
		t.Fatalf("%v\n%s", v, w.s.Trace())
	}
	if !seen {
		t.Fatalf("the leader's answer never named the follower's NACKing proxy:\n%s", w.s.Trace())
	}
}
