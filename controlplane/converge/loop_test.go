package converge

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	apiv1 "github.com/bgctl/bg/controlplane/api/v1"
	"github.com/bgctl/bg/controlplane/config"
	"github.com/bgctl/bg/controlplane/model"
	"github.com/bgctl/bg/controlplane/release"
	"github.com/bgctl/bg/controlplane/state"
	"github.com/bgctl/bg/controlplane/state/memstate"
	"github.com/bgctl/bg/controlplane/traffic"
)

// fakeCtrl is a controller whose status the test sets; Switch records
// what it was asked and by whom.
type fakeCtrl struct {
	mu       sync.Mutex
	st       map[string]apiv1.Status
	switches []traffic.Request
	actors   []string
	err      error
}

func (f *fakeCtrl) Status(name string) (apiv1.Status, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	st, ok := f.st[name]
	if !ok {
		return st, traffic.ErrUnknownService
	}
	return st, nil
}

func (f *fakeCtrl) Switch(ctx context.Context, req traffic.Request) (traffic.Result, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.switches = append(f.switches, req)
	f.actors = append(f.actors, traffic.ActorFrom(ctx))
	if f.err != nil {
		return traffic.Result{}, f.err
	}
	st := f.st[req.Service]
	st.Phase, st.SwitchID = model.PhaseSwitching, "web@5"
	st.Switch = &model.Rollout{ID: "web@5", To: req.To, Phase: model.RolloutProgressing}
	f.st[req.Service] = st
	return traffic.Result{Status: st}, nil
}

func (f *fakeCtrl) set(name string, edit func(*apiv1.Status)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	st := f.st[name]
	edit(&st)
	f.st[name] = st
}

func members(vs ...string) apiv1.FleetStatus {
	fs := apiv1.FleetStatus{Healthy: len(vs)}
	for _, v := range vs {
		fs.Members = append(fs.Members, apiv1.Member{Version: v})
	}
	return fs
}

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func setup(t *testing.T, auto config.Auto) (*Loop, *fakeCtrl, *memstate.Store, *clock, context.Context) {
	t.Helper()
	ctrl := &fakeCtrl{st: map[string]apiv1.Status{"web": {
		Service: "web", Weights: apiv1.Weights{Blue: 100}, Stable: model.Blue, Phase: model.PhaseStable, SwitchID: "gen-1",
		Fleets: map[model.Color]apiv1.FleetStatus{model.Blue: members("v1", "v1"), model.Green: members()},
	}}}
	store := memstate.New()
	clk := &clock{t: t0}
	l := New(ctrl, store, Options{Auto: map[string]config.Auto{"web": auto}, Now: clk.now, Metrics: NewMetrics(nil)})
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	l.Lead(ctx)
	return l, ctrl, store, clk, traffic.WithActor(ctx, "ci (token deploy)")
}

// round runs one round and waits for a switch it started.
func round(l *Loop) {
	l.Round(context.Background())
	for {
		l.mu.Lock()
		busy := l.services["web"].starting
		l.mu.Unlock()
		if !busy {
			return
		}
		time.Sleep(time.Millisecond)
	}
}

