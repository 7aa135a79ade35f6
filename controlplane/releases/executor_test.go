package releases_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	apiv1 "github.com/bgctl/bg/controlplane/api/v1"
	"github.com/bgctl/bg/controlplane/membership"
	"github.com/bgctl/bg/controlplane/model"
	"github.com/bgctl/bg/controlplane/release"
	"github.com/bgctl/bg/controlplane/releases"
	"github.com/bgctl/bg/controlplane/state"
	"github.com/bgctl/bg/controlplane/state/memstate"
	"github.com/bgctl/bg/controlplane/traffic"
	"github.com/bgctl/bg/controlplane/window"
	"github.com/bgctl/bg/controlplane/xds"
)

// chain: web calls api, api calls auth; search stands alone.
var chain = rigOptions{
	services: []string{"api", "auth", "search", "web"},
	deps:     map[string][]string{"web": {"api"}, "api": {"auth"}},
	groups:   map[string][]string{"checkout": {"web", "api", "auth"}},
}

func with(o rigOptions, edit func(*rigOptions)) rigOptions {
	edit(&o)
	return o
}

// Services that cannot be judged switch instantly, providers first: a
// level's members together, the next level once they are promoted.
func TestReleasePromotedInOrder(t *testing.T) {
	r := newRig(t, chain)
	ctx := context.Background()
	if v := metric(t, r.reg, "bg_releases_total", map[string]string{"outcome": "promoted"}); v != 0 {
		t.Fatalf("bg_releases_total{promoted} = %v before any release, want 0", v)
	}
	st, err := r.exec.Start(ctx, apiv1.ReleaseRequest{Name: "checkout", Services: []string{"web", "api", "auth", "search"}})
	if err != nil {
		t.Fatal(err)
	}
	if st.Release.ID != "checkout-1" || st.Release.Phase != release.Running || fmt.Sprint(st.Order) != "[[auth search] [api] [web]]" {
		t.Fatalf("started: %s %s order %v", st.Release.ID, st.Release.Phase, st.Order)
	}
	if st.Weights["web"] != (apiv1.Weights{Blue: 100}) {
		t.Fatalf("weights %v", st.Weights)
	}
	r.rt.Advance(0)
	want := []string{"switch auth green", "switch search green", "switch api green", "switch web green"}
	if got := r.rec.Calls(); !slices.Equal(got, want) {
		t.Fatalf("switches %v, want %v", got, want)
	}
	rel := r.stored("checkout-1")
	if rel.Phase != release.Promoted || rel.EndedAt.IsZero() {
		t.Fatalf("release %s, want promoted", rel.Phase)
	}
	for _, m := range rel.Members {
		tr := r.traffic(m.Service)
		if m.Phase != release.MemberPromoted || m.SwitchID != tr.SwitchID || tr.Release != "checkout-1" || tr.Serving() != model.Green {
			t.Errorf("%s: member %s switch %q; service serves %q, switch %q of %q", m.Service, m.Phase, m.SwitchID, tr.Serving(), tr.SwitchID, tr.Release)
		}
	}
	if v := metric(t, r.reg, "bg_releases_total", map[string]string{"outcome": "promoted"}); v != 1 {
		t.Fatalf("bg_releases_total{promoted} = %v, want 1", v)
	}
	// Ended: its members are free again, and its series are gone.
	if _, err := r.ctrl.Switch(ctx, traffic.Request{Service: "web", Instant: true, Timeout: time.Second}); err != nil {
		t.Fatalf("switch after the release ended: %v", err)
	}
	if v := metric(t, r.reg, "bg_release_members", map[string]string{"release": "checkout-1"}); !isNaN(v) {
		t.Fatalf("an ended release still exports its members: %v", v)
	}
	// A group release takes the group's name and services; the next ID of
	// a name counts on.
	r.rt.Advance(time.Second)
	st, err = r.exec.Start(ctx, apiv1.ReleaseRequest{Group: "checkout"})
	if err != nil || st.Release.ID != "checkout-2" || len(st.Release.Members) != 3 {
		t.Fatalf("group release: %+v %v", st.Release, err)
	}
	r.rt.Advance(0)
	if rel := r.stored("checkout-2"); rel.Phase != release.Promoted {
		t.Fatalf("group release %s", rel.Phase)
	}
	all, err := r.exec.List(ctx)
	if err != nil || len(all) != 2 || all[0].Release.ID != "checkout-2" || all[1].Release.ID != "checkout-1" {
		t.Fatalf("list (newest first): %v", err)
	}
}

