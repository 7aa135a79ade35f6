package traffic_test

import (
	"context"
	"fmt"
	"syscall"
	"testing"
	"time"

	discoverygrpc "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"github.com/envoyproxy/go-control-plane/pkg/cache/v3"
	serverv3 "github.com/envoyproxy/go-control-plane/pkg/server/v3"
	"google.golang.org/grpc"

	"github.com/bgctl/bg/controlplane/model"
	"github.com/bgctl/bg/controlplane/translator"
	"github.com/bgctl/bg/controlplane/xds"
)

func cpu() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func BenchmarkDebug(b *testing.B) {
	for _, n := range []int{1000, 5000} {
		b.Run(fmt.Sprintf("bare/N=%d", n), func(b *testing.B) {
			ctx, cancel := context.WithCancel(context.Background())
			snaps := cache.NewSnapshotCache(false, oneHash{}, nil)
			snaps.SetSnapshot(ctx, "fleet", bareSnapshot(0, 0))
			gs := grpc.NewServer()
			discoverygrpc.RegisterAggregatedDiscoveryServiceServer(gs, serverv3.NewServer(ctx, snaps, serverv3.CallbackFuncs{}))
			lis := listen(b)
			go func() { _ = gs.Serve(lis) }()
			b.Cleanup(func() { cancel(); gs.Stop() })
			f := fleet(b, lis.Addr().String(), n, 0)
			c0, w0 := cpu(), time.Now()
			gen := 0
			for b.Loop() {
				gen++
				pct := 100 * (gen % 2)
				snaps.SetSnapshot(ctx, "fleet", bareSnapshot(gen, pct))
				f.Wait(ctx, split(pct))
			}
			b.Logf("cpu %v wall %v", cpu()-c0, time.Since(w0))
		})
		b.Run(fmt.Sprintf("bg/N=%d", n), func(b *testing.B) {
			srv := xds.NewServer(quiet, nil)
			srv.Load(translator.Translate(model.View{Services: []model.ServiceView{{Service: webService, Membership: webMembership(), Traffic: trafficAt(0)}}}))
			f := fleet(b, serveBG(b, srv), n, 0)
			c0, w0 := cpu(), time.Now()
			gen := 0
			for b.Loop() {
				gen++
				pct := 100 * (gen % 2)
				srv.UpdateRoute("web", translator.Route("web", trafficAt(pct)))
				srv.WaitRoute(context.Background(), "web")
				f.Wait(context.Background(), split(pct))
			}
			b.Logf("cpu %v wall %v", cpu()-c0, time.Since(w0))
		})
	}
}