func TestLoopConvergesOnceSettledAndRemembersFailure(t *testing.T) {
	l, ctrl, store, clk, ctx := setup(t, config.Auto{Enabled: true, Trigger: config.TriggerManual, Settle: 5 * time.Second})
	res, err := l.Desire(ctx, "web", apiv1.DesireRequest{Version: "v2", Reason: "deploy 42"})
	if err != nil || !res.Changed {
		t.Fatalf("Desire: %+v %v", res, err)
	}
	if res, err := l.Desire(ctx, "web", apiv1.DesireRequest{Version: "v2"}); err != nil || res.Changed {
		t.Fatalf("the same desire again changed something: %+v %v", res, err)
	}
	round(l)
	if c, _ := l.Get("web"); c.State != NoFleetRunsVersion || c.Desired.Actor != "ci (token deploy)" || c.Desired.Previous != "v1" {
		t.Fatalf("before green exists: %+v", c)
	}
	// Green members appear one by one.
	ctrl.set("web", func(st *apiv1.Status) { st.Fleets[model.Green] = members("v2") })
	round(l)
	if c, _ := l.Get("web"); c.State != WaitingForCapacity || c.Have != 1 || c.Want != 2 {
		t.Fatalf("one of two: %+v", c)
	}
	ctrl.set("web", func(st *apiv1.Status) { st.Fleets[model.Green] = members("v2", "v2") })
	round(l)
	clk.add(4 * time.Second)
	round(l)
	if c, _ := l.Get("web"); c.State != Settling || c.SettleLeft.D() != time.Second || len(ctrl.switches) != 0 {
		t.Fatalf("settling: %+v, %d switches", c, len(ctrl.switches))
	}
	clk.add(time.Second)
	round(l)
	if len(ctrl.switches) != 1 || ctrl.switches[0].To != model.Green || ctrl.switches[0].Instant || ctrl.actors[0] != Actor {
		t.Fatalf("switches %+v by %v", ctrl.switches, ctrl.actors)
	}
	all, _ := store.ListDesired(context.Background())
	if all["web"].Desired.Attempt != "web@5" {
		t.Fatalf("attempt not recorded: %+v", all["web"].Desired)
	}
	round(l)
	if c, _ := l.Get("web"); c.State != SwitchRunning || len(ctrl.switches) != 1 {
		t.Fatalf("while it runs: %+v, %d switches", c, len(ctrl.switches))
	}
	// The analysis rolls it back: remembered, never retried.
	ctrl.set("web", func(st *apiv1.Status) {
		st.Phase = model.PhaseRolledBack
		st.Switch.Phase, st.Switch.Reason = model.RolloutRolledBack, "error ratio 0.3"
	})
	for range 5 {
		clk.add(time.Minute)
		round(l)
	}
	all, _ = store.ListDesired(context.Background())
	if f := all["web"].Desired.Failed; f == nil || f.Cause != model.FailRolledBack || f.SwitchID != "web@5" {
		t.Fatalf("failure not remembered: %+v", all["web"].Desired)
	}
	if c, _ := l.Get("web"); c.State != Failed || c.Detail != "failed (rolled back: error ratio 0.3)" || len(ctrl.switches) != 1 {
		t.Fatalf("after the rollback: %+v, %d switches", c, len(ctrl.switches))
	}
	// --retry clears it: the switch starts again once settled.
	if res, err := l.Desire(ctx, "web", apiv1.DesireRequest{Retry: true}); err != nil || !res.Changed {
		t.Fatalf("retry: %+v %v", res, err)
	}
	round(l)
	clk.add(5 * time.Second)
	round(l)
	if len(ctrl.switches) != 2 {
		t.Fatalf("retry did not switch again: %d switches", len(ctrl.switches))
	}
}

func TestLoopAutoOffOnlyReports(t *testing.T) {
	l, ctrl, _, clk, ctx := setup(t, config.Auto{Trigger: config.TriggerManual, Settle: 0})
	if _, err := l.Desire(ctx, "web", apiv1.DesireRequest{Version: "v2"}); err != nil {
		t.Fatal(err)
	}
	ctrl.set("web", func(st *apiv1.Status) { st.Fleets[model.Green] = members("v2", "v2") })
	for range 3 {
		round(l)
		clk.add(time.Minute)
	}
	c, _ := l.Get("web")
	if len(ctrl.switches) != 0 || c.State != Start || c.Auto {
		t.Fatalf("auto off switched or misreported: %d switches, %+v", len(ctrl.switches), c)
	}
}

func TestLoopNotLeaderNeverActs(t *testing.T) {
	ctrl := &fakeCtrl{st: map[string]apiv1.Status{"web": {Weights: apiv1.Weights{Blue: 100}, Phase: model.PhaseStable,
		Fleets: map[model.Color]apiv1.FleetStatus{model.Blue: members("v1"), model.Green: members("v2")}}}}
	store := memstate.New()
	if _, err := store.SaveDesired(context.Background(), "web", model.Desired{Version: "v2", Actor: "ci", At: t0}, 0); err != nil {
		t.Fatal(err)
	}
	l := New(ctrl, store, Options{Auto: map[string]config.Auto{"web": {Enabled: true, Settle: 0}}, Now: func() time.Time { return t0 }})
	l.Round(context.Background())
	if len(ctrl.switches) != 0 {
		t.Fatal("a follower switched")
	}
	if c := l.Convergence("web"); c == nil || c.State != Start || c.Desired.Version != "v2" {
		t.Fatalf("a follower reports %+v", c)
	}
}

func TestLoopStartFailureBacksOff(t *testing.T) {
	l, ctrl, _, clk, ctx := setup(t, config.Auto{Enabled: true, Settle: 0})
	ctrl.err = traffic.ErrGateFailed
	if _, err := l.Desire(ctx, "web", apiv1.DesireRequest{Version: "v2"}); err != nil {
		t.Fatal(err)
	}
	ctrl.set("web", func(st *apiv1.Status) { st.Fleets[model.Green] = members("v2", "v2") })
	round(l)
	round(l)
	if len(ctrl.switches) != 1 {
		t.Fatalf("%d attempts within the backoff, want 1", len(ctrl.switches))
	}
	if c, _ := l.Get("web"); c.LastError == "" {
		t.Fatalf("the start failure is not shown: %+v", c)
	}
	clk.add(11 * time.Second)
	round(l)
	if len(ctrl.switches) != 2 {
		t.Fatalf("%d attempts after the backoff, want 2", len(ctrl.switches))
	}
}

