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
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	served := make(chan struct{})
	go func() { _ = srv.Serve(ctx, lis); close(served) }()
	defer func() { cancel(); <-served }()

	f, err := adssim.StartFleet(ctx, lis.Addr().String(), adssim.FleetOptions{
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
