// Package adssim is a simulated SotW ADS client that behaves like grpc-go's
// xDS client: LDS for its services, then RDS for the routes their listeners
// name, optionally CDS and EDS, ACKing (or NACKing) every response. It uses
// one goroutine per stream and no polling, so thousands fit in one process.
//
// A client follows one service (Options.Service) or several on the same
// stream (Options.Services), as a grpc-go process does: it keeps one ADS
// stream per xDS server and puts the names of every xds:/// target its
// channels dialled into that stream's requests.
package adssim

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"sync"
	"sync/atomic"
	"time"

	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	listener "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	discovery "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
)

// RouteMode says how a client answers route responses.
type RouteMode int32

const (
	// Accept ACKs every valid route, like a healthy client.
	Accept RouteMode = iota
	// Reject NACKs every route (error_detail set), like grpc-go on a config it cannot use.
	Reject
	// Ignore neither ACKs nor NACKs: a stuck or very slow client.
	Ignore
)

// Options configure one simulated client.
type Options struct {
	Service string // listener requested over LDS
	// Services, when set, replaces Service: the one stream follows each of
	// them (LDS names all, RDS every route they name, CDS and EDS the union
	// of what those routes use), as a grpc-go process with a channel per
	// service does. State's single-service fields describe Services[0].
	Services  []string
	NodeID    string
	UserAgent string // "gRPC Go" (default) or "envoy"
	Clusters  bool   // follow the route to CDS and EDS, as grpc-go does
	Routes    RouteMode
	Delay     time.Duration // before answering a route: a slow client
	// Conn is shared with other clients when set; otherwise the client dials its own.
	Conn *grpc.ClientConn
	// OnRoute runs on the receive goroutine after a route was ACKed, once
	// per followed service the route belongs to.
	OnRoute func(prev, next Weights)
	// OnServiceRoute is OnRoute with the service named.
	OnServiceRoute func(service string, prev, next Weights)
	// OnReady runs once on the receive goroutine, after the ACK that first
	// gave the client every service's full chain (see State.Ready).
	OnReady func()
}

// State is what the client holds; a copy is handed to predicates.
type State struct {
	// Listener, RouteName, RouteVersion and Weights are about the first
	// (or only) service.
	Listener     *listener.Listener
	RouteName    string
	RouteVersion string // version of the last accepted route response
	Weights      Weights
	// Responses received, by type, whatever the client answered.
	Listeners, Routes, Clusters, Endpoints int
	NACKs                                  int
	Err                                    error // why the stream ended; nil while open
	// Services is each followed service's state, by name.
	Services map[string]ServiceState
	// Ready: every service has its full chain ACKed: its listener, its
	// route with a usable split and, when following clusters, each cluster
	// the route uses and the endpoints of each EDS cluster.
	Ready bool
}

// ServiceState is what a client holds for one service.
type ServiceState struct {
	RouteName    string
	RouteVersion string // version of the last accepted response that held the route
	Weights      Weights
	Ready        bool // full chain, as State.Ready
}

// Client is one ADS stream.
type Client struct {
	opts     Options
	services []string
	conn     *grpc.ClientConn
	ownConn  bool
	stream   discoveryStream
	cancel   context.CancelFunc
	done     chan struct{}
	mode     atomic.Int32

	mu     sync.Mutex
	state  State
	notify chan struct{} // closed on the next change; nil when nobody waits

	// Owned by the receive goroutine.
	sentNode      bool
	readyFired    bool
	acked         map[string]string   // last accepted version by type
	nonces        map[string]string   // last received nonce by type
	names         map[string][]string // subscribed names by type
	listenerRoute map[string]string   // service -> route its listener names
	routeClusters map[string][]string // route -> clusters it uses (accepted)
	routeWeights  map[string]Weights  // route -> accepted split
	clusterEDS    map[string]string   // cluster held -> EDS name ("" if not EDS)
	endpoints     map[string]struct{} // load assignments held, by cluster name
}

type discoveryStream = discovery.AggregatedDiscoveryService_StreamAggregatedResourcesClient

