package xds_test

import (
	"context"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/bgctl/bg/controlplane/model"
	"github.com/bgctl/bg/controlplane/translator"
	"github.com/bgctl/bg/controlplane/xds"
	"github.com/bgctl/bg/controlplane/xds/adssim"
)

const listenerPort = 10000

func view(greenPercent int) model.View {
	return model.View{
		EnvoyListenAddress: "0.0.0.0",
		Services: []model.ServiceView{{
			Service: model.Service{Name: "web", ListenerPort: listenerPort, Protocol: model.ProtocolHTTP2},
			Membership: model.Membership{
				Blue:  model.Fleet{Endpoints: []model.Endpoint{{ID: "b1", Address: "10.0.0.1", Port: 8080, Weight: 1}}},
				Green: model.Fleet{Endpoints: []model.Endpoint{{ID: "g1", Address: "10.0.1.1", Port: 8080, Weight: 1}}},
			},
			Traffic: model.Traffic{Stable: model.Blue, GreenPercent: greenPercent, Phase: model.PhaseStable, Generation: 1},
		}},
	}
}

func resources(greenPercent int) translator.Resources {
	return translator.Translate(view(greenPercent))
}

func split(greenPercent int) adssim.Weights {
	return adssim.Weights{Blue: uint32(100 - greenPercent), Green: uint32(greenPercent)}
}

// startServer serves a loaded xds.Server on a loopback port until the test ends.
func startServer(t *testing.T, reg prometheus.Registerer) (*xds.Server, string) {
	t.Helper()
	s := xds.NewServer(slog.New(slog.DiscardHandler), reg)
	s.Load(resources(0))
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx, lis) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
	})
	return s, lis.Addr().String()
}

func dial(t *testing.T, addr string, o adssim.Options) *adssim.Client {
	t.Helper()
	if o.Service == "" {
		o.Service = "web"
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := adssim.Dial(ctx, addr, o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

func waitFor(t *testing.T, c *adssim.Client, what string, pred func(adssim.State) bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := c.WaitFor(ctx, pred); err != nil {
		t.Fatalf("waiting for %s: %v", what, err)
	}
}

func holds(w adssim.Weights) func(adssim.State) bool {
	return func(s adssim.State) bool { return s.Weights == w }
}

func updateRoute(t *testing.T, s *xds.Server, greenPercent int) {
	t.Helper()
	if _, err := s.UpdateRoute("web", resources(greenPercent).Routes["web"]); err != nil {
		t.Fatal(err)
	}
}

// waitRoute runs WaitRoute with a generous deadline and fails if it ran out:
// the tests expect it to finish on ACKs, NACKs or disconnects, never on time.
func waitRoute(t *testing.T, s *xds.Server) xds.AckResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	res := s.WaitRoute(ctx, "web")
	if ctx.Err() != nil {
		t.Fatalf("WaitRoute ran into its deadline: %+v", res)
	}
	return res
}

func TestFlavoursGetTheirListeners(t *testing.T) {
	_, addr := startServer(t, nil)
	g := dial(t, addr, adssim.Options{NodeID: "grpc", Clusters: true})
	e := dial(t, addr, adssim.Options{NodeID: "envoy", UserAgent: "envoy", Clusters: true})
	for _, c := range []*adssim.Client{g, e} {
		waitFor(t, c, "route and endpoints", func(s adssim.State) bool { return s.Weights == split(0) && s.Endpoints > 0 })
	}

	gs, es := g.State(), e.State()
	if gs.Listener.GetName() != "web" || gs.Listener.GetApiListener() == nil || gs.Listener.GetAddress() != nil {
		t.Errorf("gRPC client got %v, want api_listener web without an address", gs.Listener)
	}
	sa := es.Listener.GetAddress().GetSocketAddress()
	if es.Listener.GetName() != "web" || es.Listener.GetApiListener() != nil || sa.GetPortValue() != listenerPort {
		t.Errorf("Envoy client got %v, want socket listener web on port %d", es.Listener, listenerPort)
	}
	for name, s := range map[string]adssim.State{"grpc": gs, "envoy": es} {
		if s.RouteName != "web" || s.RouteVersion == "" || s.NACKs != 0 {
			t.Errorf("%s: route %q version %q nacks %d", name, s.RouteName, s.RouteVersion, s.NACKs)
		}
	}
}

func TestWaitRouteCountsEveryACK(t *testing.T) {
	s, addr := startServer(t, nil)
	clients := []*adssim.Client{
		dial(t, addr, adssim.Options{NodeID: "g1"}),
		dial(t, addr, adssim.Options{NodeID: "g2"}),
		dial(t, addr, adssim.Options{NodeID: "g3"}),
		dial(t, addr, adssim.Options{NodeID: "e1", UserAgent: "envoy"}),
	}
	for _, c := range clients {
		waitFor(t, c, "initial route", holds(split(0)))
	}

	updateRoute(t, s, 100)
	res := waitRoute(t, s)
	if !res.Complete() || res.Acked != len(clients) {
		t.Fatalf("WaitRoute = %+v, want complete with %d ACKs", res, len(clients))
	}
	// Clients record a route before ACKing it, so no waiting here.
	for i, c := range clients {
		if w := c.State().Weights; w != split(100) {
			t.Errorf("client %d holds %+v after WaitRoute, want %+v", i, w, split(100))
		}
	}
	if sub, acked := s.RouteStatus("web"); sub != len(clients) || acked != len(clients) {
		t.Errorf("RouteStatus = %d subscribed, %d acked; want %d, %d", sub, acked, len(clients), len(clients))
	}
}

func TestNACKedRouteIsNotResentInALoop(t *testing.T) {
	reg := prometheus.NewRegistry()
	s, addr := startServer(t, reg)
	good := dial(t, addr, adssim.Options{NodeID: "good"})
	// Rejecting from the first route on is the hard case: the NACK carries
	// version_info "", which makes a LinearCache answer again at once.
	bad := dial(t, addr, adssim.Options{NodeID: "bad", Routes: adssim.Reject})
	waitFor(t, good, "initial route", holds(split(0)))
	waitFor(t, bad, "first NACK", func(s adssim.State) bool { return s.NACKs > 0 })

	quiet := func(when string) int {
		before := bad.State().Routes
		time.Sleep(time.Second)
		after := bad.State().Routes
		if after-before > 1 {
			t.Errorf("%s: %d route responses in 1 s to a client that NACKs them, want <= 1", when, after-before)
		}
		return after
	}
	seen := quiet("after the first NACK")
	if n := nackCount(t, reg); n < 1 {
		t.Errorf("bg_xds_nacks_total{type=RouteConfiguration} = %v, want >= 1", n)
	}

	updateRoute(t, s, 100)
	res := waitRoute(t, s)
	if res.Acked != 1 || len(res.Pending) != 1 || res.Pending[0].NodeID != "bad" {
		t.Fatalf("WaitRoute = %+v, want 1 ACK and the rejecting client pending", res)
	}
	if n := res.Pending[0].LastNACK; n == nil || !strings.Contains(n.Message, "rejecting route") {
		t.Errorf("pending proxy LastNACK = %+v, want the client's message", n)
	}
	if got := bad.State().Routes; got <= seen {
		t.Errorf("the new route never reached the rejecting client (%d responses, had %d)", got, seen)
	}
	quiet("after the second NACK")

	// The stream is not stuck: once the client accepts again, the next change lands.
	bad.SetRoutes(adssim.Accept)
	updateRoute(t, s, 50)
	if res := waitRoute(t, s); !res.Complete() || res.Acked != 2 {
		t.Fatalf("WaitRoute after recovery = %+v, want complete with 2 ACKs", res)
	}
	if w := bad.State().Weights; w != split(50) {
		t.Errorf("recovered client holds %+v, want %+v", w, split(50))
	}
	if n, sent := nackCount(t, reg), bad.State().NACKs; n != 2 || sent != 2 {
		t.Errorf("NACKs: metric %v, sent by client %d; want 2 and 2", n, sent)
	}
}

// nackCount reads bg_xds_nacks_total for routes from the registry.
func nackCount(t *testing.T, reg *prometheus.Registry) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "bg_xds_nacks_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "type" && l.GetValue() == "RouteConfiguration" {
					return m.GetCounter().GetValue()
				}
			}
		}
	}
	return 0
}

