// Package translator turns bg's model into xDS resources. It is pure: the
// same view always yields the same resources, and it does no I/O.
package translator

import (
	"github.com/envoyproxy/go-control-plane/pkg/cache/types"

	"github.com/bgctl/bg/controlplane/model"
)

// Resources is one full set of xDS resources, keyed by resource name.
type Resources struct {
	Clusters  map[string]types.Resource
	Endpoints map[string]types.Resource
	Routes    map[string]types.Resource
	// Listeners by flavour: Envoy nodes and proxyless gRPC nodes see different ones.
	Listeners map[model.Flavour]map[string]types.Resource
}

// Translate builds every resource for the view.
func Translate(v model.View) Resources {
	out := Resources{
		Clusters:  map[string]types.Resource{},
		Endpoints: map[string]types.Resource{},
		Routes:    map[string]types.Resource{},
		Listeners: map[model.Flavour]map[string]types.Resource{
			model.FlavourEnvoy: {},
			model.FlavourGRPC:  {},
		},
	}
	for _, s := range v.Services {
		name := s.Service.Name
		for _, c := range model.Colors {
			out.Clusters[model.ClusterName(name, c)] = Cluster(s.Service, c)
		}
		for cn, cla := range Endpoints(s) {
			out.Endpoints[cn] = cla
		}
		out.Routes[name] = ServiceRoute(s.Service, s.Traffic)
		// A service without a port is for proxyless gRPC clients only:
		// Envoy gets its clusters and route but no listener.
		if s.Service.ListenerPort != 0 {
			out.Listeners[model.FlavourEnvoy][name] = EnvoyListener(s.Service, v.EnvoyListenAddress)
		}
		out.Listeners[model.FlavourGRPC][name] = GRPCListener(name)
	}
	return out
}
