package harness_test

import (
	"context"
	"maps"
	"net"
	"slices"
	"strconv"
	"testing"
	"time"

	cluster "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	endpoint "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	listener "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	route "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	router "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/router/v3"
	hcm "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	"github.com/envoyproxy/go-control-plane/pkg/cache/types"
	"github.com/envoyproxy/go-control-plane/pkg/cache/v3"
	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/structpb"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/bgctl/bg/e2e/harness"
)

// TestSessionsStickAcrossSlotReplacement proves what rolling switches of
// stateful services rely on: grpc-go's ring_hash keys the ring by the EDS
// endpoint's envoy.lb hash_key (gRFC A76), so replacing a slot's host with
// a new address under the same key moves exactly that slot's sessions.
func TestSessionsStickAcrossSlotReplacement(t *testing.T) {
	const (
		svc    = "web"
		node   = "sessions-client"
		header = harness.DefaultSessionHeader
	)
	x := startTestXDS(t)
	var backends []*harness.Backend
	for i := range 3 {
		backends = append(backends, harness.StartBackend(t, harness.BackendOptions{
			Service: svc, Color: "blue", Version: "v1",
			ID: "web-" + strconv.Itoa(i), Slot: "slot-" + strconv.Itoa(i),
		}))
	}
	x.setSessionRoute(t, "1", svc, node, header, backends)

	s := harness.StartSessions(t, harness.SessionOptions{
		XDSAddr: x.addr, NodeID: node, Service: svc, Header: header,
		Sessions: 30, Workers: 5,
	})
	s.WaitFor(t, 20*time.Second, func(c harness.SessionCounts) bool { return c.OK() > 0 && c.Failed == 0 })

	// Phase 1: every session sticks to one host.
	m1 := s.Mark()
	time.Sleep(3 * time.Second)
	h1 := s.History(m1)
	if n, errs := s.Failed(m1); n != 0 {
		t.Fatalf("phase 1: %d failed calls: %q", n, errs)
	}
	home := map[string]string{} // session → server
	perServer := map[string][]string{}
	for _, id := range s.IDs() {
		v := h1[id]
		if len(v) != 1 {
			t.Fatalf("phase 1: session %s visited %v, want exactly one server", id, v)
		}
		home[id] = v[0].Server
		perServer[v[0].Server] = append(perServer[v[0].Server], id)
	}
	for _, srv := range slices.Sorted(maps.Keys(perServer)) {
		ids := perServer[srv]
		t.Logf("phase 1: %s (%s) holds %d sessions %v", srv, slotOf(backends, srv), len(ids), ids)
	}
	// The ring is deterministic (xxhash of ids and keys), so these hold on
	// every run; they keep the move check below meaningful.
	if len(perServer) < 2 {
		t.Fatalf("phase 1: all sessions on %v; hashing is not spreading them", slices.Collect(maps.Keys(perServer)))
	}
	if len(perServer["web-1"]) == 0 {
		t.Fatalf("phase 1: no session on slot-1, nothing to move")
	}
	// The servers' own counters agree: each session reached one backend.
	checkServerSide(t, "phase 1", backends, func(id string, seen []string) bool {
		return len(seen) == 1 && seen[0] == home[id]
	})

	// Phase 2: replace slot-1's host by a new address with the same key.
	repl := harness.StartBackend(t, harness.BackendOptions{
		Service: svc, Color: "blue", Version: "v2", ID: "web-1b", Slot: "slot-1",
	})
	m2 := s.Mark()
	x.setSessionRoute(t, "2", svc, node, header, []*harness.Backend{backends[0], repl, backends[2]})
	s.WaitFor(t, 10*time.Second, func(c harness.SessionCounts) bool {
		return c.ByServer["web-1b"] > 0 && c.ByServer["web-1"] == 0
	})
	time.Sleep(2 * time.Second)
	// The old host is out of EDS; stopping it now (drained) must not fail
	// any call.
	backends[1].Stop()
	time.Sleep(time.Second)

	h2 := s.History(m2)
	if n, errs := s.Failed(m2); n != 0 {
		t.Fatalf("phase 2: %d failed calls: %q", n, errs)
	}
	moved := 0
	for _, id := range s.IDs() {
		v := servers(h2[id])
		switch {
		case home[id] == "web-1":
			// Calls that started before the push may still hit web-1.
			if !slices.Equal(v, []string{"web-1", "web-1b"}) && !slices.Equal(v, []string{"web-1b"}) {
				t.Errorf("phase 2: session %s of slot-1 visited %v, want one move web-1 → web-1b", id, v)
				continue
			}
			moved++
		default:
			if !slices.Equal(v, []string{home[id]}) {
				t.Errorf("phase 2: session %s of %s visited %v, want it to stay", id, home[id], v)
			}
		}
	}
	t.Logf("phase 2: %d of %d slot-1 sessions moved web-1 → web-1b", moved, len(perServer["web-1"]))
	checkServerSide(t, "phase 2", append(slices.Clone(backends), repl), func(id string, seen []string) bool {
		if home[id] == "web-1" {
			return slices.Equal(seen, []string{"web-1", "web-1b"})
		}
		return slices.Equal(seen, []string{home[id]})
	})
	if n := x.nackCount(); n != 0 {
		t.Errorf("client NACKed %d responses", n)
	}
}

