package adssim_test

import (
	"context"
	"log/slog"
	"net"
	"testing"
	"time"

	"github.com/bgctl/bg/controlplane/model"
	"github.com/bgctl/bg/controlplane/translator"
	"github.com/bgctl/bg/controlplane/xds"
	"github.com/bgctl/bg/controlplane/xds/adssim"
)

func webTraffic(green int) model.Traffic {
	return model.Traffic{Stable: model.Blue, GreenPercent: green, Phase: model.PhaseStable, Generation: 1}
}

// A fleet on shared connections follows route changes, down to endpoints.
func TestFleetOnSharedConns(t *testing.T) {
	srv := xds.NewServer(slog.New(slog.DiscardHandler), nil)
	srv.Load(translator.Translate(model.View{Services: []model.ServiceView{{
		Service: model.Service{Name: "web", ListenerPort: 10000},
		Membership: model.Membership{
			Blue:  model.Fleet{Endpoints: []model.Endpoint{{ID: "b1", Address: "10.0.0.1", Port: 80}}},
			Green: model.Fleet{Endpoints: []model.Endpoint{{ID: "g1", Address: "10.0.1.1", Port: 80}}},
		},
		Traffic: webTraffic(0),
	}}}))
	addr, ctx := serve(t, srv)

	f, err := adssim.StartFleet(ctx, addr, adssim.FleetOptions{
		Options: adssim.Options{Service: "web", NodeID: "sim", Clusters: true},
		Size:    20,
		Conns:   3,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := f.Wait(ctx, adssim.Weights{Blue: 100}); err != nil {
		t.Fatal(err)
	}
	if _, err := srv.UpdateRoute("web", translator.Route("web", webTraffic(30))); err != nil {
		t.Fatal(err)
	}
	if err := f.Wait(ctx, adssim.Weights{Blue: 70, Green: 30}); err != nil {
		t.Fatal(err)
	}
	for _, c := range f.Clients {
		if err := c.WaitFor(ctx, func(s adssim.State) bool { return s.Endpoints > 0 }); err != nil {
			t.Fatal(err)
		}
	}
	if n := len(srv.Proxies()); n != 20 {
		t.Errorf("server sees %d streams, want 20", n)
	}
}

// Clients following several services on one stream each get every chain,
// and a route change reaches exactly the subscribers of its service.
func TestFleetFollowsSeveralServicesPerStream(t *testing.T) {
	names := []string{"a", "b", "c", "d"}
	var v model.View
	for i, n := range names {
		v.Services = append(v.Services, model.ServiceView{
			Service: model.Service{Name: n, ListenerPort: 10000 + i, Protocol: model.ProtocolHTTP2},
			Membership: model.Membership{
				Blue:  model.Fleet{Endpoints: []model.Endpoint{{ID: n + "-b", Address: "10.0.0.1", Port: 80 + i}}},
				Green: model.Fleet{Endpoints: []model.Endpoint{{ID: n + "-g", Address: "10.0.1.1", Port: 80 + i}}},
			},
			Traffic: webTraffic(0),
		})
	}
	srv := xds.NewServer(slog.New(slog.DiscardHandler), nil)
	srv.Load(translator.Translate(v))
	addr, ctx := serve(t, srv)

	// Client i follows names[i%4] and names[(i+1)%4]: 4 clients per service.
	f, err := adssim.StartFleet(ctx, addr, adssim.FleetOptions{
		Options:    adssim.Options{NodeID: "multi", Clusters: true},
		Size:       8,
		Conns:      2,
		ServicesOf: func(i int) []string { return []string{names[i%4], names[(i+1)%4]} },
	})
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := f.WaitReady(ctx); err != nil {
		t.Fatal(err)
	}
	if err := f.Wait(ctx, adssim.Weights{Blue: 100}); err != nil {
		t.Fatal(err)
	}
	for _, n := range names {
		if got := f.Subscribers(n); got != 4 {
			t.Errorf("%s has %d subscribers, want 4", n, got)
		}
	}
	for _, c := range f.Clients {
		s := c.State()
		if !s.Ready || len(s.Services) != 2 || s.NACKs != 0 || s.Listeners != 1 {
			t.Errorf("%s: %s", c.NodeID(), adssim.Summary(s))
		}
	}

	if _, err := srv.UpdateRoute("b", translator.Route("b", webTraffic(100))); err != nil {
		t.Fatal(err)
	}
	if err := f.WaitService(ctx, "b", adssim.Weights{Green: 100}); err != nil {
		t.Fatal(err)
	}
	for _, c := range f.Clients {
		s := c.State()
		for svc, ss := range s.Services {
			want := adssim.Weights{Blue: 100}
			if svc == "b" {
				want = adssim.Weights{Green: 100}
			}
			if ss.Weights != want || !ss.Ready || ss.RouteName != svc {
				t.Errorf("%s %s: %+v, want weights %+v", c.NodeID(), svc, ss, want)
			}
		}
	}
	if n := f.Holding("a", adssim.Weights{Blue: 100}); n != 4 {
		t.Errorf("%d subscribers of a hold blue, want 4", n)
	}
	if n := len(srv.Proxies()); n != 8 {
		t.Errorf("server sees %d streams, want 8", n)
	}
}

// serve runs srv on a loopback port until the test ends; ctx ends then too
// (or after 20 s).
func serve(t *testing.T, srv *xds.Server) (string, context.Context) {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	served := make(chan struct{})
	go func() { _ = srv.Serve(ctx, lis); close(served) }()
	t.Cleanup(func() { cancel(); <-served })
	return lis.Addr().String(), ctx
}
