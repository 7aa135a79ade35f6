// Package adssim is a simulated SotW ADS client that behaves like grpc-go's
// xDS client: LDS for one service, then RDS for the route its listener names,
// optionally CDS and EDS, ACKing (or NACKing) every response. It uses one
// goroutine per stream and no polling, so thousands fit in one process.
package adssim

import (
	"context"
	"errors"
	"fmt"
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
	Service   string // listener requested over LDS
	NodeID    string
	UserAgent string // "gRPC Go" (default) or "envoy"
	Clusters  bool   // follow the route to CDS and EDS, as grpc-go does
	Routes    RouteMode
	Delay     time.Duration // before answering a route: a slow client
	// Conn is shared with other clients when set; otherwise the client dials its own.
	Conn *grpc.ClientConn
	// OnRoute runs on the receive goroutine after a route was ACKed.
	OnRoute func(prev, next Weights)
}

// State is what the client holds; a copy is handed to predicates.
type State struct {
	Listener     *listener.Listener
	RouteName    string
	RouteVersion string // version of the last accepted route response
	Weights      Weights
	// Responses received, by type, whatever the client answered.
	Listeners, Routes, Clusters, Endpoints int
	NACKs                                  int
	Err                                    error // why the stream ended; nil while open
}

// Client is one ADS stream.
type Client struct {
	opts    Options
	conn    *grpc.ClientConn
	ownConn bool
	stream  discoveryStream
	cancel  context.CancelFunc
	done    chan struct{}
	mode    atomic.Int32

	mu     sync.Mutex
	state  State
	notify chan struct{} // closed on the next change; nil when nobody waits

	// Owned by the receive goroutine.
	sentNode bool
	acked    map[string]string // last accepted version by type
	nonces   map[string]string // last received nonce by type
	names    map[string][]string
}

type discoveryStream = discovery.AggregatedDiscoveryService_StreamAggregatedResourcesClient

// Dial opens a connection (unless opts.Conn is set) and a stream to target
// (host:port), and sends the first LDS request. ctx bounds only the setup.
func Dial(ctx context.Context, target string, opts Options) (*Client, error) {
	if opts.UserAgent == "" {
		opts.UserAgent = "gRPC Go"
	}
	c := &Client{opts: opts, conn: opts.Conn, done: make(chan struct{}),
		acked: map[string]string{}, nonces: map[string]string{}, names: map[string][]string{}}
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
		err = c.request(stream, resource.ListenerType, []string{opts.Service}, nil)
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

// SetRoutes changes how later route responses are answered.
func (c *Client) SetRoutes(m RouteMode) { c.mode.Store(int32(m)) }

// State returns a copy of what the client holds now.
func (c *Client) State() State {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.state
}

// WaitFor blocks until pred holds, the stream ends or ctx ends. It wakes
// only on a change of this client's state.
func (c *Client) WaitFor(ctx context.Context, pred func(State) bool) error {
	for {
		c.mu.Lock()
		s := c.state
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
			return fmt.Errorf("adssim %s: %w (state %+v)", c.opts.NodeID, ctx.Err(), summary(s))
		}
	}
}

func summary(s State) string {
	return fmt.Sprintf("route %q version %q weights %+v responses lds=%d rds=%d cds=%d eds=%d nacks=%d",
		s.RouteName, s.RouteVersion, s.Weights, s.Listeners, s.Routes, s.Clusters, s.Endpoints, s.NACKs)
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
		c.update(func(s *State) { s.Endpoints++ })
		return c.answer(resp, nil)
	}
	return c.answer(resp, fmt.Errorf("unexpected type %s", resp.GetTypeUrl()))
}

func (c *Client) onListener(resp *discovery.DiscoveryResponse) error {
	l, route, err := findListener(resp, c.opts.Service, c.opts.UserAgent != "envoy")
	c.update(func(s *State) {
		s.Listeners++
		if err == nil {
			s.Listener, s.RouteName = l, route
		} else {
			s.NACKs++
		}
	})
	if err != nil || l == nil {
		return c.answer(resp, err)
	}
	if err := c.answer(resp, nil); err != nil {
		return err
	}
	if old := c.names[resource.RouteType]; len(old) != 1 || old[0] != route {
		return c.request(c.stream, resource.RouteType, []string{route}, nil)
	}
	return nil
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
	var name string
	if n := c.names[resource.RouteType]; len(n) == 1 {
		name = n[0]
	}
	rc, err := findRoute(resp, name)
	var w Weights
	if err == nil && rc != nil {
		w, err = weightsOf(rc, c.opts.Service)
	}
	if err == nil && mode == Reject {
		err = fmt.Errorf("adssim: rejecting route version %s", resp.GetVersionInfo())
	}
	var prev Weights
	c.update(func(s *State) {
		switch {
		case err != nil:
			s.NACKs++
		case rc != nil:
			prev, s.Weights, s.RouteVersion = s.Weights, w, resp.GetVersionInfo()
		default:
			s.RouteVersion = resp.GetVersionInfo()
		}
	})
	if sendErr := c.answer(resp, err); sendErr != nil || err != nil || rc == nil {
		return sendErr
	}
	if c.opts.OnRoute != nil {
		c.opts.OnRoute(prev, w)
	}
	if c.opts.Clusters {
		names := clustersOf(rc)
		if !equal(names, c.names[resource.ClusterType]) {
			return c.request(c.stream, resource.ClusterType, names, nil)
		}
	}
	return nil
}

func (c *Client) onCluster(resp *discovery.DiscoveryResponse) error {
	names, err := edsNames(resp)
	c.update(func(s *State) {
		s.Clusters++
		if err != nil {
			s.NACKs++
		}
	})
	if sendErr := c.answer(resp, err); sendErr != nil || err != nil {
		return sendErr
	}
	if !equal(names, c.names[resource.EndpointType]) {
		return c.request(c.stream, resource.EndpointType, names, nil)
	}
	return nil
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
