package xds

import (
	"testing"

	"log/slog"

	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	discovery "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	envtype "github.com/envoyproxy/go-control-plane/envoy/type/v3"
	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"google.golang.org/grpc"
)

func TestClientSessions(t *testing.T) {
	ver := func(agent, v string) *core.Node {
		return &core.Node{UserAgentName: agent, UserAgentVersionType: &core.Node_UserAgentVersion{UserAgentVersion: v}}
	}
	build := func(agent string, major, minor, patch uint32) *core.Node {
		return &core.Node{UserAgentName: agent, UserAgentVersionType: &core.Node_UserAgentBuildVersion{UserAgentBuildVersion: &core.BuildVersion{
			Version: &envtype.SemanticVersion{MajorNumber: major, MinorNumber: minor, Patch: patch}}}}
	}
	for _, c := range []struct {
		name string
		node *core.Node
		want Sessions
	}{
		{"envoy", build("envoy", 1, 36, 2), SessionsKept},
		{"envoy without a version", &core.Node{UserAgentName: "envoy"}, SessionsKept},
		{"grpc-go built here", ver("gRPC Go", grpc.Version), SessionsKept},
		{"grpc-go 1.80.0: A76 by default", ver("gRPC Go", "1.80.0"), SessionsKept},
		{"grpc-go dev build", ver("gRPC Go", "1.86.0-dev"), SessionsKept},
		{"grpc-go 1.79.3: opt-in", ver("gRPC Go", "1.79.3"), SessionsOptIn},
		{"grpc-go 1.73.0: opt-in", ver("gRPC Go", "v1.73.0"), SessionsOptIn},
		{"grpc-go 1.72.2: by address", ver("gRPC Go", "1.72.2"), SessionsLost},
		{"grpc-go, no version", ver("gRPC Go", ""), SessionsUnknown},
		{"grpc-go, garbage version", ver("gRPC Go", "one.two"), SessionsUnknown},
		{"grpc-js", ver("grpc-js", "1.14.0"), SessionsLost},
		{"grpc-js-xds", ver("@grpc/grpc-js-xds", "1.14.0"), SessionsLost},
		{"no user agent", &core.Node{Id: "x"}, SessionsUnknown},
		{"C-core", ver("gRPC C-core", "1.70.0"), SessionsUnknown},
	} {
		got, why := ClientSessions(c.node)
		if got != c.want || why == "" {
			t.Errorf("%s: %s (%q), want %s", c.name, got, why, c.want)
		}
	}
}

// A node's client class is listed for the routes it subscribes to, ACKed
// or not; a client that keeps sessions is not listed.
func TestAckReportListsClientsThatLoseSessions(t *testing.T) {
	tr := newTracker("p-", newMetrics(nil), slog.New(slog.DiscardHandler))
	for id, n := range map[int64]*core.Node{
		1: {Id: "go", UserAgentName: "gRPC Go", UserAgentVersionType: &core.Node_UserAgentVersion{UserAgentVersion: grpc.Version}},
		2: {Id: "js", UserAgentName: "grpc-js", UserAgentVersionType: &core.Node_UserAgentVersion{UserAgentVersion: "1.14.0"}},
		3: {Id: "old-go", UserAgentName: "gRPC Go", UserAgentVersionType: &core.Node_UserAgentVersion{UserAgentVersion: "1.60.0"}},
	} {
		if err := tr.OnStreamOpen(t.Context(), id, ""); err != nil {
			t.Fatal(err)
		}
		// The node comes on the first request, as grpc-go sends it.
		if err := tr.OnStreamRequest(id, &discovery.DiscoveryRequest{Node: n, TypeUrl: resource.RouteType, ResourceNames: []string{"web"}}); err != nil {
			t.Fatal(err)
		}
	}
	got := tr.routeNoSessions("web")
	if len(got) != 2 || got[0].NodeID != "js" || got[1].NodeID != "old-go" || got[0].Sessions != SessionsLost || got[1].UserAgentVersion != "1.60.0" {
		t.Fatalf("no sessions %+v", got)
	}
	if rep := tr.routeAcks("web", 0); rep.Subscribed != 3 || len(rep.NoSessions) != 0 {
		t.Fatalf("route report %+v: the ACK report leaves clients to RouteNoSessions", rep)
	}
	if other := tr.routeNoSessions("api"); len(other) != 0 {
		t.Fatalf("a route nobody subscribes to lists %+v", other)
	}
}
