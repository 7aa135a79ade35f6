package translator

import (
	"testing"
	"time"

	cluster "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	endpoint "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	listener "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	statefulsession "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/stateful_session/v3"
	hcm "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	"github.com/envoyproxy/go-control-plane/pkg/cache/types"
	"github.com/envoyproxy/go-control-plane/pkg/wellknown"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"

	"github.com/bgctl/bg/controlplane/model"
)

var rollStart = time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)

// rollingView has two stateful services: cart is mid-roll from blue to green
// (slot s1 baking, s2 draining, s3 pending); ledger is rolling by strategy but
// not rolling now, and has header affinity only. step moves the roll on:
// 0 is the state above, 1 has s2 baking and s3 draining.
func rollingView(step int) model.View {
	slots := []model.Slot{
		{Key: "s1", Old: "cart-blue-1", New: "cart-green-1", State: model.SlotBaking, Since: rollStart},
		{Key: "s2", Old: "cart-blue-2", New: "cart-green-2", State: model.SlotDraining, Since: rollStart},
		{Key: "s3", Old: "cart-blue-3", State: model.SlotPending, Since: rollStart},
	}
	green := []model.Endpoint{
		{ID: "cart-green-1", Node: "n4", Address: "10.0.3.1", Port: 8080, Weight: 1, Version: "v2", Slot: "s1"},
		{ID: "cart-green-2", Node: "n5", Address: "10.0.3.2", Port: 8080, Weight: 1, Version: "v2", Slot: "s2"},
	}
	if step >= 1 {
		slots[1].State = model.SlotBaking
		slots[2].State, slots[2].New = model.SlotDraining, "cart-green-3"
		green = append(green, model.Endpoint{ID: "cart-green-3", Node: "n6", Address: "10.0.3.3", Port: 8080, Weight: 1, Version: "v2", Slot: "s3"})
	}
	roll := &model.Roll{
		ID: "roll-1", From: model.Blue, To: model.Green, Phase: model.RollRolling, Slots: slots, StartedAt: rollStart,
		Params: model.RollParams{MaxUnavailable: 1, MinAvailable: 2, DrainTimeout: model.Duration(time.Minute),
			Bake: model.Duration(time.Minute), ReplaceTimeout: model.Duration(5 * time.Minute), Interval: model.Duration(time.Second)},
	}
	return model.View{
		EnvoyListenAddress: "0.0.0.0",
		Services: []model.ServiceView{{
			Service: model.Service{
				Name: "cart", ListenerPort: 10002, Protocol: model.ProtocolHTTP1,
				Strategy: model.StrategyRolling, Affinity: model.Affinity{Header: "x-session", Cookie: "bg-session"},
			},
			Membership: model.Membership{
				Blue: model.Fleet{Endpoints: []model.Endpoint{
					{ID: "cart-blue-1", Node: "n1", Address: "10.0.2.1", Port: 8080, Weight: 1, Version: "v1", Slot: "s1"},
					{ID: "cart-blue-2", Node: "n2", Address: "10.0.2.2", Port: 8080, Weight: 2, Version: "v1", Slot: "s2"},
					{ID: "cart-blue-3", Node: "n3", Address: "10.0.2.3", Port: 8080, Weight: 1, Version: "v1", Slot: "s3"},
				}},
				Green: model.Fleet{Endpoints: green},
			},
			Traffic: model.Traffic{Stable: model.Blue, Target: model.Green, Phase: model.PhaseSwitching, Generation: 12, Roll: roll},
		}, {
			Service: model.Service{
				Name: "ledger", ListenerPort: 10003, Protocol: model.ProtocolHTTP2,
				Strategy: model.StrategyRolling, Affinity: model.Affinity{Header: "x-account"},
			},
			Membership: model.Membership{Blue: model.Fleet{Endpoints: []model.Endpoint{
				{ID: "ledger-blue-1", Address: "10.0.4.1", Port: 9090, Weight: 1, Version: "v1"}, // no slot: keyed by ID
				{ID: "ledger-blue-2", Address: "10.0.4.2", Port: 9090, Weight: 1, Version: "v1", Slot: "l2"},
			}}},
			Traffic: model.InitialTraffic(),
		}},
	}
}

