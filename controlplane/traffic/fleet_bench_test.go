package traffic_test

import (
	"context"
	"flag"
	"log/slog"
	"net"
	"slices"
	"testing"
	"time"

	"github.com/bgctl/bg/controlplane/model"
	"github.com/bgctl/bg/controlplane/xds"
	"github.com/bgctl/bg/controlplane/xds/adssim"
)

// Shared setup for the push benchmarks: servers on loopback, a fleet of
// simulated gRPC clients, and per-operation latency percentiles.

var quiet = slog.New(slog.DiscardHandler)

var simConns = flag.Int("sim.conns", 0, "gRPC connections shared by the simulated clients; 0 gives each its own")

var webService = model.Service{Name: "web", ListenerPort: 10000, Protocol: model.ProtocolHTTP2}

func webMembership() model.Membership {
	return model.Membership{
		Blue:  model.Fleet{Endpoints: []model.Endpoint{{ID: "b1", Address: "10.0.0.1", Port: 8080, Weight: 1}}},
		Green: model.Fleet{Endpoints: []model.Endpoint{{ID: "g1", Address: "10.0.1.1", Port: 8080, Weight: 1}}},
	}
}

func trafficAt(greenPercent int) model.Traffic {
	return model.Traffic{Stable: model.Blue, GreenPercent: greenPercent, Phase: model.PhaseStable, Generation: 1}
}

func split(greenPercent int) adssim.Weights {
	return adssim.Weights{Blue: uint32(100 - greenPercent), Green: uint32(greenPercent)}
}

// listen returns a loopback listener closed with the benchmark.
func listen(b *testing.B) net.Listener {
	b.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	return lis
}

// serveBG runs srv until the benchmark ends.
func serveBG(b *testing.B, srv *xds.Server) string {
	b.Helper()
	lis := listen(b)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = srv.Serve(ctx, lis); close(done) }()
	b.Cleanup(func() { cancel(); <-done })
	return lis.Addr().String()
}

// fleet connects n gRPC-flavour clients for route web and waits until all
// hold the initial split. Setup is outside the timed loop.
func fleet(b *testing.B, addr string, n int, greenPercent int) *adssim.Fleet {
	b.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	start := time.Now()
	f, err := adssim.StartFleet(ctx, addr, adssim.FleetOptions{
		Options: adssim.Options{Service: "web", NodeID: "sim"},
		Size:    n,
		Conns:   *simConns,
	})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(f.Close)
	if err := f.Wait(ctx, split(greenPercent)); err != nil {
		b.Fatal(err)
	}
	b.Logf("%d streams connected and holding the route in %v", n, time.Since(start).Round(time.Millisecond))
	return f
}

// meter collects one duration per operation and the process CPU used, and
// reports percentiles and CPU per operation.
type meter struct {
	lat  []time.Duration
	cpu0 time.Duration
}

func newMeter() *meter {
	cpu, _ := processCPU()
	return &meter{cpu0: cpu}
}

func (m *meter) add(d time.Duration) { m.lat = append(m.lat, d) }

func (m *meter) report(b *testing.B) {
	if len(m.lat) == 0 {
		return
	}
	if cpu, ok := processCPU(); ok {
		b.ReportMetric(float64(cpu-m.cpu0)/float64(time.Millisecond)/float64(len(m.lat)), "cpu-ms/op")
	}
	s := slices.Clone(m.lat)
	slices.Sort(s)
	at := func(q float64) float64 { // nearest rank
		i := int(q*float64(len(s))+0.5) - 1
		i = max(0, min(i, len(s)-1))
		return float64(s[i]) / float64(time.Millisecond)
	}
	b.ReportMetric(at(0.5), "ms-median")
	b.ReportMetric(at(0.99), "ms-p99")
}