func isNaN(v float64) bool { return v != v }

// A member whose start is refused fails the release: nothing else starts,
// and the promoted members go back, consumers before providers.
func TestFailingMemberRollsTheOthersBack(t *testing.T) {
	r := newRig(t, with(chain, func(o *rigOptions) { o.emptyGreen = []string{"api"} }))
	if _, err := r.exec.Start(context.Background(), apiv1.ReleaseRequest{Name: "checkout", Services: []string{"web", "api", "auth", "search"}}); err != nil {
		t.Fatal(err)
	}
	r.rt.Advance(0)
	want := []string{"switch auth green", "switch search green", "switch api green", "back auth blue", "back search blue"}
	if got := r.rec.Calls(); !slices.Equal(got, want) {
		t.Fatalf("calls %v, want %v", got, want)
	}
	rel := r.stored("checkout-1")
	if rel.Phase != release.RolledBack || rel.Member != "api" || rel.Cause != release.CauseStartRefused || !strings.Contains(rel.Reason, "no passing instances") {
		t.Fatalf("release %s member %q cause %q reason %q", rel.Phase, rel.Member, rel.Cause, rel.Reason)
	}
	for s, p := range map[string]release.MemberPhase{"auth": release.MemberRolledBack, "search": release.MemberRolledBack, "api": release.MemberSkipped, "web": release.MemberSkipped} {
		if got := phaseOf(rel, s); got != p {
			t.Errorf("%s: %s, want %s", s, got, p)
		}
		if tr := r.traffic(s); tr.Serving() != model.Blue {
			t.Errorf("%s serves %q", s, tr.Serving())
		}
	}
	if m, _ := rel.Find("auth"); m.RollbackID == "" || m.RollbackID != r.traffic("auth").SwitchID {
		t.Errorf("auth's switch back %q, service's latest %q", m.RollbackID, r.traffic("auth").SwitchID)
	}
	if v := metric(t, r.reg, "bg_releases_total", map[string]string{"outcome": "rolled_back"}); v != 1 {
		t.Fatalf("bg_releases_total{rolled_back} = %v", v)
	}
}