func TestDesireRefusesBadInput(t *testing.T) {
	l, _, store, _, ctx := setup(t, config.Auto{Enabled: true})
	for _, req := range []apiv1.DesireRequest{
		{},                   // nothing
		{Version: "v 2"},     // charset
		{Version: "v2/../x"}, // charset
		{Retry: true},        // nothing to retry
		{Version: "v2", Reason: string(make([]byte, 501))},
	} {
		if _, err := l.Desire(ctx, "web", req); !errors.Is(err, ErrBadDesire) {
			t.Errorf("%+v: %v, want ErrBadDesire", req, err)
		}
	}
	if _, err := l.Desire(ctx, "nope", apiv1.DesireRequest{Version: "v2"}); !errors.Is(err, traffic.ErrUnknownService) {
		t.Errorf("unknown service: %v", err)
	}
	if _, err := l.Desire(ctx, "web", apiv1.DesireRequest{Version: "v2"}); err != nil {
		t.Fatal(err)
	}
	if _, err := l.Desire(ctx, "web", apiv1.DesireRequest{Version: "v3", Retry: true}); !errors.Is(err, ErrBadDesire) {
		t.Errorf("retry of a version not desired: %v", err)
	}
	all, _ := store.ListDesired(context.Background())
	if len(all) != 1 || all["web"].Desired.Version != "v2" || len(all["web"].Desired.Log) != 1 {
		t.Fatalf("refused desires changed the store: %+v", all)
	}
}

func TestVersionTrigger(t *testing.T) {
	l, ctrl, store, clk, _ := setup(t, config.Auto{Enabled: true, Trigger: config.TriggerVersion, Settle: 0})
	ctrl.set("web", func(st *apiv1.Status) { st.Fleets[model.Green] = members("v2", "v2") })
	round(l) // desires v2
	round(l) // switches
	all, _ := store.ListDesired(context.Background())
	if d := all["web"].Desired; d.Version != "v2" || d.Previous != "v1" || d.Actor != Actor+" (consul meta)" {
		t.Fatalf("trigger desired %+v", d)
	}
	if len(ctrl.switches) != 1 {
		t.Fatalf("%d switches", len(ctrl.switches))
	}
	// Promoted: green serves v2; blue still runs v1, which was replaced: never desired back.
	ctrl.set("web", func(st *apiv1.Status) {
		st.Phase, st.Weights = model.PhaseSwitched, apiv1.Weights{Green: 100}
		st.Switch.Phase = model.RolloutPromoted
	})
	for range 3 {
		clk.add(time.Minute)
		round(l)
	}
	all, _ = store.ListDesired(context.Background())
	if d := all["web"].Desired; d.Version != "v2" || len(ctrl.switches) != 1 {
		t.Fatalf("the old fleet was desired back: %+v, %d switches", d, len(ctrl.switches))
	}
	if c, _ := l.Get("web"); c.State != Converged {
		t.Fatalf("%+v", c)
	}
}

// fakeReleases starts releases and answers how they ended.
type fakeReleases struct {
	mu      sync.Mutex
	starts  []apiv1.ReleaseRequest
	actors  []string
	phase   release.Phase
	reason  string
	created time.Time
}

func (f *fakeReleases) Start(ctx context.Context, req apiv1.ReleaseRequest) (apiv1.ReleaseStatus, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.starts = append(f.starts, req)
	f.actors = append(f.actors, traffic.ActorFrom(ctx))
	f.phase = release.Running
	return apiv1.ReleaseStatus{Release: release.Release{ID: "converge-1", Phase: release.Running}}, nil
}

func (f *fakeReleases) Get(ctx context.Context, id string) (apiv1.ReleaseStatus, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return apiv1.ReleaseStatus{Release: release.Release{ID: id, Phase: f.phase, Reason: f.reason}}, nil
}

// List: the one release, with web and api, created at created.
func (f *fakeReleases) List(ctx context.Context) ([]apiv1.ReleaseStatus, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.created.IsZero() {
		return nil, nil
	}
	return []apiv1.ReleaseStatus{{Release: release.Release{ID: "converge-1", Name: "converge", Phase: f.phase, Reason: f.reason, CreatedAt: f.created,
		Members: []release.Member{{Service: "api"}, {Service: "web"}}}}}, nil
}

