// Package xds owns bg's go-control-plane caches and ADS server, and tracks
// which proxies hold which route version.
package xds

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"slices"
	"sync"
	"time"

	discoverygrpc "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"github.com/envoyproxy/go-control-plane/pkg/cache/types"
	"github.com/envoyproxy/go-control-plane/pkg/cache/v3"
	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	serverv3 "github.com/envoyproxy/go-control-plane/pkg/server/v3"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/protobuf/proto"

	"github.com/bgctl/bg/controlplane/model"
	"github.com/bgctl/bg/controlplane/translator"
)

// Server serves ADS from one LinearCache per resource type (listeners: one
// per flavour). A LinearCache marshals each resource once for all streams
// and only answers the streams subscribed to what changed.
type Server struct {
	clusters, endpoints, routes *cache.LinearCache
	listeners                   map[model.Flavour]*cache.LinearCache
	mux                         *cache.MuxCache
	tracker                     *tracker
	log                         *slog.Logger

	// routeMu serialises route writes so routeCounter mirrors the route
	// cache's own version counter, which it bumps once per write.
	routeMu       sync.Mutex
	routeCounter  uint64
	routeVersions map[string]uint64
	routeRes      map[string]types.Resource // what the route cache holds, by name

	// tlsSrc and failures are set by UseTLS (tls.go); nil serves plaintext.
	tlsSrc   *tlsSource
	failures *failures
}

// SetActivityHook sets f to be called, without blocking, on every stream
// opened and every request received (serve uses it to return a burst's
// memory once xDS goes quiet: controlplane/memrelease). nil removes it.
func (s *Server) SetActivityHook(f func()) {
	if f == nil {
		s.tracker.activity.Store(nil)
		return
	}
	s.tracker.activity.Store(&f)
}

// NewServer builds an empty server. Versions carry a per-process random
// prefix so a restarted or second replica never reuses a version string.
func NewServer(log *slog.Logger, reg prometheus.Registerer) *Server {
	id := make([]byte, 4)
	_, _ = rand.Read(id)
	prefix := "bg-" + hex.EncodeToString(id) + "-"
	linear := func(typeURL, kind string) *cache.LinearCache {
		return cache.NewLinearCache(typeURL, cache.WithVersionPrefix(prefix+kind+"-"))
	}
	s := &Server{
		clusters:  linear(resource.ClusterType, "cds"),
		endpoints: linear(resource.EndpointType, "eds"),
		routes:    linear(resource.RouteType, "rds"),
		listeners: map[model.Flavour]*cache.LinearCache{
			model.FlavourEnvoy: linear(resource.ListenerType, "lds-envoy"),
			model.FlavourGRPC:  linear(resource.ListenerType, "lds-grpc"),
		},
		log:           log,
		routeVersions: map[string]uint64{},
		routeRes:      map[string]types.Resource{},
	}
	s.tracker = newTracker(prefix+"rds-", newMetrics(reg), log)
	s.mux = &cache.MuxCache{
		Classify: classify,
		Caches: map[string]cache.Cache{
			resource.ClusterType:            s.clusters,
			resource.EndpointType:           s.endpoints,
			resource.RouteType:              s.routes,
			listenerKey(model.FlavourEnvoy): s.listeners[model.FlavourEnvoy],
			listenerKey(model.FlavourGRPC):  s.listeners[model.FlavourGRPC],
		},
	}
	return s
}

func listenerKey(f model.Flavour) string { return resource.ListenerType + "/" + string(f) }

// classify routes listener requests by the node's flavour; the server
// copies the stream's node into every request before the cache sees it.
func classify(req *cache.Request) string {
	if req.GetTypeUrl() == resource.ListenerType {
		return listenerKey(FlavourOf(req.GetNode()))
	}
	return req.GetTypeUrl()
}

// Load replaces every resource; used once the model is first complete.
func (s *Server) Load(r translator.Resources) {
	s.clusters.SetResources(r.Clusters)
	s.endpoints.SetResources(r.Endpoints)
	for f, ls := range r.Listeners {
		s.listeners[f].SetResources(ls)
	}
	s.routeMu.Lock()
	s.routes.SetResources(r.Routes)
	s.routeCounter++
	s.routeRes = map[string]types.Resource{}
	for name, res := range r.Routes {
		s.routeVersions[name] = s.routeCounter
		s.routeRes[name] = res
	}
	s.routeMu.Unlock()
}

// UpdateRoute pushes one service's route and returns the route version that
// proxies must ACK to hold it.
func (s *Server) UpdateRoute(name string, r types.Resource) (uint64, error) {
	s.routeMu.Lock()
	defer s.routeMu.Unlock()
	if err := s.routes.UpdateResource(name, r); err != nil {
		return 0, fmt.Errorf("update route %s: %w", name, err)
	}
	s.routeCounter++
	s.routeVersions[name] = s.routeCounter
	s.routeRes[name] = r
	return s.routeCounter, nil
}

// UpdateService adds or replaces the given resources (one service's) of
// every type; others are left alone.
func (s *Server) UpdateService(r translator.Resources) error {
	if err := s.clusters.UpdateResources(r.Clusters, nil); err != nil {
		return err
	}
	if err := s.endpoints.UpdateResources(r.Endpoints, nil); err != nil {
		return err
	}
	for f, ls := range r.Listeners {
		if err := s.listeners[f].UpdateResources(ls, nil); err != nil {
			return err
		}
	}
	s.routeMu.Lock()
	defer s.routeMu.Unlock()
	if err := s.routes.UpdateResources(r.Routes, nil); err != nil {
		return err
	}
	s.routeCounter++
	for name, res := range r.Routes {
		s.routeVersions[name] = s.routeCounter
		s.routeRes[name] = res
	}
	return nil
}