// Pause, resume and abort by hand; the members belong to the release
// meanwhile, and its members are exported by phase.
func TestPauseResumeAbort(t *testing.T) {
	r := newRig(t, rigOptions{services: []string{"a", "b"}, deps: map[string][]string{"b": {"a"}}, progressive: []string{"a", "b"}})
	ctx := context.Background()
	st, err := r.exec.Start(ctx, apiv1.ReleaseRequest{Name: "rel", Services: []string{"a", "b"}})
	if err != nil {
		t.Fatal(err)
	}
	r.rt.Advance(3 * time.Second)
	rel := r.stored(st.Release.ID)
	if phaseOf(rel, "a") != release.MemberSwitching || phaseOf(rel, "b") != release.MemberWaiting || r.traffic("a").Rollout == nil {
		t.Fatalf("after the start: a %s, b %s", phaseOf(rel, "a"), phaseOf(rel, "b"))
	}
	for phase, want := range map[string]float64{"switching": 1, "waiting": 1, "promoted": 0} {
		if v := metric(t, r.reg, "bg_release_members", map[string]string{"release": "rel-1", "phase": phase}); v != want {
			t.Errorf("bg_release_members{phase=%s} = %v, want %v", phase, v, want)
		}
	}
	for svc, phase := range map[string]string{"a": "switching", "b": "waiting"} {
		if v := metric(t, r.reg, "bg_release_member_phase", map[string]string{"release": "rel-1", "service": svc, "phase": phase}); v != 1 {
			t.Errorf("bg_release_member_phase{service=%s,phase=%s} = %v, want 1", svc, phase, v)
		}
	}
	// Exclusivity: by hand, nothing; the error names the release.
	for _, op := range []func(context.Context, traffic.Request) (traffic.Result, error){r.ctrl.Switch, r.ctrl.Abort, r.ctrl.Promote} {
		if _, err := op(ctx, traffic.Request{Service: "a", Timeout: time.Second}); !errors.Is(err, traffic.ErrInRelease) || !strings.Contains(err.Error(), "rel-1") {
			t.Fatalf("a command on a member: %v", err)
		}
	}
	if _, err := r.ctrl.Switch(ctx, traffic.Request{Service: "b", Instant: true}); !errors.Is(err, traffic.ErrInRelease) {
		t.Fatalf("switch of a waiting member: %v", err)
	}
	// Another release of a member is refused, naming the release.
	if _, err := r.exec.Start(ctx, apiv1.ReleaseRequest{Name: "other", Services: []string{"b"}}); !errors.Is(err, traffic.ErrInRelease) || !strings.Contains(err.Error(), "rel-1") {
		t.Fatalf("a second release of b: %v", err)
	}

	if st, err = r.exec.Pause(ctx, "rel-1", apiv1.ReleaseCommand{}); err != nil || st.Release.Phase != release.Paused {
		t.Fatalf("pause: %s %v", st.Release.Phase, err)
	}
	if st, err = r.exec.Resume(ctx, "rel-1", apiv1.ReleaseCommand{}); err != nil || st.Release.Phase != release.Running {
		t.Fatalf("resume: %s %v", st.Release.Phase, err)
	}
	if st, err = r.exec.Abort(ctx, "rel-1", apiv1.ReleaseCommand{Reason: "INC-42"}); err != nil || st.Release.Phase != release.RollingBack {
		t.Fatalf("abort: %s %v", st.Release.Phase, err)
	}
	r.rt.Advance(0)
	rel = r.stored("rel-1")
	if rel.Phase != release.Aborted || rel.Reason != "INC-42" || phaseOf(rel, "a") != release.MemberAborted || phaseOf(rel, "b") != release.MemberSkipped {
		t.Fatalf("after the abort: %s (%q), a %s, b %s", rel.Phase, rel.Reason, phaseOf(rel, "a"), phaseOf(rel, "b"))
	}
	if tr := r.traffic("a"); tr.Rollout.Phase != model.RolloutAborted || tr.Serving() != model.Blue || !strings.Contains(tr.Reason, "release rel-1") {
		t.Fatalf("a after the abort: %s, serving %q, %q", tr.Rollout.Phase, tr.Serving(), tr.Reason)
	}
	if got := r.rec.Calls(); !slices.Equal(got, []string{"switch a green", "abort a"}) {
		t.Fatalf("calls %v", got)
	}
	if v := metric(t, r.reg, "bg_releases_total", map[string]string{"outcome": "aborted"}); v != 1 {
		t.Fatalf("bg_releases_total{aborted} = %v", v)
	}
	// Commands on an ended or unknown release.
	if _, err := r.exec.Pause(ctx, "rel-1", apiv1.ReleaseCommand{}); !errors.Is(err, release.ErrEnded) {
		t.Fatalf("pause of an ended release: %v", err)
	}
	if _, err := r.exec.Abort(ctx, "rel-9", apiv1.ReleaseCommand{}); !errors.Is(err, releases.ErrUnknownRelease) {
		t.Fatalf("abort of an unknown release: %v", err)
	}
	if _, err := r.exec.Get(ctx, "rel-9"); !errors.Is(err, releases.ErrUnknownRelease) {
		t.Fatalf("get of an unknown release: %v", err)
	}
	if got, err := r.exec.Get(ctx, "rel-1"); err != nil || got.Release.Phase != release.Aborted {
		t.Fatalf("get: %v", err)
	}
}