func servers(v []harness.Visit) []string {
	var out []string
	for _, x := range v {
		out = append(out, x.Server)
	}
	return out
}

func slotOf(bs []*harness.Backend, id string) string {
	for _, b := range bs {
		if b.Options().ID == id {
			return b.Options().Slot
		}
	}
	return "?"
}

// checkServerSide applies ok to each session and the sorted ids of the
// backends that counted it.
func checkServerSide(t *testing.T, phase string, bs []*harness.Backend, ok func(id string, seen []string) bool) {
	t.Helper()
	seen := map[string][]string{}
	for _, b := range bs {
		for id := range b.Sessions() {
			seen[id] = append(seen[id], b.Options().ID)
		}
	}
	for id, v := range seen {
		slices.Sort(v)
		if !ok(id, v) {
			t.Errorf("%s: backends counting session %s: %v", phase, id, v)
		}
	}
	if len(seen) != 30 {
		t.Errorf("%s: backends saw %d sessions, want 30", phase, len(seen))
	}
}

// setSessionRoute serves listener svc → RING_HASH cluster svc (hashing the
// session header) → backends, each keyed by its Slot as envoy.lb hash_key.
func (x *testXDS) setSessionRoute(t *testing.T, version, svc, node, header string, backends []*harness.Backend) {
	t.Helper()
	snap, err := cache.NewSnapshot(version, map[resource.Type][]types.Resource{
		resource.ListenerType: {hashListener(t, svc, svc, header)},
		resource.ClusterType:  {ringHashCluster(svc)},
		resource.EndpointType: {slotAssignment(t, svc, backends)},
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := x.cache.SetSnapshot(context.Background(), node, snap); err != nil {
		t.Fatal(err)
	}
}

func hashListener(t *testing.T, name, clusterName, header string) *listener.Listener {
	routerAny, err := anypb.New(&router.Router{})
	if err != nil {
		t.Fatal(err)
	}
	manager := &hcm.HttpConnectionManager{
		StatPrefix: name,
		RouteSpecifier: &hcm.HttpConnectionManager_RouteConfig{RouteConfig: &route.RouteConfiguration{
			Name: name,
			VirtualHosts: []*route.VirtualHost{{
				Name:    name,
				Domains: []string{"*"},
				Routes: []*route.Route{{
					Match: &route.RouteMatch{PathSpecifier: &route.RouteMatch_Prefix{Prefix: "/"}},
					Action: &route.Route_Route{Route: &route.RouteAction{
						ClusterSpecifier: &route.RouteAction_Cluster{Cluster: clusterName},
						HashPolicy: []*route.RouteAction_HashPolicy{{
							PolicySpecifier: &route.RouteAction_HashPolicy_Header_{
								Header: &route.RouteAction_HashPolicy_Header{HeaderName: header},
							},
						}},
					}},
				}},
			}},
		}},
		HttpFilters: []*hcm.HttpFilter{{
			Name:       "envoy.filters.http.router",
			ConfigType: &hcm.HttpFilter_TypedConfig{TypedConfig: routerAny},
		}},
	}
	managerAny, err := anypb.New(manager)
	if err != nil {
		t.Fatal(err)
	}
	return &listener.Listener{Name: name, ApiListener: &listener.ApiListener{ApiListener: managerAny}}
}

func ringHashCluster(name string) *cluster.Cluster {
	c := edsCluster(name)
	c.LbPolicy = cluster.Cluster_RING_HASH
	return c
}

// slotAssignment is loadAssignment plus each endpoint's hash key.
func slotAssignment(t *testing.T, clusterName string, backends []*harness.Backend) *endpoint.ClusterLoadAssignment {
	var lbs []*endpoint.LbEndpoint
	for _, b := range backends {
		host, port, _ := net.SplitHostPort(b.Addr())
		p, _ := strconv.Atoi(port)
		md, err := structpb.NewStruct(map[string]any{"hash_key": b.Options().Slot})
		if err != nil {
			t.Fatal(err)
		}
		lbs = append(lbs, &endpoint.LbEndpoint{
			HostIdentifier: &endpoint.LbEndpoint_Endpoint{Endpoint: &endpoint.Endpoint{
				Address: &core.Address{Address: &core.Address_SocketAddress{SocketAddress: &core.SocketAddress{
					Address:       host,
					PortSpecifier: &core.SocketAddress_PortValue{PortValue: uint32(p)},
				}}},
			}},
			HealthStatus:        core.HealthStatus_HEALTHY,
			LoadBalancingWeight: wrapperspb.UInt32(1),
			Metadata:            &core.Metadata{FilterMetadata: map[string]*structpb.Struct{"envoy.lb": md}},
		})
	}
	return &endpoint.ClusterLoadAssignment{
		ClusterName: clusterName,
		Endpoints: []*endpoint.LocalityLbEndpoints{{
			Locality:            &core.Locality{Region: "local", Zone: "local"},
			LoadBalancingWeight: wrapperspb.UInt32(1),
			LbEndpoints:         lbs,
		}},
	}
}
