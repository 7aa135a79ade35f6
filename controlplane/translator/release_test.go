package translator

import (
	"regexp"
	"testing"
	"time"

	route "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	typev3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"
	"github.com/envoyproxy/go-control-plane/pkg/cache/types"
	"google.golang.org/protobuf/proto"

	"github.com/bgctl/bg/controlplane/model"
)

var releasePools = []model.Pool{
	{Header: "x-bg-pool", Value: "staff"},
	{Cookie: "beta", Value: "1"},
}

// releaseTraffic is a progressive switch from blue to green running at its
// first step (5 %).
func releaseTraffic() model.Traffic {
	return model.Traffic{
		Stable: model.Blue, Target: model.Green, GreenPercent: 5, Phase: model.PhaseSwitching, Generation: 8,
		Rollout: &model.Rollout{
			ID: "web@7", From: model.Blue, To: model.Green, Phase: model.RolloutProgressing, Step: 0,
			StepSince: rollStart, StartedAt: rollStart,
			Plan: model.Plan{
				Steps: []int{5, 25, 100}, Bake: model.Duration(time.Minute),
				Interval:    model.Duration(10 * time.Second),
				MinRequests: 100, Confidence: 0.95, Margin: 1,
				UnavailableBudget: model.Duration(time.Minute), OnUnavailable: model.OnUnavailableRollback,
				InsufficientBudget: model.Duration(5 * time.Minute), OnInsufficient: model.OnUnavailableRollback,
				Rollback: model.RollbackInstant,
			},
		},
	}
}

// releaseView is sampleView with web mid-switch to green, two pools and 10 %
// mirroring; api stays as it was.
func releaseView() model.View {
	v := sampleView(5)
	v.Services[0].Service.Pools = releasePools
	v.Services[0].Service.MirrorPercent = 10
	v.Services[0].Traffic = releaseTraffic()
	return v
}

func releaseService() model.Service { return releaseView().Services[0].Service }

func routeNames(rc *route.RouteConfiguration) []string {
	var names []string
	for _, r := range rc.GetVirtualHosts()[0].GetRoutes() {
		names = append(names, r.GetName())
	}
	return names
}

func splitRoute(t *testing.T, rc *route.RouteConfiguration) *route.Route {
	t.Helper()
	rs := rc.GetVirtualHosts()[0].GetRoutes()
	last := rs[len(rs)-1]
	if last.GetName() != "split" {
		t.Fatalf("last route is %q, want split", last.GetName())
	}
	return last
}