// Dial opens a connection (unless opts.Conn is set) and a stream to target
// (host:port), and sends the first LDS request. ctx bounds only the setup.
func Dial(ctx context.Context, target string, opts Options) (*Client, error) {
	if opts.UserAgent == "" {
		opts.UserAgent = "gRPC Go"
	}
	services := []string{opts.Service}
	if len(opts.Services) > 0 {
		services = nil
		seen := map[string]bool{}
		for _, s := range opts.Services {
			if !seen[s] {
				seen[s] = true
				services = append(services, s)
			}
		}
	}
	c := &Client{opts: opts, services: services, conn: opts.Conn, done: make(chan struct{}),
		acked: map[string]string{}, nonces: map[string]string{}, names: map[string][]string{},
		listenerRoute: map[string]string{}, routeClusters: map[string][]string{}, routeWeights: map[string]Weights{},
		clusterEDS: map[string]string{}, endpoints: map[string]struct{}{}}
	c.state.Services = make(map[string]ServiceState, len(services))
	for _, s := range services {
		c.state.Services[s] = ServiceState{}
	}
	c.mode.Store(int32(opts.Routes))
	if c.conn == nil {
		conn, err := NewConn(target)
		if err != nil {
			return nil, err
		}
		c.conn, c.ownConn = conn, true
	}
	// The stream outlives ctx; ctx only aborts a setup that hangs.
	sctx, cancel := context.WithCancel(context.Background())
	stop := context.AfterFunc(ctx, cancel)
	stream, err := discovery.NewAggregatedDiscoveryServiceClient(c.conn).StreamAggregatedResources(sctx)
	if err == nil {
		err = c.request(stream, resource.ListenerType, sortedCopy(services), nil)
	}
	if !stop() || err != nil {
		cancel()
		if c.ownConn {
			_ = c.conn.Close()
		}
		return nil, errors.Join(fmt.Errorf("adssim: open stream for %s", opts.NodeID), err, ctx.Err())
	}
	c.stream, c.cancel = stream, cancel
	go c.run()
	return c, nil
}

// NewConn dials target without TLS, for clients that share it.
func NewConn(target string) (*grpc.ClientConn, error) {
	return grpc.NewClient("passthrough:///"+target, grpc.WithTransportCredentials(insecure.NewCredentials()))
}

// Close ends the stream, as a client that goes away does.
func (c *Client) Close() {
	c.cancel()
	<-c.done
	if c.ownConn {
		_ = c.conn.Close()
	}
}

// NodeID is the node id the client sent.
func (c *Client) NodeID() string { return c.opts.NodeID }

// Services lists the services the client follows.
func (c *Client) Services() []string { return append([]string(nil), c.services...) }

// SetRoutes changes how later route responses are answered.
func (c *Client) SetRoutes(m RouteMode) { c.mode.Store(int32(m)) }

// State returns a copy of what the client holds now.
func (c *Client) State() State {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.copyState()
}

// copyState copies the state, its map included; c.mu is held.
func (c *Client) copyState() State {
	s := c.state
	s.Services = maps.Clone(c.state.Services)
	return s
}

// WaitFor blocks until pred holds, the stream ends or ctx ends. It wakes
// only on a change of this client's state.
func (c *Client) WaitFor(ctx context.Context, pred func(State) bool) error {
	for {
		c.mu.Lock()
		s := c.copyState()
		if pred(s) {
			c.mu.Unlock()
			return nil
		}
		if s.Err != nil {
			c.mu.Unlock()
			return fmt.Errorf("adssim %s: stream ended: %w", c.opts.NodeID, s.Err)
		}
		if c.notify == nil {
			c.notify = make(chan struct{})
		}
		ch := c.notify
		c.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return fmt.Errorf("adssim %s: %w (state %+v)", c.opts.NodeID, ctx.Err(), Summary(s))
		}
	}
}

// Summary describes a state in one line, for error messages.
func Summary(s State) string {
	out := fmt.Sprintf("route %q version %q weights %+v responses lds=%d rds=%d cds=%d eds=%d nacks=%d",
		s.RouteName, s.RouteVersion, s.Weights, s.Listeners, s.Routes, s.Clusters, s.Endpoints, s.NACKs)
	if len(s.Services) > 1 {
		ready := 0
		for _, ss := range s.Services {
			if ss.Ready {
				ready++
			}
		}
		out += fmt.Sprintf(" services ready %d/%d", ready, len(s.Services))
	}
	return out
}

func (c *Client) update(f func(*State)) {
	c.mu.Lock()
	f(&c.state)
	if c.notify != nil {
		close(c.notify)
		c.notify = nil
	}
	c.mu.Unlock()
}

func (c *Client) run() {
	defer close(c.done)
	for {
		resp, err := c.stream.Recv()
		if err == nil {
			err = c.handle(resp)
		}
		if err != nil {
			c.cancel()
			c.update(func(s *State) { s.Err = err })
			return
		}
	}
}

