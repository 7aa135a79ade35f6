package traffic_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	apiv1 "github.com/bgctl/bg/controlplane/api/v1"
	"github.com/bgctl/bg/controlplane/fleetmetrics"
	"github.com/bgctl/bg/controlplane/membership"
	"github.com/bgctl/bg/controlplane/model"
	"github.com/bgctl/bg/controlplane/release"
	"github.com/bgctl/bg/controlplane/releases"
	"github.com/bgctl/bg/controlplane/state/memstate"
	"github.com/bgctl/bg/controlplane/traffic"
)

// Releases through the controller with judged switches: the analysis
// harness (fake clock, fake Prometheus per service, a store that encodes
// as Consul's does, no proxies) and the release executor over it.

// byService is a fake Prometheus with its own fleets per service.
type byService map[string]*fakeFleets

func (s byService) Read(ctx context.Context, q fleetmetrics.Query) (fleetmetrics.Reading, error) {
	return s[q.Service].Read(ctx, q)
}

// chainServices: web calls api, api calls auth; search stands alone.
var chainServices = []string{"api", "auth", "search", "web"}

type releaseWorld struct {
	t    *testing.T
	rt   *fakeRuntime
	src  byService
	ctrl *traffic.Controller
	exec *releases.Executor
	rels *memstate.Store
	reg  *prometheus.Registry
}

