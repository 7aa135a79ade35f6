package xds_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	discoverygrpc "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	grpcstatus "google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/bgctl/bg/controlplane/xds"
	"github.com/bgctl/bg/controlplane/xds/adssim"
)

func names(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("svc-%d-green", i)
	}
	return out
}

func bigNode(bytes int) *core.Node {
	md, _ := structpb.NewStruct(map[string]any{"junk": strings.Repeat("x", bytes)})
	return &core.Node{Id: "n", Metadata: md}
}

func TestCheckRequestBounds(t *testing.T) {
	cases := []struct {
		name string
		req  *discoverygrpc.DiscoveryRequest
		want string // "" accepted, else part of the InvalidArgument message
	}{
		{"plain", &discoverygrpc.DiscoveryRequest{TypeUrl: resource.RouteType, ResourceNames: []string{"web"}, Node: &core.Node{Id: "a"}}, ""},
		{"most names", &discoverygrpc.DiscoveryRequest{TypeUrl: resource.EndpointType, ResourceNames: names(xds.MaxResourceNames)}, ""},
		{"too many names", &discoverygrpc.DiscoveryRequest{TypeUrl: resource.EndpointType, ResourceNames: names(xds.MaxResourceNames + 1)}, "10001 resource names, more than 10000"},
		{"long name", &discoverygrpc.DiscoveryRequest{TypeUrl: resource.RouteType, ResourceNames: []string{strings.Repeat("a", xds.MaxResourceNameBytes+1)}}, "a name of 1025 bytes"},
		{"unknown type", &discoverygrpc.DiscoveryRequest{TypeUrl: "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.Secret"}, "not served"},
		{"no type", &discoverygrpc.DiscoveryRequest{}, `type_url "": not served`},
		{"node fits", &discoverygrpc.DiscoveryRequest{TypeUrl: resource.ClusterType, Node: bigNode(xds.MaxNodeBytes - 100)}, ""},
		{"huge metadata", &discoverygrpc.DiscoveryRequest{TypeUrl: resource.ClusterType, Node: bigNode(xds.MaxNodeBytes)}, "node is"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := xds.CheckRequest(tc.req)
			if tc.want == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			if s, _ := grpcstatus.FromError(err); err == nil || s.Code() != codes.InvalidArgument || !strings.Contains(s.Message(), tc.want) {
				t.Fatalf("err = %v, want InvalidArgument with %q", err, tc.want)
			}
		})
	}
	// A long NACK message is cut, never refused.
	req := &discoverygrpc.DiscoveryRequest{TypeUrl: resource.RouteType, ErrorDetail: &status.Status{Message: strings.Repeat("é", xds.MaxNACKMessageBytes)}}
	if err := xds.CheckRequest(req); err != nil {
		t.Fatal(err)
	}
	if m := req.ErrorDetail.Message; len(m) > xds.MaxNACKMessageBytes+len("…") || !strings.HasSuffix(m, "…") || !strings.HasPrefix(m, "éé") {
		t.Errorf("NACK message of %d bytes, want cut to %d", len(m), xds.MaxNACKMessageBytes)
	}
}

func TestCheckDeltaRequestBounds(t *testing.T) {
	half := xds.MaxResourceNames/2 + 1
	for name, tc := range map[string]struct {
		req  *discoverygrpc.DeltaDiscoveryRequest
		want string
	}{
		"plain":              {&discoverygrpc.DeltaDiscoveryRequest{TypeUrl: resource.RouteType, ResourceNamesSubscribe: []string{"web"}}, ""},
		"sub+unsub too many": {&discoverygrpc.DeltaDiscoveryRequest{TypeUrl: resource.RouteType, ResourceNamesSubscribe: names(half), ResourceNamesUnsubscribe: names(half)}, "more than 10000"},
		"initial too many": {&discoverygrpc.DeltaDiscoveryRequest{TypeUrl: resource.RouteType, ResourceNamesSubscribe: names(half), InitialResourceVersions: func() map[string]string {
			m := map[string]string{}
			for _, n := range names(half) {
				m[n+"-x"] = "1"
			}
			return m
		}()}, "more than 10000"},
		"initial long name": {&discoverygrpc.DeltaDiscoveryRequest{TypeUrl: resource.RouteType, InitialResourceVersions: map[string]string{strings.Repeat("n", 2000): "1"}}, "initial_resource_versions"},
		"unknown type":      {&discoverygrpc.DeltaDiscoveryRequest{TypeUrl: "x"}, "not served"},
		"huge node":         {&discoverygrpc.DeltaDiscoveryRequest{TypeUrl: resource.ListenerType, Node: bigNode(xds.MaxNodeBytes)}, "node is"},
	} {
		t.Run(name, func(t *testing.T) {
			err := xds.CheckDeltaRequest(tc.req)
			if tc.want == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			if s, _ := grpcstatus.FromError(err); err == nil || s.Code() != codes.InvalidArgument || !strings.Contains(s.Message(), tc.want) {
				t.Fatalf("err = %v, want InvalidArgument with %q", err, tc.want)
			}
		})
	}
}

// Over a real ADS stream: a request past a bound ends the stream with
// InvalidArgument, the server keeps serving others, and the refused
// stream is not left among the proxies.
func TestADSRefusesOversizedRequests(t *testing.T) {
	srv, addr := startServer(t, nil)
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	for name, req := range map[string]*discoverygrpc.DiscoveryRequest{
		"names":        {TypeUrl: resource.RouteType, ResourceNames: names(xds.MaxResourceNames + 1), Node: &core.Node{Id: "many"}},
		"metadata":     {TypeUrl: resource.ClusterType, Node: bigNode(1 << 20)},
		"unknown type": {TypeUrl: "type.googleapis.com/nope", Node: &core.Node{Id: "odd"}},
	} {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		stream, err := discoverygrpc.NewAggregatedDiscoveryServiceClient(conn).StreamAggregatedResources(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if err := stream.Send(req); err != nil {
			t.Fatal(err)
		}
		_, err = stream.Recv()
		cancel()
		if s, _ := grpcstatus.FromError(err); s.Code() != codes.InvalidArgument {
			t.Errorf("%s: Recv = %v, want InvalidArgument", name, err)
		}
	}
	c := dial(t, addr, adssim.Options{NodeID: "fine", Clusters: true})
	waitFor(t, c, "a normal client still served", holds(split(0)))
	deadline := time.Now().Add(5 * time.Second)
	for len(srv.Proxies()) != 1 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if p := srv.Proxies(); len(p) != 1 || p[0].NodeID != "fine" {
		t.Errorf("proxies = %+v, want only the normal client", p)
	}
}