func TestStartRefusals(t *testing.T) {
	r := newRig(t, with(chain, func(o *rigOptions) { o.progressive = []string{"search"} }))
	ctx := context.Background()
	// search switches alone.
	if _, err := r.ctrl.Switch(ctx, traffic.Request{Service: "search", To: model.Green, Timeout: time.Second}); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name string
		req  apiv1.ReleaseRequest
		is   error
		has  string
	}{
		{"no services", apiv1.ReleaseRequest{Name: "x"}, releases.ErrBadRequest, "services, all or group"},
		{"two ways", apiv1.ReleaseRequest{Name: "x", All: true, Group: "checkout"}, releases.ErrBadRequest, "one way"},
		{"no name", apiv1.ReleaseRequest{Services: []string{"web"}}, releases.ErrBadRequest, "name: required"},
		{"bad name", apiv1.ReleaseRequest{Name: "Check/Out", Services: []string{"web"}}, releases.ErrBadRequest, "lowercase"},
		{"unknown service", apiv1.ReleaseRequest{Name: "x", Services: []string{"web", "cart"}}, traffic.ErrUnknownService, `"cart" (services[1])`},
		{"service twice", apiv1.ReleaseRequest{Name: "x", Services: []string{"web", "web"}}, releases.ErrBadRequest, "listed twice"},
		{"unknown group", apiv1.ReleaseRequest{Group: "billing"}, releases.ErrBadRequest, `"billing" is not a configured release group`},
		{"negative max_parallel", apiv1.ReleaseRequest{Name: "x", Services: []string{"web"}, MaxParallel: -1}, releases.ErrBadRequest, "max_parallel"},
		{"bad colour", apiv1.ReleaseRequest{Name: "x", Services: []string{"web"}, To: "red"}, releases.ErrBadRequest, "to:"},
		{"forced without a reason", apiv1.ReleaseRequest{Name: "x", Services: []string{"web"}, Force: true}, traffic.ErrNeedsReason, "overrides"},
		{"a member switching", apiv1.ReleaseRequest{Name: "x", All: true}, traffic.ErrBusy, "search is switching (switch gen-2 to green"},
		{"already on the colour", apiv1.ReleaseRequest{Name: "x", Services: []string{"web"}, To: "blue"}, traffic.ErrBadPlan, "web already serves all of its traffic on blue"},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := r.exec.Start(ctx, c.req)
			if !errors.Is(err, c.is) || !strings.Contains(err.Error(), c.has) {
				t.Fatalf("%v, want %v with %q", err, c.is, c.has)
			}
		})
	}
	if all, _ := r.exec.List(ctx); len(all) != 0 || len(r.rec.Calls()) != 0 {
		t.Fatalf("a refused release was stored or started something: %d, %v", len(all), r.rec.Calls())
	}
	// Not leading: refused (the API forwards commands to the leader).
	r.stop()
	waitDeposed(t, r)
	if _, err := r.exec.Start(ctx, apiv1.ReleaseRequest{Name: "x", Services: []string{"web"}}); !errors.Is(err, state.ErrNotLeader) {
		t.Fatalf("start on a deposed replica: %v", err)
	}
}