func equalStrings(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestReleaseViewIsValid(t *testing.T) {
	for _, sv := range releaseView().Services {
		if err := sv.Traffic.Validate(); err != nil {
			t.Fatalf("%s: %v", sv.Service.Name, err)
		}
	}
	if c := releaseTraffic().Candidate(); c != model.Green {
		t.Fatalf("candidate = %q, want green", c)
	}
}

func TestGoldenEnvoyFlavourRelease(t *testing.T) {
	r := Translate(releaseView())
	checkGolden(t, "envoy-release.golden.json", golden(t, map[string]map[string]types.Resource{
		"clusters": r.Clusters, "endpoints": r.Endpoints, "routes": r.Routes,
		"listeners": r.Listeners[model.FlavourEnvoy],
	}))
}

func TestGoldenGRPCFlavourRelease(t *testing.T) {
	r := Translate(releaseView())
	checkGolden(t, "grpc-release.golden.json", golden(t, map[string]map[string]types.Resource{
		"clusters": r.Clusters, "endpoints": r.Endpoints, "routes": r.Routes,
		"listeners": r.Listeners[model.FlavourGRPC],
	}))
}

func TestReleaseResourcesValidate(t *testing.T) {
	preview := releaseView()
	preview.Services[0].Traffic = model.Traffic{Stable: model.Blue, Phase: model.PhaseStable, Generation: 3, Preview: model.Green}
	for i, v := range []model.View{releaseView(), preview} {
		r := Translate(v)
		for _, group := range []map[string]types.Resource{r.Clusters, r.Endpoints, r.Routes, r.Listeners[model.FlavourEnvoy], r.Listeners[model.FlavourGRPC]} {
			for name, res := range group {
				validateDeep(t, name, res)
			}
		}
		if n := len(r.Routes["web"].(*route.RouteConfiguration).GetVirtualHosts()[0].GetRoutes()); n != 5 {
			t.Errorf("view %d: web has %d routes, want 5", i, n)
		}
	}
}

func TestReleaseRouteLayout(t *testing.T) {
	rc := ServiceRoute(releaseService(), releaseTraffic())
	want := []string{"pin-blue", "pin-green", "pool-0", "pool-1", "split"}
	if got := routeNames(rc); !equalStrings(got, want) {
		t.Fatalf("routes = %v, want %v", got, want)
	}
	rs := rc.GetVirtualHosts()[0].GetRoutes()
	for _, r := range rs[2:4] {
		if c := r.GetRoute().GetCluster(); c != "web-green" {
			t.Errorf("%s goes to %q, want web-green", r.GetName(), c)
		}
		if p := r.GetMatch().GetPrefix(); p != "/" {
			t.Errorf("%s prefix = %q", r.GetName(), p)
		}
		if len(r.GetRoute().GetRequestMirrorPolicies()) != 0 {
			t.Errorf("%s is mirrored", r.GetName())
		}
	}
	h := rs[2].GetMatch().GetHeaders()
	if len(h) != 1 || h[0].GetName() != "x-bg-pool" || h[0].GetStringMatch().GetExact() != "staff" {
		t.Errorf("pool-0 headers = %v", h)
	}
	h = rs[3].GetMatch().GetHeaders()
	if len(h) != 1 || h[0].GetName() != "cookie" || h[0].GetStringMatch().GetSafeRegex().GetRegex() != cookieRegex("beta", "1") {
		t.Errorf("pool-1 headers = %v", h)
	}
	for _, r := range rs[:2] {
		if len(r.GetRoute().GetRequestMirrorPolicies()) != 0 {
			t.Errorf("%s is mirrored", r.GetName())
		}
	}
	mp := splitRoute(t, rc).GetRoute().GetRequestMirrorPolicies()
	if len(mp) != 1 || mp[0].GetCluster() != "web-green" ||
		mp[0].GetRuntimeFraction().GetDefaultValue().GetNumerator() != 10 ||
		mp[0].GetRuntimeFraction().GetDefaultValue().GetDenominator() != typev3.FractionalPercent_HUNDRED {
		t.Errorf("split mirror policies = %v", mp)
	}
}

// Without a candidate the route is exactly the plain one.
func TestReleaseOffWithoutCandidate(t *testing.T) {
	s := releaseService()
	plain := model.Service{Name: s.Name, ListenerPort: s.ListenerPort, Protocol: s.Protocol}
	for name, tr := range map[string]model.Traffic{
		"initial":  model.InitialTraffic(),
		"switched": {Stable: model.Blue, Target: model.Green, GreenPercent: 100, Phase: model.PhaseSwitched, Generation: 9},
		"ended": func() model.Traffic {
			tr := releaseTraffic()
			tr.Rollout.Phase, tr.Phase, tr.GreenPercent = model.RolloutPromoted, model.PhaseSwitched, 100
			return tr
		}(),
	} {
		if err := tr.Validate(); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if tr.Candidate() != "" {
			t.Fatalf("%s: candidate %q", name, tr.Candidate())
		}
		if got, want := ServiceRoute(s, tr), ServiceRoute(plain, tr); !proto.Equal(got, want) {
			t.Errorf("%s: route with pools = %v, want %v", name, got, want)
		}
	}
}

// A rolling service replaces hosts in place: no pools, no mirror.
func TestReleaseOffWhenRolling(t *testing.T) {
	s := rollingView(0).Services[0].Service
	plain := s
	s.Pools, s.MirrorPercent = releasePools, 10
	for _, tr := range []model.Traffic{
		rollingView(0).Services[0].Traffic,
		{Stable: model.Blue, Phase: model.PhaseStable, Generation: 2, Preview: model.Green},
	} {
		if got, want := ServiceRoute(s, tr), ServiceRoute(plain, tr); !proto.Equal(got, want) {
			t.Errorf("rolling route = %v, want %v", routeNames(got), routeNames(want))
		}
	}
}

func TestReleaseNoMirrorAtFullShare(t *testing.T) {
	tr := releaseTraffic()
	tr.Rollout.Step, tr.GreenPercent = 2, 100
	if err := tr.Validate(); err != nil {
		t.Fatal(err)
	}
	rc := ServiceRoute(releaseService(), tr)
	if mp := splitRoute(t, rc).GetRoute().GetRequestMirrorPolicies(); len(mp) != 0 {
		t.Errorf("mirrored at 100 %%: %v", mp)
	}
	// Pools still hold while the switch runs.
	if got, want := routeNames(rc), []string{"pin-blue", "pin-green", "pool-0", "pool-1", "split"}; !equalStrings(got, want) {
		t.Errorf("routes = %v, want %v", got, want)
	}
	// And no mirror when the service does not ask for one.
	s := releaseService()
	s.MirrorPercent = 0
	if mp := splitRoute(t, ServiceRoute(s, releaseTraffic())).GetRoute().GetRequestMirrorPolicies(); len(mp) != 0 {
		t.Errorf("mirrored with MirrorPercent 0: %v", mp)
	}
}

func TestReleasePreview(t *testing.T) {
	tr := model.Traffic{Stable: model.Blue, Phase: model.PhaseStable, Generation: 3, Preview: model.Green}
	if err := tr.Validate(); err != nil {
		t.Fatal(err)
	}
	rc := ServiceRoute(releaseService(), tr)
	if got, want := routeNames(rc), []string{"pin-blue", "pin-green", "pool-0", "pool-1", "split"}; !equalStrings(got, want) {
		t.Fatalf("routes = %v, want %v", got, want)
	}
	for _, r := range rc.GetVirtualHosts()[0].GetRoutes()[2:4] {
		if c := r.GetRoute().GetCluster(); c != "web-green" {
			t.Errorf("%s goes to %q, want web-green", r.GetName(), c)
		}
	}
	split := splitRoute(t, rc).GetRoute()
	for _, w := range split.GetWeightedClusters().GetClusters() {
		if want := map[string]uint32{"web-blue": 100, "web-green": 0}[w.GetName()]; w.GetWeight().GetValue() != want {
			t.Errorf("%s weight = %d, want %d", w.GetName(), w.GetWeight().GetValue(), want)
		}
	}
	if mp := split.GetRequestMirrorPolicies(); len(mp) != 1 || mp[0].GetCluster() != "web-green" {
		t.Errorf("preview mirror policies = %v", mp)
	}
}

func TestCookieRegex(t *testing.T) {
	re := regexp.MustCompile(`^(?:` + cookieRegex("beta", "1") + `)$`)
	for _, h := range []string{"beta=1", "a=b; beta=1", "beta=1; a=b", "a=b;beta=1;c=d"} {
		if !re.MatchString(h) {
			t.Errorf("%q does not match", h)
		}
	}
	for _, h := range []string{"beta=10", "xbeta=1", "a=beta=1", "beta=", "", "a=b; beta=2"} {
		if re.MatchString(h) {
			t.Errorf("%q matches", h)
		}
	}
	// Metacharacters in names and values are literal.
	re = regexp.MustCompile(`^(?:` + cookieRegex("a.b", "x+y") + `)$`)
	if !re.MatchString("a.b=x+y") || re.MatchString("aXb=xxy") {
		t.Error("cookie name or value not quoted")
	}
}