func TestGroupConvergesAsOneRelease(t *testing.T) {
	st := func(blue, green string, n int) apiv1.Status {
		var b, g []string
		for range n {
			b, g = append(b, blue), append(g, green)
		}
		return apiv1.Status{Weights: apiv1.Weights{Blue: 100}, Phase: model.PhaseStable,
			Fleets: map[model.Color]apiv1.FleetStatus{model.Blue: members(b...), model.Green: members(g...)}}
	}
	ctrl := &fakeCtrl{st: map[string]apiv1.Status{"web": st("v1", "v2", 2), "api": st("v6", "v7", 1)}}
	ctrl.set("api", func(s *apiv1.Status) { s.Fleets[model.Green] = members() }) // api's v7 is not deployed yet
	rels := &fakeReleases{}
	store := memstate.New()
	clk := &clock{t: t0}
	auto := config.Auto{Enabled: true, Settle: 5 * time.Second}
	l := New(ctrl, store, Options{Auto: map[string]config.Auto{"web": auto, "api": auto, "auth": auto}, Now: clk.now, Releases: rels})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	l.Lead(ctx)
	cctx := traffic.WithActor(ctx, "ci")

	for _, bad := range []apiv1.DesireSetRequest{{}, {Set: map[string]string{"web": "v2", "nope": "v1"}}, {Set: map[string]string{"web": "v 2"}}} {
		if _, err := l.DesireSet(cctx, bad); err == nil {
			t.Errorf("%+v accepted", bad)
		}
	}
	if all, _ := store.ListDesired(ctx); len(all) != 0 {
		t.Fatalf("refused sets stored %+v", all)
	}
	if _, err := l.DesireSet(cctx, apiv1.DesireSetRequest{Set: map[string]string{"web": "v2", "api": "v7"}, Reason: "checkout 2.0"}); err != nil {
		t.Fatal(err)
	}
	groundAll := func() {
		l.Round(ctx)
		for {
			l.mu.Lock()
			busy := l.services["web"].starting || l.services["api"].starting
			l.mu.Unlock()
			if !busy {
				return
			}
			time.Sleep(time.Millisecond)
		}
	}
	groundAll()
	clk.add(10 * time.Second)
	groundAll()
	// web is ready and settled, api has no v7 yet: web waits for it, alone it never switches.
	if c, _ := l.Get("web"); c.State != WaitingForGroup || !strings.Contains(c.Detail, "api: no idle fleet runs v7") || len(ctrl.switches) != 0 || len(rels.starts) != 0 {
		t.Fatalf("web: %+v; %d switches, %d releases", c, len(ctrl.switches), len(rels.starts))
	}
	ctrl.set("api", func(s *apiv1.Status) { s.Fleets[model.Green] = members("v7") })
	groundAll()
	clk.add(5 * time.Second)
	groundAll()
	if len(rels.starts) != 1 || fmt.Sprint(rels.starts[0].Services) != "[api web]" || rels.actors[0] != Actor || len(ctrl.switches) != 0 {
		t.Fatalf("releases %+v by %v; %d solo switches", rels.starts, rels.actors, len(ctrl.switches))
	}
	all, _ := store.ListDesired(ctx)
	if all["web"].Desired.Attempt != "release:converge-1" || all["api"].Desired.Attempt != "release:converge-1" {
		t.Fatalf("attempts not recorded: %+v", all)
	}
	// The release rolls back together: both remembered, no new release.
	rels.mu.Lock()
	rels.phase, rels.reason = release.RolledBack, "api failed: error ratio"
	rels.mu.Unlock()
	for range 3 {
		clk.add(time.Minute)
		groundAll()
	}
	all, _ = store.ListDesired(ctx)
	for _, m := range []string{"web", "api"} {
		if f := all[m].Desired.Failed; f == nil || f.Cause != model.FailRolledBack {
			t.Fatalf("%s: failure not remembered: %+v", m, all[m].Desired)
		}
	}
	if len(rels.starts) != 1 {
		t.Fatalf("the failed group was released again: %d", len(rels.starts))
	}
	// Retrying one member retries the group.
	if _, err := l.Desire(cctx, "web", apiv1.DesireRequest{Retry: true}); err != nil {
		t.Fatal(err)
	}
	all, _ = store.ListDesired(ctx)
	if all["api"].Desired.Failed != nil || all["web"].Desired.Failed != nil {
		t.Fatalf("retry left a member failed: %+v", all)
	}
	groundAll() // settles anew
	clk.add(5 * time.Second)
	groundAll()
	if len(rels.starts) != 2 {
		t.Fatalf("retry did not release again: %d", len(rels.starts))
	}
}