// A release starts only when every member's window allows it (unless
// forced), and the refusal names who blocks and until when. A window
// that closes mid-release holds the member until it opens.
func TestReleaseWindows(t *testing.T) {
	r := newRig(t, rigOptions{services: []string{"a", "b"}, deps: map[string][]string{"b": {"a"}}, progressive: []string{"a"}})
	ctx := context.Background()
	freeze := func(from, to time.Time) *window.Schedule {
		s, err := window.Parse(window.Spec{TimeZone: "UTC", Freeze: []window.Freeze{{From: from.Format(time.RFC3339), To: to.Format(time.RFC3339), Reason: "year-end"}}})
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	now := r.rt.Now()
	r.ctrl.SetWindows(map[string]*window.Schedule{"b": freeze(now.Add(-time.Hour), now.Add(time.Hour))})
	_, err := r.exec.Start(ctx, apiv1.ReleaseRequest{Name: "rel", Services: []string{"a", "b"}})
	if !errors.Is(err, traffic.ErrWindowClosed) || !strings.Contains(err.Error(), `b (freeze "year-end"`) || !strings.Contains(err.Error(), "closed until "+now.Add(time.Hour).Format(time.RFC3339)) {
		t.Fatalf("start in b's freeze: %v", err)
	}
	// Open at the start; b's window closes while a switches.
	r.ctrl.SetWindows(nil)
	if _, err := r.exec.Start(ctx, apiv1.ReleaseRequest{Name: "rel", Services: []string{"a", "b"}}); err != nil {
		t.Fatal(err)
	}
	r.rt.Advance(time.Second)
	r.ctrl.SetWindows(map[string]*window.Schedule{"b": freeze(now, now.Add(2*time.Hour))})
	// a is promoted (as its plan would).
	if _, err := r.ctrl.Promote(ctx, traffic.Request{Service: "a", Force: true, Reason: "test", Release: "rel-1", Timeout: time.Second}); err != nil {
		t.Fatal(err)
	}
	r.rt.Advance(2 * time.Second)
	rel := r.stored("rel-1")
	m, _ := rel.Find("b")
	if phaseOf(rel, "a") != release.MemberPromoted || m.Phase != release.MemberWaiting || m.Window == nil || !m.Window.Until.Equal(now.Add(2*time.Hour)) {
		t.Fatalf("b held by its window: a %s, b %+v", phaseOf(rel, "a"), m)
	}
	r.rt.Advance(2 * time.Hour)
	if rel = r.stored("rel-1"); rel.Phase != release.Promoted || r.traffic("b").Serving() != model.Green {
		t.Fatalf("after the window opened: %s, b serves %q", rel.Phase, r.traffic("b").Serving())
	}
	// Forced: windows do not hold it, and the reason is recorded once.
	r.ctrl.SetWindows(map[string]*window.Schedule{"a": freeze(r.rt.Now(), r.rt.Now().Add(time.Hour))})
	st, err := r.exec.Start(ctx, apiv1.ReleaseRequest{Name: "rel", Services: []string{"a", "b"}, Force: true, Reason: "INC-7"})
	if err != nil {
		t.Fatal(err)
	}
	r.rt.Advance(0)
	if rel := r.stored(st.Release.ID); rel.Phase != release.Promoted || !rel.Force || rel.ForceReason != "INC-7" || r.traffic("a").Rollout != nil {
		t.Fatalf("forced release: %s force %v %q; a's rollout %+v (a forced switch is instant)", rel.Phase, rel.Force, rel.ForceReason, r.traffic("a").Rollout)
	}
}

// A new leader resumes a stored release where it was: a start decided
// but not carried out is carried out; one carried out but not observed is
// adopted, not started twice.
func TestNewLeaderResumes(t *testing.T) {
	for _, started := range []bool{false, true} {
		t.Run(fmt.Sprintf("switch started %v", started), func(t *testing.T) {
			r := newRig(t, chain)
			ctx := context.Background()
			r.stop() // the old leader dies
			r.rt.Advance(0)
			waitDeposed(t, r)
			// It had stored the release with auth starting.
			planned, err := release.New("checkout-1", "checkout", []release.Spec{
				{Service: "auth", From: model.Blue, To: model.Green, Base: r.traffic("auth").LatestSwitchID()},
				{Service: "api", DependsOn: []string{"auth"}, From: model.Blue, To: model.Green},
			}, 4, r.rt.Now())
			if err != nil {
				t.Fatal(err)
			}
			running, _, err := release.Decide(planned, release.Start{Now: r.rt.Now()})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := r.rels.SaveRelease(ctx, running, 0); err != nil {
				t.Fatal(err)
			}
			if started { // ... and started auth's switch, but died before observing it
				r.ctrl.SetReleaseGuard(nil)
				if _, err := r.ctrl.Switch(ctx, traffic.Request{Service: "auth", To: model.Green, Instant: true, Release: "checkout-1"}); err != nil {
					t.Fatal(err)
				}
			}
			calls := len(r.rec.Calls())
			r.exec = r.newExecutor(chain)
			nctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			r.exec.Lead(nctx)
			r.rt.Advance(time.Second)
			rel := r.stored("checkout-1")
			if rel.Phase != release.Promoted {
				t.Fatalf("resumed release %s: %+v", rel.Phase, rel.Members)
			}
			want := []string{"switch auth green", "switch api green"}
			if started {
				want = want[1:]
			}
			if got := r.rec.Calls()[calls:]; !slices.Equal(got, want) {
				t.Fatalf("the new leader asked for %v, want %v", got, want)
			}
		})
	}
}

func waitDeposed(t *testing.T, r *rig) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for r.exec.Leading() {
		if time.Now().After(deadline) {
			t.Fatal("the executor was not deposed")
		}
		time.Sleep(time.Millisecond)
	}
}

