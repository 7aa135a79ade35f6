package translator

import (
	route "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	matcher "github.com/envoyproxy/go-control-plane/envoy/type/matcher/v3"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/bgctl/bg/controlplane/model"
)

// ColorHeader pins a request to one fleet, whatever the split (smoke tests,
// debugging). Its routes also keep both clusters referenced, so gRPC clients
// stay subscribed and connected to the idle fleet and a flip fails no call.
const ColorHeader = "x-bg-color"

// Route is the service's only traffic-dependent resource: a switch is an RDS
// change of this route and nothing else.
func Route(service string, t model.Traffic) *route.RouteConfiguration {
	routes := make([]*route.Route, 0, 3)
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
			Action: &route.Route_Route{Route: &route.RouteAction{
				ClusterSpecifier: &route.RouteAction_Cluster{Cluster: model.ClusterName(service, c)},
			}},
		})
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
			ClusterSpecifier: &route.RouteAction_WeightedClusters{WeightedClusters: &route.WeightedCluster{Clusters: split}},
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