// faultyDesires is a store whose Consul fails once: the request that
// carries the nth key written (counting from 1). A leader lost, or Consul
// gone for a moment, in the middle of a desire; later requests succeed.
type faultyDesires struct {
	*memstate.Store
	mu        sync.Mutex
	keys, nth int
}

var errConsulGone = errors.New("consul: connection refused")

func (f *faultyDesires) fail(n int) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.nth > 0 && f.keys+n >= f.nth {
		f.nth = 0
		return true
	}
	f.keys += n
	return false
}

func (f *faultyDesires) SaveDesired(ctx context.Context, service string, d model.Desired, prev state.Index) (state.Index, error) {
	if f.fail(1) {
		return 0, errConsulGone
	}
	return f.Store.SaveDesired(ctx, service, d, prev)
}

func (f *faultyDesires) SaveDesiredSet(ctx context.Context, writes []state.DesiredWrite) (map[string]state.Index, error) {
	if f.fail(len(writes)) {
		return nil, errConsulGone
	}
	return f.Store.SaveDesiredSet(ctx, writes)
}

// TestDesireSetStoresAllOrNone attacks a set with a store that fails at
// its second key: nothing may be stored. A set stored in part is a smaller
// group, which the loop would release at once, out of the order the whole
// set was meant to go in (one write per service did exactly that: api was
// stored, web failed, and at the next rounds api was released alone).
func TestDesireSetStoresAllOrNone(t *testing.T) {
	st := func(blue, green string) apiv1.Status {
		return apiv1.Status{Weights: apiv1.Weights{Blue: 100}, Phase: model.PhaseStable,
			Fleets: map[model.Color]apiv1.FleetStatus{model.Blue: members(blue), model.Green: members(green)}}
	}
	ctrl := &fakeCtrl{st: map[string]apiv1.Status{"web": st("v1", "v2"), "api": st("v6", "v7")}}
	rels := &fakeReleases{}
	store := &faultyDesires{Store: memstate.New(), nth: 2}
	clk := &clock{t: t0}
	auto := config.Auto{Enabled: true, Settle: 5 * time.Second}
	l := New(ctrl, store, Options{Auto: map[string]config.Auto{"web": auto, "api": auto}, Now: clk.now, Releases: rels})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	l.Lead(ctx)
	cctx := traffic.WithActor(ctx, "ci")
	set := apiv1.DesireSetRequest{Set: map[string]string{"web": "v2", "api": "v7"}, Reason: "checkout 2.0"}
	_, err := l.DesireSet(cctx, set)
	if !errors.Is(err, errConsulGone) {
		t.Fatalf("DesireSet with Consul failing at its second key: %v, want the store's error", err)
	}
	if all, _ := store.ListDesired(ctx); len(all) != 0 {
		t.Fatalf("a failed set stored %d of its 2 services: %+v", len(all), all)
	}
	// settle runs a round, waits for what it started, then lets auto.settle
	// pass, n times. (The fake controller does not show a release running:
	// once one starts, more rounds would start it again.)
	settle := func(n int) {
		for range n {
			l.Round(ctx)
			for {
				l.mu.Lock()
				busy := l.services["web"].starting || l.services["api"].starting
				l.mu.Unlock()
				if !busy {
					break
				}
				time.Sleep(time.Millisecond)
			}
			clk.add(5 * time.Second)
		}
	}
	settle(4)
	if len(rels.starts) != 0 || len(ctrl.switches) != 0 {
		t.Fatalf("after a failed set: releases %+v, switches %+v; want none", rels.starts, ctrl.switches)
	}
	// The set again, stored whole, is one release of both.
	if _, err := l.DesireSet(cctx, set); err != nil {
		t.Fatal(err)
	}
	all, _ := store.ListDesired(ctx)
	if fmt.Sprint(all["web"].Desired.Group, all["api"].Desired.Group) != "[api web] [api web]" {
		t.Fatalf("stored %+v", all)
	}
	settle(2)
	if len(rels.starts) != 1 || fmt.Sprint(rels.starts[0].Services) != "[api web]" || len(ctrl.switches) != 0 {
		t.Fatalf("releases %+v, switches %+v; want one release of both", rels.starts, ctrl.switches)
	}
}