func TestRollingViewIsValid(t *testing.T) {
	for step := range 2 {
		for _, sv := range rollingView(step).Services {
			if err := sv.Traffic.Validate(); err != nil {
				t.Fatalf("step %d %s: %v", step, sv.Service.Name, err)
			}
		}
	}
}

func TestGoldenEnvoyFlavourRolling(t *testing.T) {
	r := Translate(rollingView(0))
	checkGolden(t, "envoy-rolling.golden.json", golden(t, map[string]map[string]types.Resource{
		"clusters": r.Clusters, "endpoints": r.Endpoints, "routes": r.Routes,
		"listeners": r.Listeners[model.FlavourEnvoy],
	}))
}

func TestGoldenGRPCFlavourRolling(t *testing.T) {
	r := Translate(rollingView(0))
	checkGolden(t, "grpc-rolling.golden.json", golden(t, map[string]map[string]types.Resource{
		"clusters": r.Clusters, "endpoints": r.Endpoints, "routes": r.Routes,
		"listeners": r.Listeners[model.FlavourGRPC],
	}))
}

// validateDeep runs Envoy's proto validation on a resource and on every
// typed config packed inside its listeners, which ValidateAll does not open.
func validateDeep(t *testing.T, name string, res types.Resource) {
	t.Helper()
	validate := func(what string, m proto.Message) {
		t.Helper()
		v, ok := m.(interface{ ValidateAll() error })
		if !ok {
			t.Fatalf("%s: %s has no validator", name, what)
		}
		if err := v.ValidateAll(); err != nil {
			t.Errorf("%s: %s: %v", name, what, err)
		}
	}
	unpack := func(a *anypb.Any) proto.Message {
		t.Helper()
		m, err := a.UnmarshalNew()
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		validate(a.GetTypeUrl(), m)
		return m
	}
	validate("resource", res)
	l, ok := res.(*listener.Listener)
	if !ok {
		return
	}
	var cms []*anypb.Any
	if api := l.GetApiListener(); api != nil {
		cms = append(cms, api.GetApiListener())
	}
	for _, fc := range l.GetFilterChains() {
		for _, f := range fc.GetFilters() {
			cms = append(cms, f.GetTypedConfig())
		}
	}
	for _, a := range cms {
		for _, f := range unpack(a).(*hcm.HttpConnectionManager).GetHttpFilters() {
			if ss, ok := unpack(f.GetTypedConfig()).(*statefulsession.StatefulSession); ok {
				unpack(ss.GetSessionState().GetTypedConfig())
			}
		}
	}
}

func TestRollingResourcesValidate(t *testing.T) {
	for step := range 2 {
		r := Translate(rollingView(step))
		for _, group := range []map[string]types.Resource{r.Clusters, r.Endpoints, r.Routes, r.Listeners[model.FlavourEnvoy], r.Listeners[model.FlavourGRPC]} {
			for name, res := range group {
				validateDeep(t, name, res)
			}
		}
	}
	// The blue-green sample's packed configs too.
	r := Translate(sampleView(25))
	for _, group := range []map[string]types.Resource{r.Listeners[model.FlavourEnvoy], r.Listeners[model.FlavourGRPC]} {
		for name, res := range group {
			validateDeep(t, name, res)
		}
	}
}

