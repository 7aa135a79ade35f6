package translator

import (
	route "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	matcher "github.com/envoyproxy/go-control-plane/envoy/type/matcher/v3"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/bgctl/bg/controlplane/model"
)

// ColorHeader pins a request to one fleet, whatever the split (smoke tests,
// debugging). Its routes also keep both clusters referenced, so gRPC clients
// stay subscribed and connected to the idle fleet and a flip fails no call.
const ColorHeader = "x-bg-color"

// Route is the service's only traffic-dependent resource: a switch is an RDS
// change of this route and nothing else. It is the route of a blue-green
// service; ServiceRoute is the one for any service.
func Route(service string, t model.Traffic) *route.RouteConfiguration {
	return ServiceRoute(model.Service{Name: service}, t)
}

// ServiceRoute is Route for any service: a rolling service's actions also
// hash sessions onto its ring. The roll itself never changes the route.
func ServiceRoute(s model.Service, t model.Traffic) *route.RouteConfiguration {
	service := s.Name
	hash := hashPolicies(s)
	cand := candidate(s, t)
	routes := make([]*route.Route, 0, 3+len(s.Pools))
	for _, c := range model.Colors {
		routes = append(routes, &route.Route{
			Name: "pin-" + string(c),
			Match: &route.RouteMatch{
				PathSpecifier: &route.RouteMatch_Prefix{Prefix: "/"},
				Headers: []*route.HeaderMatcher{{
					Name: ColorHeader,
					HeaderMatchSpecifier: &route.HeaderMatcher_StringMatch{StringMatch: &matcher.StringMatcher{
						MatchPattern: &matcher.StringMatcher_Exact{Exact: string(c)},
					}},
				}},
			},
			// Pinned requests keep their affinity too, so a smoke test
			// sees the hosts its session would.
			Action: &route.Route_Route{Route: &route.RouteAction{
				ClusterSpecifier: &route.RouteAction_Cluster{Cluster: model.ClusterName(service, c)},
				HashPolicy:       hash,
			}},
		})
	}
	if cand != "" {
		routes = append(routes, poolRoutes(s, cand, hash)...)
	}
	split := make([]*route.WeightedCluster_ClusterWeight, 0, 2)
	for _, c := range model.Colors {
		split = append(split, &route.WeightedCluster_ClusterWeight{
			Name:   model.ClusterName(service, c),
			Weight: wrapperspb.UInt32(uint32(t.Percent(c))),
		})
	}
	routes = append(routes, &route.Route{
		Name:  "split",
		Match: &route.RouteMatch{PathSpecifier: &route.RouteMatch_Prefix{Prefix: "/"}},
		Action: &route.Route_Route{Route: &route.RouteAction{
			ClusterSpecifier:      &route.RouteAction_WeightedClusters{WeightedClusters: &route.WeightedCluster{Clusters: split}},
			HashPolicy:            hash,
			RequestMirrorPolicies: mirrorPolicies(s, t, cand),
		}},
	})
	return &route.RouteConfiguration{
		Name: service,
		VirtualHosts: []*route.VirtualHost{{
			Name:    service,
			Domains: []string{"*"},
			Routes:  routes,
		}},
	}
}

// hashPolicies pick a rolling service's host on the ring. The header is
// terminal, so a request carrying it hashes the same whether or not it also
// has the cookie. Only Envoy knows the cookie policy: grpc-go skips it with a
// warning (no NACK) and keeps the header one. Envoy mints the cookie (ttl 0s:
// a browser-session cookie) when a request arrives without it.
func hashPolicies(s model.Service) []*route.RouteAction_HashPolicy {
	if !s.Stateful() {
		return nil
	}
	var hp []*route.RouteAction_HashPolicy
	if h := s.Affinity.Header; h != "" {
		hp = append(hp, &route.RouteAction_HashPolicy{
			PolicySpecifier: &route.RouteAction_HashPolicy_Header_{Header: &route.RouteAction_HashPolicy_Header{HeaderName: h}},
			Terminal:        s.Affinity.Cookie != "",
		})
	}
	if ck := s.Affinity.Cookie; ck != "" {
		hp = append(hp, &route.RouteAction_HashPolicy{
			PolicySpecifier: &route.RouteAction_HashPolicy_Cookie_{Cookie: &route.RouteAction_HashPolicy_Cookie{
				Name: ck,
				Ttl:  durationpb.New(0),
				Path: "/",
			}},
		})
	}
	return hp
}
