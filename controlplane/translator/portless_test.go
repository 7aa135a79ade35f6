package translator

import (
	"testing"

	"github.com/envoyproxy/go-control-plane/pkg/cache/types"
	"google.golang.org/protobuf/proto"

	"github.com/bgctl/bg/controlplane/model"
)

// portlessView is sampleView plus search, a service without a port that
// only proxyless gRPC clients use, mid-switch.
func portlessView() model.View {
	v := sampleView(25)
	v.Services = append(v.Services, model.ServiceView{
		Service: model.Service{Name: "search", Protocol: model.ProtocolHTTP2},
		Membership: model.Membership{
			Blue:  model.Fleet{Endpoints: []model.Endpoint{{ID: "search-blue-1", Address: "10.0.2.1", Port: 9000, Weight: 1, Version: "v1"}}},
			Green: model.Fleet{Endpoints: []model.Endpoint{{ID: "search-green-1", Address: "10.0.3.1", Port: 9000, Weight: 1, Version: "v2"}}},
		},
		Traffic: model.Traffic{Stable: model.Blue, Target: model.Green, GreenPercent: 50, Phase: model.PhaseSwitching, Generation: 3},
	})
	return v
}

// A port-less service has no Envoy listener, and everything proxyless gRPC
// needs: its api_listener, route, clusters and endpoints. The other
// services are as without it.
func TestPortlessService(t *testing.T) {
	r := Translate(portlessView())
	if _, ok := r.Listeners[model.FlavourEnvoy]["search"]; ok {
		t.Error("Envoy listener for a service without a port")
	}
	for _, n := range []string{"web", "api"} {
		if _, ok := r.Listeners[model.FlavourEnvoy][n]; !ok {
			t.Errorf("no Envoy listener for %s", n)
		}
	}
	if l := r.Listeners[model.FlavourGRPC]["search"]; l == nil {
		t.Error("no gRPC listener for search")
	}
	for _, n := range []string{"search-blue", "search-green"} {
		if r.Clusters[n] == nil || r.Endpoints[n] == nil {
			t.Errorf("cluster or endpoints %s missing", n)
		}
	}
	if r.Routes["search"] == nil {
		t.Error("no route for search")
	}
	for _, group := range []map[string]types.Resource{r.Clusters, r.Endpoints, r.Routes, r.Listeners[model.FlavourEnvoy], r.Listeners[model.FlavourGRPC]} {
		for name, res := range group {
			if err := res.(interface{ ValidateAll() error }).ValidateAll(); err != nil {
				t.Errorf("%s: %v", name, err)
			}
		}
	}
	// Nothing else moves: web's and api's resources are sampleView's.
	base := Translate(sampleView(25))
	for _, n := range []string{"web", "api"} {
		if !proto.Equal(base.Listeners[model.FlavourEnvoy][n], r.Listeners[model.FlavourEnvoy][n]) ||
			!proto.Equal(base.Listeners[model.FlavourGRPC][n], r.Listeners[model.FlavourGRPC][n]) ||
			!proto.Equal(base.Routes[n], r.Routes[n]) {
			t.Errorf("%s changed beside a port-less service", n)
		}
	}
}

func TestGoldenPortlessEnvoyFlavour(t *testing.T) {
	r := Translate(portlessView())
	checkGolden(t, "envoy-portless.golden.json", golden(t, map[string]map[string]types.Resource{
		"clusters": r.Clusters, "endpoints": r.Endpoints, "routes": r.Routes,
		"listeners": r.Listeners[model.FlavourEnvoy],
	}))
}

func TestGoldenPortlessGRPCFlavour(t *testing.T) {
	r := Translate(portlessView())
	checkGolden(t, "grpc-portless.golden.json", golden(t, map[string]map[string]types.Resource{
		"clusters": r.Clusters, "endpoints": r.Endpoints, "routes": r.Routes,
		"listeners": r.Listeners[model.FlavourGRPC],
	}))
}