// A roll step must be an EDS change only, and only of the From colour's cluster.
func TestRollStepChangesOnlyEndpoints(t *testing.T) {
	a, b := Translate(rollingView(0)), Translate(rollingView(1))
	same := func(kind string, x, y map[string]types.Resource) {
		t.Helper()
		if len(x) != len(y) {
			t.Errorf("%s: %d resources became %d", kind, len(x), len(y))
		}
		for n := range x {
			if !proto.Equal(x[n], y[n]) {
				t.Errorf("%s %s changed on a roll step", kind, n)
			}
		}
	}
	same("cluster", a.Clusters, b.Clusters)
	same("route", a.Routes, b.Routes)
	same("envoy listener", a.Listeners[model.FlavourEnvoy], b.Listeners[model.FlavourEnvoy])
	same("grpc listener", a.Listeners[model.FlavourGRPC], b.Listeners[model.FlavourGRPC])
	if proto.Equal(a.Endpoints["cart-blue"], b.Endpoints["cart-blue"]) {
		t.Error("cart-blue endpoints did not change on a roll step")
	}
	for _, n := range []string{"ledger-blue", "ledger-green"} {
		if !proto.Equal(a.Endpoints[n], b.Endpoints[n]) {
			t.Errorf("%s changed on another service's roll step", n)
		}
	}
}

// hosts maps an EDS endpoint's hostname to its health and ring-hash key.
func hosts(cla *endpoint.ClusterLoadAssignment) map[string][2]string {
	out := map[string][2]string{}
	for _, loc := range cla.GetEndpoints() {
		for _, lb := range loc.GetLbEndpoints() {
			key := lb.GetMetadata().GetFilterMetadata()["envoy.lb"].GetFields()["hash_key"].GetStringValue()
			out[lb.GetEndpoint().GetHostname()] = [2]string{lb.GetHealthStatus().String(), key}
		}
	}
	return out
}

func TestRollingEndpoints(t *testing.T) {
	r := Translate(rollingView(0))
	blue := r.Endpoints["cart-blue"].(*endpoint.ClusterLoadAssignment)
	want := map[string][2]string{
		"cart-green-1": {"HEALTHY", "s1"},  // baking: old host gone, replacement in its place
		"cart-blue-2":  {"DRAINING", "s2"}, // draining: keeps its sessions, gets no new ones
		"cart-green-2": {"HEALTHY", "s2"},
		"cart-blue-3":  {"HEALTHY", "s3"}, // pending
	}
	if got := hosts(blue); !mapsEqual(got, want) {
		t.Errorf("cart-blue hosts = %v, want %v", got, want)
	}
	for _, lb := range blue.GetEndpoints()[0].GetLbEndpoints() {
		if lb.GetLoadBalancingWeight().GetValue() < 1 {
			t.Errorf("%s: weight < 1", lb.GetEndpoint().GetHostname())
		}
	}
	// The To colour's cluster keeps its plain fleet, keyed too.
	green := r.Endpoints["cart-green"].(*endpoint.ClusterLoadAssignment)
	if got, want := hosts(green), (map[string][2]string{"cart-green-1": {"HEALTHY", "s1"}, "cart-green-2": {"HEALTHY", "s2"}}); !mapsEqual(got, want) {
		t.Errorf("cart-green hosts = %v, want %v", got, want)
	}
	ledger := r.Endpoints["ledger-blue"].(*endpoint.ClusterLoadAssignment)
	if got, want := hosts(ledger), (map[string][2]string{"ledger-blue-1": {"HEALTHY", "ledger-blue-1"}, "ledger-blue-2": {"HEALTHY", "l2"}}); !mapsEqual(got, want) {
		t.Errorf("ledger-blue hosts = %v, want %v", got, want)
	}
	// Blue-green endpoints carry no metadata: their golden files must not move.
	for _, lb := range LoadAssignment("web", model.Blue, sampleView(0).Services[0].Membership.Blue).GetEndpoints()[0].GetLbEndpoints() {
		if lb.GetMetadata() != nil {
			t.Errorf("blue-green endpoint has metadata %v", lb.GetMetadata())
		}
	}
}