// TestDesireSetRefusesTooMany: more services than one transaction holds
// is refused before anything is read or written.
func TestDesireSetRefusesTooMany(t *testing.T) {
	l, _, store, _, ctx := setup(t, config.Auto{Enabled: true})
	set := map[string]string{}
	for i := range state.MaxDesiredSet + 1 {
		set[fmt.Sprintf("s%d", i)] = "v2"
	}
	if _, err := l.DesireSet(ctx, apiv1.DesireSetRequest{Set: set}); !errors.Is(err, ErrBadDesire) || !strings.Contains(err.Error(), "at most 63") {
		t.Fatalf("err = %v, want ErrBadDesire naming the limit", err)
	}
	if all, _ := store.ListDesired(ctx); len(all) != 0 {
		t.Fatalf("stored %+v", all)
	}
}

// Explicit commands take precedence: an abort clears a pending
// convergence, an explicit switch stops bg from undoing it; a new desire
// or a retry resumes.
func TestExplicitCommandsTakePrecedence(t *testing.T) {
	l, ctrl, store, clk, ctx := setup(t, config.Auto{Enabled: true, Settle: 5 * time.Second})
	if _, err := l.Desire(ctx, "web", apiv1.DesireRequest{Version: "v2"}); err != nil {
		t.Fatal(err)
	}
	ctrl.set("web", func(st *apiv1.Status) { st.Fleets[model.Green] = members("v2", "v2") })
	round(l) // settling
	if err := l.Aborted(traffic.WithActor(ctx, "ann"), "web", false); err != nil {
		t.Fatal(err)
	}
	clk.add(time.Minute)
	round(l)
	c, _ := l.Get("web")
	if len(ctrl.switches) != 0 || c.State != Failed || c.Detail != "failed (aborted: abort by ann)" {
		t.Fatalf("after an abort while settling: %d switches, %+v", len(ctrl.switches), c)
	}
	// A new version resumes; once converged, an explicit switch back is not undone.
	if _, err := l.Desire(ctx, "web", apiv1.DesireRequest{Version: "v2.1"}); err != nil {
		t.Fatal(err)
	}
	ctrl.set("web", func(st *apiv1.Status) {
		st.Weights, st.SwitchID = apiv1.Weights{Green: 100}, "gen-9"
		st.Fleets[model.Green] = members("v2.1", "v2.1")
	})
	round(l)
	if c, _ := l.Get("web"); c.State != Converged {
		t.Fatalf("%+v", c)
	}
	ctrl.set("web", func(st *apiv1.Status) { st.Weights = apiv1.Weights{Blue: 100} }) // the operator's switch back
	if err := l.Switched(traffic.WithActor(ctx, "bob"), "web"); err != nil {
		t.Fatal(err)
	}
	for range 3 {
		clk.add(time.Minute)
		round(l)
	}
	all, _ := store.ListDesired(context.Background())
	if f := all["web"].Desired.Failed; len(ctrl.switches) != 0 || f == nil || f.Cause != model.FailOverridden {
		t.Fatalf("bg undid an explicit switch: %d switches, %+v", len(ctrl.switches), all["web"].Desired)
	}
	if _, err := l.Desire(ctx, "web", apiv1.DesireRequest{Retry: true}); err != nil {
		t.Fatal(err)
	}
	round(l)
	clk.add(5 * time.Second)
	round(l)
	if len(ctrl.switches) != 1 {
		t.Fatalf("retry did not resume: %d switches", len(ctrl.switches))
	}
}

func TestEnded(t *testing.T) {
	promoted := &model.Rollout{ID: "gen-4", Phase: model.RolloutPromoted, StartedAt: t0}
	for _, c := range []struct {
		name string
		st   apiv1.Status
		want *Ended
	}{
		{"running", apiv1.Status{Phase: model.PhaseSwitching, SwitchID: "gen-4", Switch: &model.Rollout{ID: "gen-4", Phase: model.RolloutProgressing}}, nil},
		{"never switched", apiv1.Status{Phase: model.PhaseStable}, nil},
		{"promoted", apiv1.Status{Phase: model.PhaseSwitched, SwitchID: "gen-4", Switch: promoted}, &Ended{ID: "gen-4", Outcome: Promoted, Started: t0}},
		{"aborted back after it promoted", apiv1.Status{Phase: model.PhaseAborted, Reason: "abort by ann", SwitchID: "gen-4", Switch: promoted},
			&Ended{ID: "gen-4", Outcome: Aborted, Reason: "abort by ann", Started: t0}},
		{"rolled back", apiv1.Status{Phase: model.PhaseRolledBack, SwitchID: "gen-4", Switch: &model.Rollout{ID: "gen-4", Phase: model.RolloutRolledBack, Reason: "errors"}},
			&Ended{ID: "gen-4", Outcome: RolledBack, Reason: "errors"}},
		{"a roll completed", apiv1.Status{Phase: model.PhaseSwitched, SwitchID: "roll-3", Roll: &model.Roll{ID: "roll-3", Phase: model.RollCompleted}}, &Ended{ID: "roll-3", Outcome: Promoted}},
		{"an instant switch", apiv1.Status{Phase: model.PhaseSwitched, SwitchID: "gen-9", Switch: promoted}, &Ended{ID: "gen-9", Outcome: Promoted}},
	} {
		got := ended(c.st)
		if (got == nil) != (c.want == nil) || got != nil && *got != *c.want {
			t.Errorf("%s: ended = %+v, want %+v", c.name, got, c.want)
		}
	}
}