// failingStore fails every release write while failing is set.
type failingStore struct {
	state.Releases
	failing bool
}

func (f *failingStore) SaveRelease(ctx context.Context, r release.Release, prev state.Index) (state.Index, error) {
	if f.failing {
		return 0, errors.New("consul: connection refused")
	}
	return f.Releases.SaveRelease(ctx, r, prev)
}

// Persist first: a decision that cannot be stored is not carried out.
func TestNothingRunsUnlessStored(t *testing.T) {
	fs := &failingStore{Releases: memstate.New()}
	r := newRig(t, rigOptions{services: []string{"a", "b"}, progressive: []string{"a", "b"}, rels: fs})
	ctx := context.Background()
	fs.failing = true
	if _, err := r.exec.Start(ctx, apiv1.ReleaseRequest{Name: "rel", Services: []string{"a"}}); err == nil || !strings.Contains(err.Error(), "nothing was started") {
		t.Fatalf("start while the store fails: %v", err)
	}
	r.rt.Advance(time.Second)
	if len(r.rec.Calls()) != 0 {
		t.Fatalf("a release that was not stored started %v", r.rec.Calls())
	}
	fs.failing = false
	if _, err := r.exec.Start(ctx, apiv1.ReleaseRequest{Name: "rel", Services: []string{"a"}}); err != nil {
		t.Fatal(err)
	}
	r.rt.Advance(time.Second)
	fs.failing = true
	if _, err := r.exec.Abort(ctx, "rel-1", apiv1.ReleaseCommand{}); err == nil || !strings.Contains(err.Error(), "nothing was carried out") {
		t.Fatalf("abort while the store fails: %v", err)
	}
	r.rt.Advance(3 * time.Second)
	if got := r.rec.Calls(); !slices.Equal(got, []string{"switch a green"}) || r.traffic("a").Rollout.Phase != model.RolloutProgressing {
		t.Fatalf("an abort that was not stored was carried out: %v", got)
	}
	fs.failing = false
	if _, err := r.exec.Abort(ctx, "rel-1", apiv1.ReleaseCommand{}); err != nil {
		t.Fatal(err)
	}
	r.rt.Advance(0)
	if rel := r.stored("rel-1"); rel.Phase != release.Aborted || r.traffic("a").Serving() != model.Blue {
		t.Fatalf("after the abort: %s", rel.Phase)
	}
}

