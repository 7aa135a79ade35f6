package translator

import (
	"fmt"
	"regexp"

	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	route "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	matcher "github.com/envoyproxy/go-control-plane/envoy/type/matcher/v3"
	typev3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"

	"github.com/bgctl/bg/controlplane/model"
)

// candidate is the colour pools and mirrors go to, or "" for none. A
// rolling service's hosts are replaced in place, so it has no candidate
// fleet to preview.
func candidate(s model.Service, t model.Traffic) model.Color {
	if s.Stateful() {
		return ""
	}
	return t.Candidate()
}

// poolRoutes send each pool's requests to the candidate whatever the split.
// They go after the pin routes, so x-bg-color still wins.
func poolRoutes(s model.Service, c model.Color, hash []*route.RouteAction_HashPolicy) []*route.Route {
	routes := make([]*route.Route, 0, len(s.Pools))
	for i, p := range s.Pools {
		routes = append(routes, &route.Route{
			Name: fmt.Sprintf("pool-%d", i),
			Match: &route.RouteMatch{
				PathSpecifier: &route.RouteMatch_Prefix{Prefix: "/"},
				Headers:       []*route.HeaderMatcher{poolMatcher(p)},
			},
			Action: &route.Route_Route{Route: &route.RouteAction{
				ClusterSpecifier: &route.RouteAction_Cluster{Cluster: model.ClusterName(s.Name, c)},
				HashPolicy:       hash,
			}},
		})
	}
	return routes
}

func poolMatcher(p model.Pool) *route.HeaderMatcher {
	if p.Cookie == "" {
		return &route.HeaderMatcher{
			Name: p.Header,
			HeaderMatchSpecifier: &route.HeaderMatcher_StringMatch{StringMatch: &matcher.StringMatcher{
				MatchPattern: &matcher.StringMatcher_Exact{Exact: p.Value},
			}},
		}
	}
	// Neither Envoy nor gRPC matches on cookies, so match the Cookie header.
	return &route.HeaderMatcher{
		Name: "cookie",
		HeaderMatchSpecifier: &route.HeaderMatcher_StringMatch{StringMatch: &matcher.StringMatcher{
			MatchPattern: &matcher.StringMatcher_SafeRegex{SafeRegex: &matcher.RegexMatcher{Regex: cookieRegex(p.Cookie, p.Value)}},
		}},
	}
}

// cookieRegex matches name=value as a whole pair anywhere in a Cookie
// header. Envoy and grpc-go full-match safe_regex, so it spans the value.
func cookieRegex(name, value string) string {
	return `(^|.*;\s*)` + regexp.QuoteMeta(name) + "=" + regexp.QuoteMeta(value) + `(;.*|$)`
}

// mirrorPolicies copy MirrorPercent of the split's requests to the
// candidate. None once it holds all traffic: it would get them twice.
func mirrorPolicies(s model.Service, t model.Traffic, c model.Color) []*route.RouteAction_RequestMirrorPolicy {
	if c == "" || s.MirrorPercent <= 0 || t.Percent(c) >= 100 {
		return nil
	}
	return []*route.RouteAction_RequestMirrorPolicy{{
		Cluster: model.ClusterName(s.Name, c),
		RuntimeFraction: &core.RuntimeFractionalPercent{DefaultValue: &typev3.FractionalPercent{
			Numerator:   uint32(min(s.MirrorPercent, 100)),
			Denominator: typev3.FractionalPercent_HUNDRED,
		}},
	}}
}
