package traffic_test

import (
	"context"
	"fmt"
	"strconv"
	"testing"
	"time"

	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	discoverygrpc "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"github.com/envoyproxy/go-control-plane/pkg/cache/types"
	"github.com/envoyproxy/go-control-plane/pkg/cache/v3"
	serverv3 "github.com/envoyproxy/go-control-plane/pkg/server/v3"
	"google.golang.org/grpc"

	"github.com/bgctl/bg/controlplane/model"
	"github.com/bgctl/bg/controlplane/translator"
	"github.com/bgctl/bg/controlplane/xds"
)

// BenchmarkBarePush and BenchmarkBGPush time one route change from the
// write to "every client ACKed it", for go-control-plane's plain snapshot
// cache and for bg's path, so bg/bare comes out of one run.

// oneHash puts every node in one snapshot, as a fleet sharing one config would be.
type oneHash struct{}

func (oneHash) ID(*core.Node) string { return "fleet" }

// bareSnapshot changes only the route's version, so a push is RDS only, as in bg.
func bareSnapshot(gen, greenPercent int) *cache.Snapshot {
	s := &cache.Snapshot{}
	s.Resources[types.Listener] = cache.NewResources("1", []types.Resource{translator.GRPCListener("web")})
	s.Resources[types.Route] = cache.NewResources("r"+strconv.Itoa(gen), []types.Resource{translator.Route("web", trafficAt(greenPercent))})
	return s
}

func BenchmarkBarePush(b *testing.B) {
	for _, n := range []int{1000, 5000} {
		b.Run(fmt.Sprintf("N=%d", n), func(b *testing.B) { benchBarePush(b, n) })
	}
}

func benchBarePush(b *testing.B, n int) {
	ctx, cancel := context.WithCancel(context.Background())
	snaps := cache.NewSnapshotCache(false, oneHash{}, nil)
	if err := snaps.SetSnapshot(ctx, "fleet", bareSnapshot(0, 0)); err != nil {
		b.Fatal(err)
	}
	gs := grpc.NewServer()
	discoverygrpc.RegisterAggregatedDiscoveryServiceServer(gs, serverv3.NewServer(ctx, snaps, serverv3.CallbackFuncs{}))
	lis := listen(b)
	go func() { _ = gs.Serve(lis) }()
	b.Cleanup(func() { cancel(); gs.Stop() })
	f := fleet(b, lis.Addr().String(), n, 0)

	var lat latencies
	gen := 0
	for b.Loop() {
		gen++
		pct := 100 * (gen % 2)
		snap := bareSnapshot(gen, pct)
		wctx, wcancel := context.WithTimeout(ctx, time.Minute)
		start := time.Now()
		if err := snaps.SetSnapshot(ctx, "fleet", snap); err != nil {
			b.Fatal(err)
		}
		err := f.Wait(wctx, split(pct))
		lat = append(lat, time.Since(start))
		wcancel()
		if err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	lat.report(b)
}

func BenchmarkBGPush(b *testing.B) {
	for _, n := range []int{1000, 5000} {
		b.Run(fmt.Sprintf("N=%d", n), func(b *testing.B) { benchBGPush(b, n) })
	}
}

func benchBGPush(b *testing.B, n int) {
	srv := xds.NewServer(quiet, nil)
	srv.Load(translator.Translate(model.View{
		EnvoyListenAddress: "0.0.0.0",
		Services:           []model.ServiceView{{Service: webService, Membership: webMembership(), Traffic: trafficAt(0)}},
	}))
	f := fleet(b, serveBG(b, srv), n, 0)

	var lat latencies
	gen := 0
	for b.Loop() {
		gen++
		pct := 100 * (gen % 2)
		route := translator.Route("web", trafficAt(pct))
		wctx, wcancel := context.WithTimeout(context.Background(), time.Minute)
		start := time.Now()
		if _, err := srv.UpdateRoute("web", route); err != nil {
			b.Fatal(err)
		}
		res := srv.WaitRoute(wctx, "web")
		err := f.Wait(wctx, split(pct)) // the clients agree with the ACKs
		lat = append(lat, time.Since(start))
		wcancel()
		if err != nil || !res.Complete() || res.Acked != n {
			b.Fatalf("acks=%d pending=%d err=%v", res.Acked, len(res.Pending), err)
		}
	}
	b.StopTimer()
	lat.report(b)
}
