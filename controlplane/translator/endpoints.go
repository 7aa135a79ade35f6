package translator

import (
	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	endpoint "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/bgctl/bg/controlplane/model"
)

// LoadAssignment is one fleet's endpoints in a single weighted locality:
// gRPC ignores localities without a weight and NACKs endpoints without one.
func LoadAssignment(service string, c model.Color, f model.Fleet) *endpoint.ClusterLoadAssignment {
	cla := &endpoint.ClusterLoadAssignment{ClusterName: model.ClusterName(service, c)}
	if len(f.Endpoints) == 0 {
		return cla
	}
	lbs := make([]*endpoint.LbEndpoint, 0, len(f.Endpoints))
	for _, e := range f.Endpoints {
		w := e.Weight
		if w == 0 {
			w = 1
		}
		lbs = append(lbs, &endpoint.LbEndpoint{
			HostIdentifier: &endpoint.LbEndpoint_Endpoint{Endpoint: &endpoint.Endpoint{
				Address:  socketAddress(e.Address, e.Port),
				Hostname: e.ID,
			}},
			HealthStatus:        core.HealthStatus_HEALTHY,
			LoadBalancingWeight: wrapperspb.UInt32(w),
		})
	}
	cla.Endpoints = []*endpoint.LocalityLbEndpoints{{
		Locality:            &core.Locality{},
		LbEndpoints:         lbs,
		LoadBalancingWeight: wrapperspb.UInt32(1),
	}}
	return cla
}

func socketAddress(host string, port int) *core.Address {
	return &core.Address{Address: &core.Address_SocketAddress{SocketAddress: &core.SocketAddress{
		Protocol:      core.SocketAddress_TCP,
		Address:       host,
		PortSpecifier: &core.SocketAddress_PortValue{PortValue: uint32(port)},
	}}}
}