// request sends a DiscoveryRequest; nack != nil makes it a NACK of the last response of that type.
func (c *Client) request(stream discoveryStream, typeURL string, names []string, nack error) error {
	req := &discovery.DiscoveryRequest{
		TypeUrl:       typeURL,
		ResourceNames: names,
		VersionInfo:   c.acked[typeURL],
		ResponseNonce: c.nonces[typeURL],
	}
	if !c.sentNode { // grpc-go sends the node on the first request only
		req.Node = &core.Node{Id: c.opts.NodeID, UserAgentName: c.opts.UserAgent,
			ClientFeatures: []string{"envoy.lb.does_not_support_overprovisioning", "xds.config.resource-in-sotw"}}
		c.sentNode = true
	}
	if nack != nil {
		req.ErrorDetail = &status.Status{Code: int32(codes.InvalidArgument), Message: nack.Error()}
	}
	c.names[typeURL] = names
	return stream.Send(req)
}

// answer ACKs (nack == nil) or NACKs a response, keeping the subscription.
func (c *Client) answer(resp *discovery.DiscoveryResponse, nack error) error {
	if nack == nil {
		c.acked[resp.GetTypeUrl()] = resp.GetVersionInfo()
	}
	return c.request(c.stream, resp.GetTypeUrl(), c.names[resp.GetTypeUrl()], nack)
}

func (c *Client) handle(resp *discovery.DiscoveryResponse) error {
	c.nonces[resp.GetTypeUrl()] = resp.GetNonce()
	switch resp.GetTypeUrl() {
	case resource.ListenerType:
		return c.onListener(resp)
	case resource.RouteType:
		return c.onRoute(resp)
	case resource.ClusterType:
		return c.onCluster(resp)
	case resource.EndpointType:
		return c.onEndpoints(resp)
	}
	return c.answer(resp, fmt.Errorf("unexpected type %s", resp.GetTypeUrl()))
}

func (c *Client) onListener(resp *discovery.DiscoveryResponse) error {
	type found struct {
		l     *listener.Listener
		route string
	}
	got := map[string]found{}
	var err error
	for _, svc := range c.services {
		l, route, ferr := findListener(resp, svc, c.opts.UserAgent != "envoy")
		if ferr != nil {
			err = ferr
			break
		}
		if l != nil {
			got[svc] = found{l, route}
		}
	}
	if err == nil {
		for svc, f := range got {
			c.listenerRoute[svc] = f.route
		}
	}
	ready := c.readiness()
	c.update(func(s *State) {
		s.Listeners++
		if err != nil {
			s.NACKs++
			return
		}
		if f, ok := got[c.services[0]]; ok {
			s.Listener, s.RouteName = f.l, f.route
		}
		for svc, f := range got {
			ss := s.Services[svc]
			ss.RouteName = f.route
			s.Services[svc] = ss
		}
		c.setReady(s, ready)
	})
	if err != nil || len(got) == 0 {
		return c.answer(resp, err)
	}
	if err := c.answer(resp, nil); err != nil {
		return err
	}
	c.fireReady(ready)
	if routes := c.wantedRoutes(); !equal(routes, c.names[resource.RouteType]) {
		return c.request(c.stream, resource.RouteType, routes, nil)
	}
	return nil
}

// wantedRoutes lists, sorted, the routes the held listeners name.
func (c *Client) wantedRoutes() []string {
	set := map[string]struct{}{}
	for _, r := range c.listenerRoute {
		set[r] = struct{}{}
	}
	return sorted(set)
}

// servicesOf lists the followed services whose listener names route, in order.
func (c *Client) servicesOf(route string) []string {
	var out []string
	for _, svc := range c.services {
		if c.listenerRoute[svc] == route {
			out = append(out, svc)
		}
	}
	return out
}

type routeUpdate struct {
	service string
	prev, w Weights
}

