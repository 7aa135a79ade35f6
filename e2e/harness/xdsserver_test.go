package harness_test

import (
	"context"
	"net"
	"strconv"
	"sync"
	"testing"

	cluster "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	endpoint "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	listener "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	route "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	router "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/router/v3"
	hcm "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	discovery "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"github.com/envoyproxy/go-control-plane/pkg/cache/types"
	"github.com/envoyproxy/go-control-plane/pkg/cache/v3"
	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"github.com/envoyproxy/go-control-plane/pkg/server/v3"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/bgctl/bg/e2e/harness"
)

// testXDS is a minimal go-control-plane ADS server, standing in for bg so
// the traffic generator can be proven on its own.
type testXDS struct {
	addr  string
	cache cache.SnapshotCache

	mu    sync.Mutex
	nodes map[string]bool // node ids that opened a stream
	nacks int
}

func startTestXDS(t *testing.T) *testXDS {
	t.Helper()
	x := &testXDS{nodes: map[string]bool{}}
	// ads=false: grpc-go asks only for clusters it routes to (see shared notes).
	x.cache = cache.NewSnapshotCache(false, cache.IDHash{}, nil)
	cb := server.CallbackFuncs{
		StreamRequestFunc: func(_ int64, req *discovery.DiscoveryRequest) error {
			x.mu.Lock()
			defer x.mu.Unlock()
			if id := req.GetNode().GetId(); id != "" {
				x.nodes[id] = true
			}
			if req.ErrorDetail != nil {
				x.nacks++
				t.Logf("NACK %s: %s", req.TypeUrl, req.ErrorDetail.GetMessage())
			}
			return nil
		},
	}
	ctx, cancel := context.WithCancel(context.Background())
	srv := server.NewServer(ctx, x.cache, cb)
	gs := grpc.NewServer()
	discovery.RegisterAggregatedDiscoveryServiceServer(gs, srv)
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	x.addr = lis.Addr().String()
	go func() { _ = gs.Serve(lis) }()
	t.Cleanup(func() { cancel(); gs.Stop() })
	return x
}

func (x *testXDS) sawNodes() map[string]bool {
	x.mu.Lock()
	defer x.mu.Unlock()
	out := map[string]bool{}
	for k := range x.nodes {
		out[k] = true
	}
	return out
}

func (x *testXDS) nackCount() int {
	x.mu.Lock()
	defer x.mu.Unlock()
	return x.nacks
}

// setRoute serves listener svc → cluster svc-color → the given backends,
// for the given node ids.
func (x *testXDS) setRoute(t *testing.T, version, svc, color string, nodes []string, backends ...*harness.Backend) {
	t.Helper()
	clusterName := svc + "-" + color
	snap, err := cache.NewSnapshot(version, map[resource.Type][]types.Resource{
		resource.ListenerType: {apiListener(t, svc, clusterName)},
		resource.ClusterType:  {edsCluster(clusterName)},
		resource.EndpointType: {loadAssignment(clusterName, backends)},
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range nodes {
		if err := x.cache.SetSnapshot(context.Background(), n, snap); err != nil {
			t.Fatal(err)
		}
	}
}

func apiListener(t *testing.T, name, clusterName string) *listener.Listener {
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
	return &listener.Listener{
		Name:        name,
		ApiListener: &listener.ApiListener{ApiListener: managerAny},
	}
}

func edsCluster(name string) *cluster.Cluster {
	return &cluster.Cluster{
		Name:                 name,
		ClusterDiscoveryType: &cluster.Cluster_Type{Type: cluster.Cluster_EDS},
		EdsClusterConfig: &cluster.Cluster_EdsClusterConfig{EdsConfig: &core.ConfigSource{
			ConfigSourceSpecifier: &core.ConfigSource_Ads{Ads: &core.AggregatedConfigSource{}},
			ResourceApiVersion:    core.ApiVersion_V3,
		}},
		LbPolicy: cluster.Cluster_ROUND_ROBIN,
	}
}

// loadAssignment puts all backends in one locality. gRPC ignores a
// locality without a weight, so it must be set.
func loadAssignment(clusterName string, backends []*harness.Backend) *endpoint.ClusterLoadAssignment {
	var lbs []*endpoint.LbEndpoint
	for _, b := range backends {
		host, port, _ := net.SplitHostPort(b.Addr())
		p, _ := strconv.Atoi(port)
		lbs = append(lbs, &endpoint.LbEndpoint{
			HostIdentifier: &endpoint.LbEndpoint_Endpoint{Endpoint: &endpoint.Endpoint{
				Address: &core.Address{Address: &core.Address_SocketAddress{SocketAddress: &core.SocketAddress{
					Address:       host,
					PortSpecifier: &core.SocketAddress_PortValue{PortValue: uint32(p)},
				}}},
			}},
			HealthStatus:        core.HealthStatus_HEALTHY,
			LoadBalancingWeight: wrapperspb.UInt32(1),
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
