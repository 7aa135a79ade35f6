package traffic_test

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"testing"
	"time"

	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	discovery "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"github.com/envoyproxy/go-control-plane/pkg/cache/types"
	"github.com/envoyproxy/go-control-plane/pkg/cache/v3"
	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	serverv3 "github.com/envoyproxy/go-control-plane/pkg/server/v3"
	"google.golang.org/grpc"

	"github.com/bgctl/bg/controlplane/model"
	"github.com/bgctl/bg/controlplane/translator"
	"github.com/bgctl/bg/controlplane/xds"
)

// BenchmarkBarePush and BenchmarkBGPush time one route change from the
// write until the server has read every client's ACK of it, for
// go-control-plane's plain snapshot cache and for bg's path, so bg/bare
// comes out of one run.

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

// ackCounter is the least a bare control plane needs to know that a push
// landed: it counts ACKs of one route version as the server reads them.
type ackCounter struct {
	mu      sync.Mutex
	version string
	left    int
	done    chan struct{}
}

func (a *ackCounter) expect(version string, n int) <-chan struct{} {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.version, a.left, a.done = version, n, make(chan struct{})
	return a.done
}

func (a *ackCounter) onRequest(_ int64, req *discovery.DiscoveryRequest) error {
	if req.GetTypeUrl() != resource.RouteType || req.GetErrorDetail() != nil {
		return nil
	}
	a.mu.Lock()
	if req.GetVersionInfo() == a.version && a.left > 0 {
		if a.left--; a.left == 0 {
			close(a.done)
		}
	}
	a.mu.Unlock()
	return nil
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
	acks := &ackCounter{}
	gs := grpc.NewServer()
	discovery.RegisterAggregatedDiscoveryServiceServer(gs, serverv3.NewServer(ctx, snaps, serverv3.CallbackFuncs{StreamRequestFunc: acks.onRequest}))
	lis := listen(b)
	go func() { _ = gs.Serve(lis) }()
	b.Cleanup(func() { cancel(); gs.Stop() })
	f := fleet(b, lis.Addr().String(), n, 0)

	m := newMeter()
	gen := 0
	for b.Loop() {
		gen++
		pct := 100 * (gen % 2)
		snap := bareSnapshot(gen, pct)
		acked := acks.expect(snap.GetVersion(resource.RouteType), n)
		wctx, wcancel := context.WithTimeout(ctx, time.Minute)
		start := time.Now()
		if err := snaps.SetSnapshot(ctx, "fleet", snap); err != nil {
			b.Fatal(err)
		}
		err := f.Wait(wctx, split(pct))
		select { // bg's path ends when the server has every ACK; so does this one
		case <-acked:
		case <-wctx.Done():
			err = wctx.Err()
		}
		m.add(time.Since(start))
		wcancel()
		if err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	m.report(b)
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

	m := newMeter()
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
		m.add(time.Since(start))
		wcancel()
		if err != nil || !res.Complete() || res.Acked != n {
			b.Fatalf("acks=%d pending=%d err=%v", res.Acked, len(res.Pending), err)
		}
	}
	b.StopTimer()
	m.report(b)
}