// A stateful member switches by a roll; when the release fails after it
// completed, it goes back by a roll too (an instant switch would move
// every session at once), and counts as back once that roll completes.
func TestStatefulMemberGoesBackByARoll(t *testing.T) {
	rt := newFakeRuntime(t)
	store := memstate.New()
	kv := model.Service{Name: "kv", ListenerPort: 10000, Protocol: model.ProtocolHTTP2, Strategy: model.StrategyRolling, Affinity: model.Affinity{Header: "x-session"}}
	web := model.Service{Name: "web", ListenerPort: 10001, Protocol: model.ProtocolHTTP1}
	ctrl := traffic.New([]model.Service{kv, web}, "0.0.0.0", store, xds.NewServer(quiet, nil), quiet, traffic.NewMetrics(nil))
	ctrl.SetRuntime(rt)
	ctrl.SetRolling(map[string]model.RollParams{"kv": {MaxUnavailable: 1, MinAvailable: 1, ReplaceTimeout: model.Duration(time.Minute), Interval: model.Duration(time.Second)}})
	ctrl.OnMembership(membership.Update{Service: "kv", Membership: model.Membership{
		Blue: model.Fleet{Endpoints: []model.Endpoint{
			{ID: "kv-b1", Address: "10.0.0.1", Port: 8080, Weight: 1, Slot: "s1"}, {ID: "kv-b2", Address: "10.0.0.2", Port: 8080, Weight: 1, Slot: "s2"}}},
		Green: model.Fleet{Endpoints: []model.Endpoint{
			{ID: "kv-g1", Address: "10.0.1.1", Port: 8080, Weight: 1, Slot: "s1"}, {ID: "kv-g2", Address: "10.0.1.2", Port: 8080, Weight: 1, Slot: "s2"}}},
	}})
	ctrl.OnMembership(membership.Update{Service: "web", Membership: fleets("web", false)}) // web's green is empty: its start is refused
	rt.Advance(0)
	if err := ctrl.LoadState(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := ctrl.Publish(); err != nil {
		t.Fatal(err)
	}
	rec := &recorder{Controller: ctrl}
	e := releases.New(rec, store, releases.Options{Services: []string{"kv", "web"}, Dependencies: map[string][]string{"web": {"kv"}},
		Timeout: time.Second, Tick: time.Second, Runtime: rt, Log: quiet})
	ctrl.SetReleaseGuard(e.Guard)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	e.Lead(ctx)
	rt.Advance(0)
	if _, err := e.Start(ctx, apiv1.ReleaseRequest{Name: "rel", All: true}); err != nil {
		t.Fatal(err)
	}
	var rel release.Release
	for i := 0; i < 120; i++ {
		rt.Advance(time.Second)
		r, _, _, err := store.LoadRelease(ctx, "rel-1")
		if err != nil {
			t.Fatal(err)
		}
		if rel = r; rel.Phase.Ended() {
			break
		}
	}
	kvm, _ := rel.Find("kv")
	tr, _ := ctrl.TrafficState("kv")
	if rel.Phase != release.RolledBack || rel.Member != "web" || kvm.Phase != release.MemberRolledBack {
		t.Fatalf("release %s (member %q), kv %s; calls %v", rel.Phase, rel.Member, kvm.Phase, rec.Calls())
	}
	if tr.Roll == nil || tr.Roll.ID != kvm.RollbackID || tr.Roll.To != model.Blue || tr.Roll.Phase != model.RollCompleted || tr.Release != "rel-1" || tr.Serving() != model.Blue {
		t.Fatalf("kv went back by %+v (switch %q of %q), serving %q", tr.Roll, tr.SwitchID, tr.Release, tr.Serving())
	}
	if got := rec.Calls(); !slices.Equal(got, []string{"switch kv green", "switch web green", "back kv blue"}) {
		t.Fatalf("calls %v", got)
	}
}

// A release reacts to its members' changes as they happen, not on its
// next tick: the next level starts within milliseconds of its provider's
// promotion, and a member's failure takes the others back as soon as the
// failing switch is back and confirmed. The clock moves 50 ms after each
// change; the next tick is 700 ms away.
func TestReleaseReactsWithoutWaitingForATick(t *testing.T) {
	r := newRig(t, rigOptions{services: []string{"a", "b", "c"}, deps: map[string][]string{"b": {"a"}, "c": {"b"}}, progressive: []string{"a", "b", "c"}})
	ctx := context.Background()
	if _, err := r.exec.Start(ctx, apiv1.ReleaseRequest{Name: "rel", Services: []string{"a", "b", "c"}}); err != nil {
		t.Fatal(err)
	}
	r.rt.Advance(300 * time.Millisecond) // 700 ms before the release's next tick
	if rel := r.stored("rel-1"); phaseOf(rel, "a") != release.MemberSwitching || phaseOf(rel, "b") != release.MemberWaiting {
		t.Fatalf("after the start: a %s, b %s", phaseOf(rel, "a"), phaseOf(rel, "b"))
	}
	// a is promoted (as its plan would): b starts at once.
	promoted := r.rt.Now()
	if _, err := r.ctrl.Promote(ctx, traffic.Request{Service: "a", Force: true, Reason: "test", Release: "rel-1", Timeout: time.Second}); err != nil {
		t.Fatal(err)
	}
	r.rt.Advance(50 * time.Millisecond)
	rel := r.stored("rel-1")
	a, _ := rel.Find("a")
	b, _ := rel.Find("b")
	if a.Phase != release.MemberPromoted || b.Phase != release.MemberSwitching || r.traffic("b").Rollout == nil {
		t.Fatalf("50 ms after a's promotion: a %s, b %s; calls %v", a.Phase, b.Phase, r.rec.Calls())
	}
	if lag := b.StartedAt.Sub(promoted); lag > 50*time.Millisecond {
		t.Fatalf("b started %v after a's promotion", lag)
	}
	// b's switch is aborted (tagged with the release, as its own abort would
	// be): the release fails at once and a goes back once b's flip back is
	// confirmed, without a tick.
	r.rt.Advance(250 * time.Millisecond) // 700 ms before the next tick again
	failed := r.rt.Now()
	if _, err := r.ctrl.Abort(ctx, traffic.Request{Service: "b", Release: "rel-1", Reason: "test", Timeout: time.Second}); err != nil {
		t.Fatal(err)
	}
	r.rt.Advance(50 * time.Millisecond)
	rel = r.stored("rel-1")
	if rel.Phase != release.RolledBack || rel.Member != "b" || phaseOf(rel, "a") != release.MemberRolledBack || phaseOf(rel, "c") != release.MemberSkipped {
		t.Fatalf("50 ms after b's abort: %s (member %q), a %s, c %s; calls %v", rel.Phase, rel.Member, phaseOf(rel, "a"), phaseOf(rel, "c"), r.rec.Calls())
	}
	if lag := rel.EndedAt.Sub(failed); lag > 50*time.Millisecond || r.traffic("a").Serving() != model.Blue {
		t.Fatalf("rolled back %v after b's abort; a serves %q", lag, r.traffic("a").Serving())
	}
	if got, want := r.rec.Calls(), []string{"switch a green", "switch b green", "back a blue"}; !slices.Equal(got, want) {
		t.Fatalf("calls %v, want %v", got, want)
	}
}

// Ended releases beyond release.keep are deleted, oldest first, when a
// release ends and when a term begins; a running release never is, the
// history lists what is kept, and a pruned release's ID is never given
// again.
func TestPruneEndedReleases(t *testing.T) {
	o := rigOptions{services: []string{"a", "b", "c"}, progressive: []string{"a"}, keep: 2}
	r := newRig(t, o)
	ctx := context.Background()
	start := func(name string, services ...string) string {
		t.Helper()
		st, err := r.exec.Start(ctx, apiv1.ReleaseRequest{Name: name, Services: services})
		if err != nil {
			t.Fatal(err)
		}
		r.rt.Advance(time.Second)
		return st.Release.ID
	}
	history := func(want ...string) {
		t.Helper()
		all, err := r.exec.List(ctx)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, st := range all {
			got = append(got, st.Release.ID)
		}
		if !slices.Equal(got, want) {
			t.Fatalf("stored releases (newest first) %v, want %v", got, want)
		}
	}
	start("run", "a") // a's switch runs to the end of the test: the oldest, running
	start("x", "b")   // b to green: promoted at once
	start("x", "b")   // and back
	history("x-2", "x-1", "run-1")
	start("x", "b")
	history("x-3", "x-2", "run-1") // x-1 pruned; run-1 is older but running
	if _, err := r.exec.Get(ctx, "x-1"); !errors.Is(err, releases.ErrUnknownRelease) {
		t.Fatalf("a pruned release: %v", err)
	}
	start("y", "c")
	start("z", "c")
	history("z-1", "y-1", "run-1") // every x pruned
	if id := start("x", "b"); id != "x-4" {
		t.Fatalf("the next x is %s, want x-4: a pruned ID is never given again", id)
	}
	history("x-4", "z-1", "run-1")
	if rel := r.stored("run-1"); rel.Phase != release.Running {
		t.Fatalf("run-1 %s", rel.Phase)
	}
	// A new term with keep 1 prunes when it begins.
	r.stop()
	waitDeposed(t, r)
	o.keep = 1
	r.exec = r.newExecutor(o)
	nctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	r.exec.Lead(nctx)
	r.rt.Advance(0)
	history("x-4", "run-1")
}