// A leader that died after recording its pending attempt and starting the
// switch, before learning its ID: its successor remembers the rollback.
func TestLoopRemembersPendingAttempt(t *testing.T) {
	l, ctrl, store, clk, _ := setup(t, config.Auto{Enabled: true, Settle: 0})
	pending := PendingAttempt(t0)
	if _, err := store.SaveDesired(context.Background(), "web", model.Desired{Version: "v2", Actor: "ci", At: t0, Attempt: pending}, 0); err != nil {
		t.Fatal(err)
	}
	ctrl.set("web", func(st *apiv1.Status) {
		st.Phase, st.SwitchID, st.Reason = model.PhaseRolledBack, "gen-3", "errors"
		st.Switch = &model.Rollout{ID: "gen-3", Phase: model.RolloutRolledBack, Reason: "errors", StartedAt: t0.Add(time.Second)}
		st.Fleets[model.Green] = members("v2", "v2")
	})
	clk.add(time.Minute)
	for range 3 {
		round(l)
	}
	all, _ := store.ListDesired(context.Background())
	if f := all["web"].Desired.Failed; f == nil || f.SwitchID != "gen-3" || len(ctrl.switches) != 0 {
		t.Fatalf("failure of a pending attempt: %+v, %d switches", all["web"].Desired, len(ctrl.switches))
	}
}

// A leader that died after recording the group's pending attempt and
// starting the release, before recording its ID: the successor finds the
// release created since and remembers its rollback.
func TestGroupRemembersPendingRelease(t *testing.T) {
	st := apiv1.Status{Weights: apiv1.Weights{Blue: 100}, Phase: model.PhaseStable,
		Fleets: map[model.Color]apiv1.FleetStatus{model.Blue: members("v1"), model.Green: members("v2")}}
	ctrl := &fakeCtrl{st: map[string]apiv1.Status{"web": st, "api": st}}
	ctrl.set("api", func(s *apiv1.Status) {
		s.Fleets = map[model.Color]apiv1.FleetStatus{model.Blue: members("v1"), model.Green: members("v2")}
	})
	rels := &fakeReleases{phase: release.RolledBack, reason: "api failed", created: t0.Add(time.Second)}
	store := memstate.New()
	pending := PendingAttempt(t0)
	for _, m := range []string{"api", "web"} {
		if _, err := store.SaveDesired(context.Background(), m, model.Desired{Version: "v2", Actor: "ci", At: t0, Group: []string{"api", "web"}, Attempt: pending}, 0); err != nil {
			t.Fatal(err)
		}
	}
	auto := config.Auto{Enabled: true}
	l := New(ctrl, store, Options{Auto: map[string]config.Auto{"web": auto, "api": auto}, Now: func() time.Time { return t0.Add(time.Minute) }, Releases: rels})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	l.Lead(ctx)
	for range 3 {
		l.Round(ctx)
	}
	all, _ := store.ListDesired(ctx)
	for _, m := range []string{"api", "web"} {
		if f := all[m].Desired.Failed; f == nil || f.Cause != model.FailRolledBack {
			t.Fatalf("%s: %+v", m, all[m].Desired)
		}
	}
	if len(rels.starts) != 0 {
		t.Fatalf("released again: %+v", rels.starts)
	}
}