func mapsEqual(a, b map[string][2]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

func TestRollingCluster(t *testing.T) {
	cl := Cluster(rollingView(0).Services[0].Service, model.Blue)
	if cl.GetLbPolicy() != cluster.Cluster_RING_HASH {
		t.Errorf("lb_policy = %v", cl.GetLbPolicy())
	}
	// grpc-go NACKs any other hash function.
	if rh := cl.GetRingHashLbConfig(); rh == nil || rh.GetHashFunction() != cluster.Cluster_RingHashLbConfig_XX_HASH {
		t.Errorf("ring_hash_lb_config = %v", rh)
	}
	got := cl.GetCommonLbConfig().GetOverrideHostStatus().GetStatuses()
	if len(got) != 2 || got[0] != core.HealthStatus_HEALTHY || got[1] != core.HealthStatus_DRAINING {
		t.Errorf("override_host_status = %v", got)
	}
}

func TestRollingRoute(t *testing.T) {
	rc := ServiceRoute(rollingView(0).Services[0].Service, model.InitialTraffic())
	for _, r := range rc.GetVirtualHosts()[0].GetRoutes() {
		hp := r.GetRoute().GetHashPolicy()
		if len(hp) != 2 || hp[0].GetHeader().GetHeaderName() != "x-session" || !hp[0].GetTerminal() ||
			hp[1].GetCookie().GetName() != "bg-session" || hp[1].GetCookie().GetTtl() == nil || hp[1].GetCookie().GetPath() != "/" {
			t.Errorf("route %s: hash_policy = %v", r.GetName(), hp)
		}
	}
	// Route (blue-green) has no hash policy.
	for _, r := range Route("web", model.InitialTraffic()).GetVirtualHosts()[0].GetRoutes() {
		if len(r.GetRoute().GetHashPolicy()) != 0 {
			t.Errorf("blue-green route %s has hash_policy", r.GetName())
		}
	}
	// Header only: one policy, not terminal.
	hp := ServiceRoute(rollingView(0).Services[1].Service, model.InitialTraffic()).GetVirtualHosts()[0].GetRoutes()[2].GetRoute().GetHashPolicy()
	if len(hp) != 1 || hp[0].GetHeader().GetHeaderName() != "x-account" {
		t.Errorf("ledger hash_policy = %v", hp)
	}
}

// filterNames lists the HTTP filters of a listener's connection manager.
func filterNames(t *testing.T, l *listener.Listener) []string {
	t.Helper()
	a := l.GetApiListener().GetApiListener()
	if a == nil {
		a = l.GetFilterChains()[0].GetFilters()[0].GetTypedConfig()
	}
	m := &hcm.HttpConnectionManager{}
	if err := a.UnmarshalTo(m); err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, f := range m.GetHttpFilters() {
		names = append(names, f.GetName())
	}
	return names
}

func TestRollingListeners(t *testing.T) {
	r := Translate(rollingView(0))
	cases := []struct {
		flavour model.Flavour
		name    string
		want    []string
	}{
		{model.FlavourEnvoy, "cart", []string{statefulSessionFilter, wellknown.Router}},
		{model.FlavourEnvoy, "ledger", []string{wellknown.Router}}, // no cookie, no session state
		{model.FlavourGRPC, "cart", []string{wellknown.Router}},    // grpc-go NACKs stateful_session
		{model.FlavourGRPC, "ledger", []string{wellknown.Router}},
	}
	for _, c := range cases {
		got := filterNames(t, r.Listeners[c.flavour][c.name].(*listener.Listener))
		if len(got) != len(c.want) {
			t.Errorf("%s %s filters = %v, want %v", c.flavour, c.name, got, c.want)
			continue
		}
		for i := range got {
			if got[i] != c.want[i] {
				t.Errorf("%s %s filters = %v, want %v", c.flavour, c.name, got, c.want)
			}
		}
	}
	if HostCookie(model.Affinity{Cookie: "bg-session"}) == "bg-session" {
		t.Error("host cookie must differ from the hash cookie")
	}
}

// Endpoints is what a controller pushes alone; it must match Translate.
func TestEndpointsMatchesTranslate(t *testing.T) {
	for _, v := range []model.View{rollingView(0), rollingView(1), sampleView(25)} {
		r := Translate(v)
		for _, sv := range v.Services {
			got := Endpoints(sv)
			if len(got) != len(model.Colors) {
				t.Errorf("%s: %d load assignments", sv.Service.Name, len(got))
			}
			for n, cla := range got {
				if !proto.Equal(cla, r.Endpoints[n]) {
					t.Errorf("%s differs from Translate", n)
				}
			}
		}
	}
}
