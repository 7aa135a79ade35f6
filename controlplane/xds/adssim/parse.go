package adssim

import (
	"errors"
	"fmt"
	"sort"

	cluster "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	endpoint "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	listener "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	route "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	hcm "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	discovery "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"github.com/envoyproxy/go-control-plane/pkg/wellknown"
	"google.golang.org/protobuf/types/known/anypb"

	"github.com/bgctl/bg/controlplane/model"
)

// Weights is a route's blue/green split as the client applies it.
// The zero value means "no route yet": gRPC rejects a split that sums to 0.
type Weights struct {
	Blue, Green uint32
}

// findListener returns the named listener and the route its HCM fetches over
// RDS; nil if the response does not hold it. api requires an api_listener,
// as proxyless gRPC does.
func findListener(resp *discovery.DiscoveryResponse, name string, api bool) (*listener.Listener, string, error) {
	for _, a := range resp.GetResources() {
		l := &listener.Listener{}
		if err := a.UnmarshalTo(l); err != nil {
			return nil, "", fmt.Errorf("listener: %w", err)
		}
		if l.GetName() != name {
			continue
		}
		var cfg *anypb.Any
		if al := l.GetApiListener(); al != nil {
			cfg = al.GetApiListener()
		} else if api {
			return nil, "", fmt.Errorf("listener %s has no api_listener", name)
		}
		for _, fc := range l.GetFilterChains() {
			for _, f := range fc.GetFilters() {
				if f.GetName() == wellknown.HTTPConnectionManager && cfg == nil {
					cfg = f.GetTypedConfig()
				}
			}
		}
		m := &hcm.HttpConnectionManager{}
		if cfg == nil {
			return nil, "", fmt.Errorf("listener %s has no HttpConnectionManager", name)
		}
		if err := cfg.UnmarshalTo(m); err != nil {
			return nil, "", fmt.Errorf("listener %s: %w", name, err)
		}
		// gRPC NACKs a filter list that does not end in the router.
		fs := m.GetHttpFilters()
		if len(fs) == 0 || fs[len(fs)-1].GetName() != wellknown.Router {
			return nil, "", fmt.Errorf("listener %s: HTTP filters must end in the router", name)
		}
		r := m.GetRds().GetRouteConfigName()
		if r == "" {
			return nil, "", fmt.Errorf("listener %s does not use RDS", name)
		}
		return l, r, nil
	}
	return nil, "", nil
}

// findRoutes returns the wanted route configurations the response holds,
// by name; each resource is decoded once.
func findRoutes(resp *discovery.DiscoveryResponse, wanted []string) (map[string]*route.RouteConfiguration, error) {
	want := make(map[string]bool, len(wanted))
	for _, n := range wanted {
		want[n] = true
	}
	out := map[string]*route.RouteConfiguration{}
	for _, a := range resp.GetResources() {
		rc := &route.RouteConfiguration{}
		if err := a.UnmarshalTo(rc); err != nil {
			return nil, fmt.Errorf("route: %w", err)
		}
		if want[rc.GetName()] {
			out[rc.GetName()] = rc
		}
	}
	return out, nil
}

// weightsOf reads the first weighted_clusters action of the route.
func weightsOf(rc *route.RouteConfiguration, service string) (Weights, error) {
	for _, vh := range rc.GetVirtualHosts() {
		for _, r := range vh.GetRoutes() {
			wc := r.GetRoute().GetWeightedClusters()
			if wc == nil {
				continue
			}
			var w Weights
			for _, cw := range wc.GetClusters() {
				switch cw.GetName() {
				case model.ClusterName(service, model.Blue):
					w.Blue = cw.GetWeight().GetValue()
				case model.ClusterName(service, model.Green):
					w.Green = cw.GetWeight().GetValue()
				}
			}
			if w == (Weights{}) {
				return w, errors.New("weighted clusters sum to 0") // as gRPC NACKs
			}
			return w, nil
		}
	}
	return Weights{}, fmt.Errorf("route %s has no weighted_clusters", rc.GetName())
}

// clustersOf lists, sorted, every cluster the route references.
func clustersOf(rc *route.RouteConfiguration) []string {
	set := map[string]struct{}{}
	for _, vh := range rc.GetVirtualHosts() {
		for _, r := range vh.GetRoutes() {
			a := r.GetRoute()
			if c := a.GetCluster(); c != "" {
				set[c] = struct{}{}
			}
			for _, cw := range a.GetWeightedClusters().GetClusters() {
				set[cw.GetName()] = struct{}{}
			}
		}
	}
	return sorted(set)
}

// clustersIn returns the clusters of a response, each with the EDS name
// its endpoints are fetched under ("" for a cluster that is not EDS).
func clustersIn(resp *discovery.DiscoveryResponse) (map[string]string, error) {
	out := map[string]string{}
	for _, a := range resp.GetResources() {
		cl := &cluster.Cluster{}
		if err := a.UnmarshalTo(cl); err != nil {
			return nil, fmt.Errorf("cluster: %w", err)
		}
		eds := ""
		if cl.GetType() == cluster.Cluster_EDS {
			if eds = cl.GetEdsClusterConfig().GetServiceName(); eds == "" {
				eds = cl.GetName()
			}
		}
		out[cl.GetName()] = eds
	}
	return out, nil
}

// loadAssignmentsIn lists the cluster names of the load assignments of a response.
func loadAssignmentsIn(resp *discovery.DiscoveryResponse) ([]string, error) {
	out := make([]string, 0, len(resp.GetResources()))
	for _, a := range resp.GetResources() {
		cla := &endpoint.ClusterLoadAssignment{}
		if err := a.UnmarshalTo(cla); err != nil {
			return nil, fmt.Errorf("endpoints: %w", err)
		}
		out = append(out, cla.GetClusterName())
	}
	return out, nil
}

func sorted(set map[string]struct{}) []string {
	out := make([]string, 0, len(set))
	for n := range set {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

func sortedCopy(names []string) []string {
	out := append([]string(nil), names...)
	sort.Strings(out)
	return out
}
