package translator

import (
	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	endpoint "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	"github.com/envoyproxy/go-control-plane/pkg/cache/types"
	"google.golang.org/protobuf/types/known/structpb"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/bgctl/bg/controlplane/model"
)

// hashKeyFilter and hashKeyField are where Envoy's ring hash and grpc-go
// (gRFC A76) read an endpoint's place on the ring instead of its address.
const (
	hashKeyFilter = "envoy.lb"
	hashKeyField  = "hash_key"
)

// LoadAssignment is one fleet's endpoints in a single weighted locality:
// gRPC ignores localities without a weight and NACKs endpoints without one.
func LoadAssignment(service string, c model.Color, f model.Fleet) *endpoint.ClusterLoadAssignment {
	return LoadAssignmentWithServing(service, c, servingAll(f), false)
}

// Endpoints is both colours' load assignments of a service, by cluster name:
// what to push when its fleets change or its roll moves (a roll serves hosts
// of both fleets in one cluster).
func Endpoints(sv model.ServiceView) map[string]types.Resource {
	out := make(map[string]types.Resource, len(model.Colors))
	for _, c := range model.Colors {
		out[model.ClusterName(sv.Service.Name, c)] = ServiceLoadAssignment(sv, c)
	}
	return out
}

// ServiceLoadAssignment is the endpoints of one colour's cluster of a
// service, whatever its strategy. While a roll exists, the From colour's
// cluster holds the roll's serving set (old hosts, draining ones and their
// replacements); the other colour's cluster keeps its plain fleet.
func ServiceLoadAssignment(sv model.ServiceView, c model.Color) *endpoint.ClusterLoadAssignment {
	s, m := sv.Service, sv.Membership
	if !s.Stateful() {
		return LoadAssignment(s.Name, c, m.Fleet(c))
	}
	set := servingAll(m.Fleet(c))
	if r := sv.Traffic.Roll; r != nil && r.From == c {
		set = model.Serving(r, m.Fleet(r.From), m.Fleet(r.To))
	}
	return LoadAssignmentWithServing(s.Name, c, set, true)
}

// servingAll is a fleet with no host draining.
func servingAll(f model.Fleet) []model.ServingEndpoint {
	set := make([]model.ServingEndpoint, 0, len(f.Endpoints))
	for _, e := range f.Endpoints {
		set = append(set, model.ServingEndpoint{Endpoint: e})
	}
	return set
}

// LoadAssignmentWithServing is like LoadAssignment for a serving set.
// Draining hosts are DRAINING: gRPC drops them and Envoy sends them no new
// sessions, but its stateful_session filter keeps existing ones there.
// Hosts of a rolling service carry their slot key as ring-hash key, so a
// replacement takes exactly its old host's place on the ring.
func LoadAssignmentWithServing(service string, c model.Color, set []model.ServingEndpoint, rolling bool) *endpoint.ClusterLoadAssignment {
	cla := &endpoint.ClusterLoadAssignment{ClusterName: model.ClusterName(service, c)}
	if len(set) == 0 {
		return cla
	}
	lbs := make([]*endpoint.LbEndpoint, 0, len(set))
	for _, se := range set {
		e := se.Endpoint
		w := e.Weight
		if w == 0 {
			w = 1
		}
		status := core.HealthStatus_HEALTHY
		if se.Draining {
			status = core.HealthStatus_DRAINING
		}
		lb := &endpoint.LbEndpoint{
			HostIdentifier: &endpoint.LbEndpoint_Endpoint{Endpoint: &endpoint.Endpoint{
				Address:  socketAddress(e.Address, e.Port),
				Hostname: e.ID,
			}},
			HealthStatus:        status,
			LoadBalancingWeight: wrapperspb.UInt32(w),
		}
		if rolling {
			lb.Metadata = &core.Metadata{FilterMetadata: map[string]*structpb.Struct{
				hashKeyFilter: {Fields: map[string]*structpb.Value{hashKeyField: structpb.NewStringValue(e.SlotKey())}},
			}}
		}
		lbs = append(lbs, lb)
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