// RemoveService removes the given resources (one service's) of every
// type, break-before-unmake: listeners first, then the route, then
// clusters and endpoints, so no proxy is left routing to a cluster it
// lost.
func (s *Server) RemoveService(r translator.Resources) error {
	for f, ls := range r.Listeners {
		if err := s.listeners[f].UpdateResources(nil, slices.Collect(maps.Keys(ls))); err != nil {
			return err
		}
	}
	s.routeMu.Lock()
	err := s.routes.UpdateResources(nil, slices.Collect(maps.Keys(r.Routes)))
	if err == nil {
		s.routeCounter++
		for name := range r.Routes {
			delete(s.routeVersions, name)
			delete(s.routeRes, name)
		}
	}
	s.routeMu.Unlock()
	if err != nil {
		return err
	}
	if err := s.clusters.UpdateResources(nil, slices.Collect(maps.Keys(r.Clusters))); err != nil {
		return err
	}
	return s.endpoints.UpdateResources(nil, slices.Collect(maps.Keys(r.Endpoints)))
}

// UpdateEndpoints pushes changed load assignments in one batch.
func (s *Server) UpdateEndpoints(cla map[string]types.Resource) error {
	return s.endpoints.UpdateResources(cla, nil)
}

// WaitRoute waits until every proxy subscribed to the route holds its
// latest version (or a later one), or ctx ends.
func (s *Server) WaitRoute(ctx context.Context, name string) AckResult {
	s.routeMu.Lock()
	v := s.routeVersions[name]
	s.routeMu.Unlock()
	return s.tracker.waitRoute(ctx, name, v)
}

// RouteStatus counts proxies subscribed to a route and those holding its latest version.
func (s *Server) RouteStatus(name string) (subscribed, acked int) {
	s.routeMu.Lock()
	v := s.routeVersions[name]
	s.routeMu.Unlock()
	return s.tracker.routeStatus(name, v)
}

// Proxies lists connected streams.
func (s *Server) Proxies() []ProxyInfo { return s.tracker.proxiesList() }

// Serve runs ADS on lis until ctx ends.
func (s *Server) Serve(ctx context.Context, lis net.Listener) error {
	opts := []grpc.ServerOption{
		grpc.KeepaliveParams(keepalive.ServerParameters{Time: 30 * time.Second, Timeout: 10 * time.Second}),
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: 10 * time.Second, PermitWithoutStream: true}),
	}
	if s.tlsSrc != nil {
		opts = append(opts, grpc.Creds(s.serverCreds()))
	}
	gs := grpc.NewServer(opts...)
	xs := serverv3.NewServer(ctx, s.mux, boundRequests(s.callbacks())) // limits.go
	discoverygrpc.RegisterAggregatedDiscoveryServiceServer(gs, xs)
	go func() {
		<-ctx.Done()
		gs.Stop()
	}()
	if err := gs.Serve(lis); err != nil && ctx.Err() == nil {
		return err
	}
	return nil
}

// UpdateRouteGen pushes one service's route as serving traffic generation
// gen and returns the route version proxies must ACK to hold it. A route
// equal to the one in the cache is not pushed again: gen is declared for
// the version proxies already hold (as MarkRouteGen does). Call it on every
// generation a replica adopts, whether or not the route changed, so that
// RouteAcks can answer for that generation.
func (s *Server) UpdateRouteGen(name string, r types.Resource, gen uint64) (uint64, error) {
	s.routeMu.Lock()
	defer s.routeMu.Unlock()
	v, known := s.routeVersions[name]
	if cur := s.routeRes[name]; !known || cur == nil || !proto.Equal(cur, r) {
		if err := s.routes.UpdateResource(name, r); err != nil {
			return 0, fmt.Errorf("update route %s: %w", name, err)
		}
		s.routeCounter++
		v = s.routeCounter
		s.routeVersions[name], s.routeRes[name] = v, r
	}
	s.tracker.declare(name, v, gen)
	return v, nil
}

// MarkRouteGen declares that the route now in the cache serves traffic
// generation gen: after Load or UpdateService, or for a generation that
// did not change the route. A route never written is ignored.
func (s *Server) MarkRouteGen(name string, gen uint64) {
	s.routeMu.Lock()
	defer s.routeMu.Unlock()
	if v, ok := s.routeVersions[name]; ok {
		s.tracker.declare(name, v, gen)
	}
}

// RouteGeneration is the traffic generation the route in the cache serves
// (0: none declared).
func (s *Server) RouteGeneration(name string) uint64 { return s.tracker.routeGeneration(name) }

// RouteAcks reports this server's proxies subscribed to the route and which
// of them hold generation gen (0: the generation the route serves now). A
// proxy holds gen once it ACKed a response carrying the route at a version
// that serves gen or later.
func (s *Server) RouteAcks(name string, gen uint64) AckReport { return s.tracker.routeAcks(name, gen) }

// RouteNoSessions lists the proxies using a route whose client may not
// keep sessions through a roll (ClientSessions): for rolling services.
func (s *Server) RouteNoSessions(name string) []ProxyInfo { return s.tracker.routeNoSessions(name) }

// WatchAcks returns a channel that receives (without blocking the server;
// signals coalesce) whenever a RouteAcks answer may have changed: route
// ACKs and NACKs, subscriptions, disconnects and generation declarations.
// Call stop when done.
func (s *Server) WatchAcks() (changed <-chan struct{}, stop func()) { return s.tracker.watch() }

// WaitRouteGen waits until every proxy subscribed to the route holds
// generation gen, every remaining one rejected a route carrying gen or
// later, or ctx ends. Proxies that disconnect stop counting.
func (s *Server) WaitRouteGen(ctx context.Context, name string, gen uint64) AckReport {
	return s.tracker.waitRouteGen(ctx, name, gen)
}