func TestWaitRouteDropsDisconnectedProxy(t *testing.T) {
	s, addr := startServer(t, nil)
	good := dial(t, addr, adssim.Options{NodeID: "good"})
	stuck := dial(t, addr, adssim.Options{NodeID: "stuck", Routes: adssim.Ignore})
	waitFor(t, good, "initial route", holds(split(0)))
	waitFor(t, stuck, "initial route response", func(s adssim.State) bool { return s.Routes > 0 })

	updateRoute(t, s, 100)
	got := make(chan xds.AckResult, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		got <- s.WaitRoute(ctx, "web")
	}()
	waitFor(t, good, "new route", holds(split(100)))
	select {
	case res := <-got:
		t.Fatalf("WaitRoute returned while a proxy had not ACKed: %+v", res)
	case <-time.After(300 * time.Millisecond):
	}

	start := time.Now()
	stuck.Close()
	select {
	case res := <-got:
		if !res.Complete() || res.Acked != 1 {
			t.Errorf("WaitRoute after disconnect = %+v, want complete with 1 ACK", res)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("WaitRoute still waits for a proxy that disconnected")
	}
	t.Logf("WaitRoute returned %v after the disconnect", time.Since(start))
	for _, p := range s.Proxies() {
		if p.NodeID == "stuck" {
			t.Errorf("disconnected proxy still listed: %+v", p)
		}
	}
}

func TestVersionsCarryProcessPrefix(t *testing.T) {
	var versions []string
	for range 2 {
		_, addr := startServer(t, nil)
		c := dial(t, addr, adssim.Options{NodeID: "n"})
		waitFor(t, c, "route", holds(split(0)))
		versions = append(versions, c.State().RouteVersion)
	}
	if versions[0] == "" || versions[0] == versions[1] {
		t.Errorf("two servers gave route versions %q; a reconnecting proxy could not tell them apart", versions)
	}
}
