package xds_test

import (
	"context"
	"log/slog"
	"net"
	"testing"

	"github.com/bgctl/bg/controlplane/model"
	"github.com/bgctl/bg/controlplane/translator"
	"github.com/bgctl/bg/controlplane/xds"
	"github.com/bgctl/bg/controlplane/xds/adssim"
)

// A service without a port is served to proxyless gRPC clients in full
// (api_listener, route, clusters, endpoints) while Envoy gets no listener
// for it; Envoy still gets the services that have one.
func TestPortlessServiceIsGRPCOnly(t *testing.T) {
	v := view(30)
	v.Services = append(v.Services, model.ServiceView{
		Service: model.Service{Name: "search", Protocol: model.ProtocolHTTP2}, // no ListenerPort
		Membership: model.Membership{
			Blue:  model.Fleet{Endpoints: []model.Endpoint{{ID: "sb1", Address: "10.0.2.1", Port: 9000, Weight: 1}}},
			Green: model.Fleet{Endpoints: []model.Endpoint{{ID: "sg1", Address: "10.0.3.1", Port: 9000, Weight: 1}}},
		},
		Traffic: model.Traffic{Stable: model.Blue, Target: model.Green, GreenPercent: 40, Phase: model.PhaseSwitched, Generation: 2},
	})
	s := xds.NewServer(slog.New(slog.DiscardHandler), nil)
	s.Load(translator.Translate(v))
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
	addr := lis.Addr().String()

	g := dial(t, addr, adssim.Options{NodeID: "grpc", Service: "search", Clusters: true})
	waitFor(t, g, "search's full chain", func(s adssim.State) bool { return s.Ready && s.Weights == split(40) })
	if gs := g.State(); gs.Listener.GetName() != "search" || gs.Listener.GetApiListener() == nil || gs.NACKs != 0 {
		t.Errorf("gRPC client: listener %v, NACKs %d", gs.Listener, gs.NACKs)
	}

	// Envoy asks for both listeners: it gets web's, on its port, and none for search.
	e := dial(t, addr, adssim.Options{NodeID: "envoy", UserAgent: "envoy", Services: []string{"web", "search"}, Clusters: true})
	waitFor(t, e, "web's full chain", func(s adssim.State) bool { return s.Services["web"].Ready })
	es := e.State()
	if p := es.Listener.GetAddress().GetSocketAddress().GetPortValue(); es.Listener.GetName() != "web" || p != listenerPort {
		t.Errorf("Envoy client: listener %v, want web on %d", es.Listener, listenerPort)
	}
	if ss := es.Services["search"]; ss.RouteName != "" || ss.Ready {
		t.Errorf("Envoy client holds a listener for search: %+v", ss)
	}
	if es.NACKs != 0 {
		t.Errorf("Envoy client NACKed %d responses", es.NACKs)
	}
}