func (c *Client) onRoute(resp *discovery.DiscoveryResponse) error {
	mode := RouteMode(c.mode.Load()) // as it was when the response arrived
	c.update(func(s *State) { s.Routes++ })
	if mode == Ignore {
		return nil
	}
	if c.opts.Delay > 0 {
		t := time.NewTimer(c.opts.Delay)
		defer t.Stop()
		select {
		case <-t.C:
		case <-c.stream.Context().Done():
			return c.stream.Context().Err()
		}
	}
	held, err := findRoutes(resp, c.names[resource.RouteType])
	weights := map[string]Weights{}
	for name, rc := range held {
		if err != nil {
			break
		}
		svcs := c.servicesOf(name)
		if len(svcs) == 0 {
			continue
		}
		weights[name], err = weightsOf(rc, svcs[0])
	}
	if err == nil && mode == Reject {
		err = fmt.Errorf("adssim: rejecting route version %s", resp.GetVersionInfo())
	}
	var updates []routeUpdate
	if err == nil {
		for name, w := range weights {
			c.routeWeights[name] = w
			c.routeClusters[name] = clustersOf(held[name])
		}
	}
	ready := c.readiness()
	c.update(func(s *State) {
		if err != nil {
			s.NACKs++
			return
		}
		s.RouteVersion = resp.GetVersionInfo()
		for name, w := range weights {
			for _, svc := range c.servicesOf(name) {
				ss := s.Services[svc]
				updates = append(updates, routeUpdate{svc, ss.Weights, w})
				ss.Weights, ss.RouteVersion = w, resp.GetVersionInfo()
				s.Services[svc] = ss
				if svc == c.services[0] {
					s.Weights = w
				}
			}
		}
		c.setReady(s, ready)
	})
	if sendErr := c.answer(resp, err); sendErr != nil || err != nil || len(weights) == 0 {
		return sendErr
	}
	for _, u := range updates {
		if c.opts.OnRoute != nil {
			c.opts.OnRoute(u.prev, u.w)
		}
		if c.opts.OnServiceRoute != nil {
			c.opts.OnServiceRoute(u.service, u.prev, u.w)
		}
	}
	c.fireReady(ready)
	if c.opts.Clusters {
		set := map[string]struct{}{}
		for _, r := range c.wantedRoutes() {
			for _, cl := range c.routeClusters[r] {
				set[cl] = struct{}{}
			}
		}
		if names := sorted(set); !equal(names, c.names[resource.ClusterType]) {
			return c.request(c.stream, resource.ClusterType, names, nil)
		}
	}
	return nil
}

func (c *Client) onCluster(resp *discovery.DiscoveryResponse) error {
	held, err := clustersIn(resp)
	if err == nil {
		// CDS is full state in SotW: what is not in the response is gone.
		c.clusterEDS = held
	}
	if ok, sendErr := c.record(resp, err, func(s *State) { s.Clusters++ }); !ok {
		return sendErr
	}
	set := map[string]struct{}{}
	for _, eds := range held {
		if eds != "" {
			set[eds] = struct{}{}
		}
	}
	if names := sorted(set); !equal(names, c.names[resource.EndpointType]) {
		return c.request(c.stream, resource.EndpointType, names, nil)
	}
	return nil
}

func (c *Client) onEndpoints(resp *discovery.DiscoveryResponse) error {
	names, err := loadAssignmentsIn(resp)
	if err == nil {
		// EDS is not full state: a response carries the changed ones only.
		for _, n := range names {
			c.endpoints[n] = struct{}{}
		}
	}
	_, sendErr := c.record(resp, err, func(s *State) { s.Endpoints++ })
	return sendErr
}

// record counts a CDS or EDS response, answers it (ACK, or NACK when err is
// set) and reports readiness; ok is false when it was rejected or the
// answer could not be sent (sendErr).
func (c *Client) record(resp *discovery.DiscoveryResponse, err error, count func(*State)) (ok bool, sendErr error) {
	ready := c.readiness()
	c.update(func(s *State) {
		count(s)
		if err != nil {
			s.NACKs++
			return
		}
		c.setReady(s, ready)
	})
	if sendErr := c.answer(resp, err); sendErr != nil || err != nil {
		return false, sendErr
	}
	c.fireReady(ready)
	return true, nil
}

// readiness says, per followed service, whether the client holds its full
// chain; called on the receive goroutine after the held maps changed.
func (c *Client) readiness() map[string]bool {
	out := make(map[string]bool, len(c.services))
	for _, svc := range c.services {
		out[svc] = c.chainOf(svc)
	}
	return out
}

func (c *Client) chainOf(svc string) bool {
	r, ok := c.listenerRoute[svc]
	if !ok {
		return false
	}
	if _, ok := c.routeWeights[r]; !ok {
		return false
	}
	if !c.opts.Clusters {
		return true
	}
	for _, cl := range c.routeClusters[r] {
		eds, ok := c.clusterEDS[cl]
		if !ok {
			return false
		}
		if eds == "" {
			continue
		}
		if _, ok := c.endpoints[eds]; !ok {
			return false
		}
	}
	return true
}

// setReady records readiness in the state; c.mu is held.
func (c *Client) setReady(s *State, ready map[string]bool) {
	all := true
	for svc, ok := range ready {
		ss := s.Services[svc]
		ss.Ready = ok
		s.Services[svc] = ss
		all = all && ok
	}
	s.Ready = all
}

// fireReady runs OnReady once, after the ACK that made every chain complete.
func (c *Client) fireReady(ready map[string]bool) {
	if c.readyFired || c.opts.OnReady == nil {
		return
	}
	for _, ok := range ready {
		if !ok {
			return
		}
	}
	c.readyFired = true
	c.opts.OnReady()
}

func equal(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