func newReleaseWorld(t *testing.T) *releaseWorld {
	t.Helper()
	rt := newFakeRuntime(t)
	w := &releaseWorld{t: t, rt: rt, src: byService{}, rels: memstate.New(), reg: prometheus.NewRegistry()}
	var svcs []model.Service
	plans := map[string]model.Plan{}
	for i, name := range chainServices {
		svcs = append(svcs, model.Service{Name: name, ListenerPort: 10000 + i, Protocol: model.ProtocolHTTP1})
		plans[name] = judgedPlan()
		w.src[name] = newFakeFleets(rt, 1000, 0.01)
	}
	w.ctrl = traffic.New(svcs, "0.0.0.0", jsonStore{memstate.New()}, noProxies{}, quiet, traffic.NewMetrics(nil))
	w.ctrl.SetRuntime(rt)
	w.ctrl.SetAnalysis(w.src, plans)
	for _, name := range chainServices {
		w.ctrl.OnMembership(membership.Update{Service: name, Membership: webMembership()})
	}
	rt.Advance(0)
	if err := w.ctrl.LoadState(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := w.ctrl.Publish(); err != nil {
		t.Fatal(err)
	}
	w.exec = releases.New(w.ctrl, w.rels, releases.Options{
		Services: chainServices, Dependencies: map[string][]string{"web": {"api"}, "api": {"auth"}},
		MaxParallel: 4, Timeout: time.Second, Tick: time.Second, Runtime: rt, Log: quiet, Metrics: releases.NewMetrics(w.reg),
	})
	w.ctrl.SetReleaseGuard(w.exec.Guard)
	// Elected: the controller leads (its services loaded), then the
	// releases load.
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	w.exec.Lead(ctx)
	rt.Advance(0)
	if !w.exec.Leading() {
		t.Fatal("the executor does not lead")
	}
	return w
}

func (w *releaseWorld) stored(id string) release.Release {
	w.t.Helper()
	r, _, found, err := w.rels.LoadRelease(context.Background(), id)
	if err != nil || !found {
		w.t.Fatalf("release %s: %v %v", id, found, err)
	}
	return r
}

// run advances the clock a second at a time until the release ends (or
// limit passes), checking on the way that no member's switch runs before
// its providers are promoted, and returns the stored release.
func (w *releaseWorld) run(id string, limit time.Duration) release.Release {
	w.t.Helper()
	deps := map[string]string{"web": "api", "api": "auth"}
	for start := w.rt.Now(); w.rt.Now().Sub(start) < limit; {
		w.rt.Advance(time.Second)
		rel := w.stored(id)
		for consumer, provider := range deps {
			t, _ := w.ctrl.TrafficState(consumer)
			p, _ := rel.Find(provider)
			if t.Release == id && t.ProgressiveRunning() && t.Rollout.To == model.Green && p.Phase != release.MemberPromoted {
				w.t.Fatalf("%s switches while its provider %s is %s", consumer, provider, p.Phase)
			}
			// A provider goes back only once its consumer is back (or never moved).
			pt, _ := w.ctrl.TrafficState(provider)
			if c, _ := rel.Find(consumer); pt.Release == id && pt.Target == model.Blue && !c.Phase.Settled() {
				w.t.Fatalf("%s switched back while its consumer %s is %s", provider, consumer, c.Phase)
			}
		}
		if rel.Phase.Ended() {
			return rel
		}
	}
	rel := w.stored(id)
	w.t.Fatalf("release %s still %s after %s: %+v", id, rel.Phase, limit, rel.Members)
	return rel
}

func member(t *testing.T, rel release.Release, service string) release.Member {
	t.Helper()
	m, ok := rel.Find(service)
	if !ok {
		t.Fatalf("%s is not a member", service)
	}
	return m
}

// A 3-service chain web → api → auth plus an independent service, each
// judged on its own plan: auth and search switch together, then api once
// auth is promoted, then web once api is; the release ends promoted.
func TestReleaseOfJudgedChain(t *testing.T) {
	w := newReleaseWorld(t)
	st, err := w.exec.Start(context.Background(), apiv1.ReleaseRequest{Name: "checkout", All: true})
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(st.Order) != "[[auth search] [api] [web]]" {
		t.Fatalf("order %v", st.Order)
	}
	rel := w.run(st.Release.ID, 2*time.Minute)
	if rel.Phase != release.Promoted {
		t.Fatalf("release %s: %s", rel.Phase, rel.Reason)
	}
	auth, search, api, web := member(t, rel, "auth"), member(t, rel, "search"), member(t, rel, "api"), member(t, rel, "web")
	if !auth.StartedAt.Equal(search.StartedAt) || !auth.StartedAt.Equal(rel.StartedAt) {
		t.Errorf("level 0 did not start together at the start: auth %s, search %s, release %s", auth.StartedAt, search.StartedAt, rel.StartedAt)
	}
	if api.StartedAt.Before(auth.EndedAt) || web.StartedAt.Before(api.EndedAt) {
		t.Errorf("a consumer started before its provider was promoted: auth promoted %s, api started %s, promoted %s, web started %s",
			auth.EndedAt, api.StartedAt, api.EndedAt, web.StartedAt)
	}
	for _, m := range rel.Members {
		tr, _ := w.ctrl.TrafficState(m.Service)
		r := tr.Rollout
		if m.Phase != release.MemberPromoted || r == nil || r.ID != m.SwitchID || r.Phase != model.RolloutPromoted || tr.Release != rel.ID || tr.GreenPercent != 100 {
			t.Errorf("%s: member %s switch %s; service's rollout %+v, release %q, green %d%%", m.Service, m.Phase, m.SwitchID, r, tr.Release, tr.GreenPercent)
			continue
		}
		// Judged, step by step, on its own evidence: every step passed.
		if len(r.Verdicts) < len(r.Plan.Steps)-1 {
			t.Errorf("%s promoted after %d verdicts for %d steps (each step before the last is judged)", m.Service, len(r.Verdicts), len(r.Plan.Steps))
		}
		for _, v := range r.Verdicts {
			if v.Outcome != "pass" {
				t.Errorf("%s: verdict %+v", m.Service, v)
			}
		}
	}
	// Three levels, each one plan's duration: about 3 switches long, not 4.
	one := auth.EndedAt.Sub(auth.StartedAt)
	if total := rel.EndedAt.Sub(rel.StartedAt); total > 3*one+5*time.Second {
		t.Errorf("release took %s; one switch takes %s", total, one)
	}
	t.Logf("one switch %s, release %s", one, rel.EndedAt.Sub(rel.StartedAt))
}

// api's green fails 20 % of requests: its switch is rolled back by its
// analysis; web never starts; auth and search, promoted before, are rolled
// back after api's rollback is confirmed; the release ends rolled_back
// naming api; every service is back on blue.
func TestReleaseRolledBackWhenAMemberFails(t *testing.T) {
	w := newReleaseWorld(t)
	w.src["api"].set(model.Green, 0.2)
	st, err := w.exec.Start(context.Background(), apiv1.ReleaseRequest{Name: "checkout", All: true})
	if err != nil {
		t.Fatal(err)
	}
	rel := w.run(st.Release.ID, 2*time.Minute)
	if rel.Phase != release.RolledBack || rel.Member != "api" || rel.Cause != model.CauseAnalysisFailed {
		t.Fatalf("release %s, member %q, cause %q: %s", rel.Phase, rel.Member, rel.Cause, rel.Reason)
	}
	auth, search, api, web := member(t, rel, "auth"), member(t, rel, "search"), member(t, rel, "api"), member(t, rel, "web")
	if api.Phase != release.MemberRolledBack || api.Cause != model.CauseAnalysisFailed {
		t.Errorf("api: %s (%s) %s", api.Phase, api.Cause, api.Reason)
	}
	if web.Phase != release.MemberSkipped || !web.StartedAt.IsZero() {
		t.Errorf("web: %s, started %s", web.Phase, web.StartedAt)
	}
	if tr, _ := w.ctrl.TrafficState("web"); tr.LatestSwitchID() != "" || tr.Serving() != model.Blue {
		t.Errorf("web was switched: %+v", tr)
	}
	for _, m := range []release.Member{auth, search} {
		tr, _ := w.ctrl.TrafficState(m.Service)
		if m.Phase != release.MemberRolledBack || m.RollbackID == "" || tr.SwitchID != m.RollbackID || tr.Release != rel.ID || tr.Serving() != model.Blue {
			t.Errorf("%s: member %s, switch back %q; service's switch %q of %q, serving %q", m.Service, m.Phase, m.RollbackID, tr.SwitchID, tr.Release, tr.Serving())
		}
		// Rolled back after api's rollback was confirmed: consumers first.
		if m.EndedAt.Before(api.EndedAt) {
			t.Errorf("%s back at %s, before api at %s", m.Service, m.EndedAt, api.EndedAt)
		}
	}
	if tr, _ := w.ctrl.TrafficState("api"); tr.Rollout == nil || tr.Rollout.Phase != model.RolloutRolledBack || tr.Rollout.ConfirmedAt.IsZero() || tr.Serving() != model.Blue {
		t.Errorf("api: %+v", tr.Rollout)
	}
}