// A reload's services reach the loop: an added service can be desired and
// converges with its auto settings, a removed one can no longer be
// desired, and turning auto on for a kept service takes effect.
func TestLoopFollowsReloadedServices(t *testing.T) {
	l, ctrl, _, clk, ctx := setup(t, config.Auto{Trigger: config.TriggerManual, Settle: 0}) // web: auto off
	ctrl.set("api", func(st *apiv1.Status) {
		*st = apiv1.Status{Service: "api", Weights: apiv1.Weights{Blue: 100}, Stable: model.Blue, Phase: model.PhaseStable, SwitchID: "gen-1",
			Fleets: map[model.Color]apiv1.FleetStatus{model.Blue: members("v1"), model.Green: members("v2")}}
	})
	if _, err := l.Desire(ctx, "api", apiv1.DesireRequest{Version: "v2"}); !errors.Is(err, ErrUnknownService) {
		t.Fatalf("a service not configured yet: %v", err)
	}
	l.SetServices(map[string]config.Auto{
		"web": {Enabled: true, Trigger: config.TriggerManual},
		"api": {Enabled: true, Trigger: config.TriggerManual},
	})
	for _, name := range []string{"web", "api"} {
		if _, err := l.Desire(ctx, name, apiv1.DesireRequest{Version: "v2"}); err != nil {
			t.Fatalf("desire %s after the reload: %v", name, err)
		}
	}
	ctrl.set("web", func(st *apiv1.Status) { st.Fleets[model.Green] = members("v2", "v2") })
	l.Round(context.Background())
	clk.add(time.Second)
	for range 3 {
		round(l)
		l.mu.Lock()
		busy := l.services["api"].starting
		l.mu.Unlock()
		for busy {
			time.Sleep(time.Millisecond)
			l.mu.Lock()
			busy = l.services["api"].starting
			l.mu.Unlock()
		}
	}
	if len(ctrl.switches) != 2 {
		t.Fatalf("after the reload turned auto on for web and added api: %d switches %+v", len(ctrl.switches), ctrl.switches)
	}
	l.SetServices(map[string]config.Auto{"web": {Enabled: true, Trigger: config.TriggerManual}})
	if _, err := l.Desire(ctx, "api", apiv1.DesireRequest{Version: "v3"}); !errors.Is(err, ErrUnknownService) {
		t.Fatalf("a removed service: %v", err)
	}
	if _, err := l.Get("api"); !errors.Is(err, ErrUnknownService) {
		t.Fatalf("Get of a removed service: %v", err)
	}
}

// countingDesires counts the reads of every desired state.
type countingDesires struct {
	state.Desires
	reads atomic.Int64
}

func (c *countingDesires) ListDesired(ctx context.Context) (map[string]state.StoredDesired, error) {
	c.reads.Add(1)
	return c.Desires.ListDesired(ctx)
}

// An idle loop reads nothing on its ticks (a thousand idle services cost
// no Consul request a second); a poke reads at once; a service settling
// is evaluated on every tick until it starts.
func TestRunTicksOnlyWhenTheClockMatters(t *testing.T) {
	ctrl := &fakeCtrl{st: map[string]apiv1.Status{"web": {
		Service: "web", Weights: apiv1.Weights{Blue: 100}, Stable: model.Blue, Phase: model.PhaseStable, SwitchID: "gen-1",
		Fleets: map[model.Color]apiv1.FleetStatus{model.Blue: members("v1", "v1"), model.Green: members("v2", "v2")},
	}}}
	store := &countingDesires{Desires: memstate.New()}
	l := New(ctrl, store, Options{Auto: map[string]config.Auto{"web": {Enabled: true, Trigger: config.TriggerManual, Settle: time.Hour}},
		Tick: 5 * time.Millisecond, Metrics: NewMetrics(nil)})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go l.Run(ctx)
	waitFor := func(what string, ok func() bool) {
		t.Helper()
		deadline := time.Now().Add(5 * time.Second)
		for !ok() {
			if time.Now().After(deadline) {
				t.Fatalf("%s: %d reads", what, store.reads.Load())
			}
			time.Sleep(time.Millisecond)
		}
	}
	waitFor("first round", func() bool { return store.reads.Load() >= 1 })
	time.Sleep(100 * time.Millisecond) // 20 ticks
	if n := store.reads.Load(); n != 1 {
		t.Fatalf("an idle loop read the desired states %d times in 20 ticks", n)
	}
	if n := l.wakes.Load(); n != 1 {
		t.Fatalf("an idle loop woke %d times in 20 ticks; want once to wait, no timer until a poke or the refresh", n-1)
	}
	l.Poke()
	waitFor("a poke", func() bool { return store.reads.Load() == 2 })
	// Desired v2, which green runs at capacity: settling for an hour.
	if _, err := l.Desire(traffic.WithActor(ctx, "ci"), "web", apiv1.DesireRequest{Version: "v2"}); err != nil {
		t.Fatal(err)
	}
	before := store.reads.Load()
	waitFor("ticks while settling", func() bool { return store.reads.Load() >= before+10 })
	if c, _ := l.Get("web"); c.State != Settling {
		t.Fatalf("state %s, want settling", c.State)
	}
}
