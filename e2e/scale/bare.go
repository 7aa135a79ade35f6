package scale

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/pprof"
	"time"

	discoverygrpc "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"github.com/envoyproxy/go-control-plane/pkg/cache/v3"
	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	serverv3 "github.com/envoyproxy/go-control-plane/pkg/server/v3"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/keepalive"

	"github.com/bgctl/bg/controlplane/model"
	"github.com/bgctl/bg/controlplane/translator"
	"github.com/bgctl/bg/controlplane/xds"
)

// BareOptions configure the bare reference server.
type BareOptions struct {
	Services  int    // the bench's n: the same world bg reads from Consul
	XDSAddr   string // ADS listen address
	AdminAddr string // HTTP: /readyz, /metrics, POST /switch, /debug/pprof/
}

// ServeBare runs the bare go-control-plane reference until ctx ends: the
// resources bg would serve for View(n), built by bg's translator, in
// go-control-plane's LinearCaches (the cache bg uses too) behind its stock
// ADS server, with no bg logic: no Consul, no traffic controller, no ACK
// tracking, no callbacks. It holds both listener flavours, as bg does, so
// the memory compared is for the same resources.
//
// POST /switch?service=S&to=green replaces S's route in the cache with the
// one a `bg switch S --to green --instant` produces, and returns at once.
func ServeBare(ctx context.Context, o BareOptions) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	v := View(o.Services)
	res := translator.Translate(v)
	// The same resources bg holds: listeners for both flavours (Envoy's
	// with their HTTP connection managers, grpc-go's API listeners), each
	// node answered with its flavour's, as any server for both must.
	ldsGRPC := cache.NewLinearCache(resource.ListenerType)
	ldsEnvoy := cache.NewLinearCache(resource.ListenerType)
	rds := cache.NewLinearCache(resource.RouteType)
	cds := cache.NewLinearCache(resource.ClusterType)
	eds := cache.NewLinearCache(resource.EndpointType)
	ldsGRPC.SetResources(res.Listeners[model.FlavourGRPC])
	ldsEnvoy.SetResources(res.Listeners[model.FlavourEnvoy])
	rds.SetResources(res.Routes)
	cds.SetResources(res.Clusters)
	eds.SetResources(res.Endpoints)
	mux := &cache.MuxCache{
		Classify: func(r *cache.Request) string {
			if r.GetTypeUrl() == resource.ListenerType {
				return resource.ListenerType + "/" + string(xds.FlavourOf(r.GetNode()))
			}
			return r.GetTypeUrl()
		},
		Caches: map[string]cache.Cache{
			resource.ListenerType + "/" + string(model.FlavourGRPC):  ldsGRPC,
			resource.ListenerType + "/" + string(model.FlavourEnvoy): ldsEnvoy,
			resource.RouteType: rds, resource.ClusterType: cds, resource.EndpointType: eds,
		},
	}
	services := map[string]model.Service{}
	for _, sv := range v.Services {
		services[sv.Service.Name] = sv.Service
	}

	xdsLis, err := net.Listen("tcp", o.XDSAddr)
	if err != nil {
		return err
	}
	adminLis, err := net.Listen("tcp", o.AdminAddr)
	if err != nil {
		xdsLis.Close()
		return err
	}
	// The same transport settings as bg's ADS server.
	gs := grpc.NewServer(
		grpc.KeepaliveParams(keepalive.ServerParameters{Time: 30 * time.Second, Timeout: 10 * time.Second}),
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: 10 * time.Second, PermitWithoutStream: true}),
	)
	discoverygrpc.RegisterAggregatedDiscoveryServiceServer(gs, serverv3.NewServer(ctx, mux, nil))

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	hm := http.NewServeMux()
	hm.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprintln(w, "ready") })
	hm.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	hm.HandleFunc("POST /switch", func(w http.ResponseWriter, r *http.Request) {
		name, to := r.URL.Query().Get("service"), model.Color(r.URL.Query().Get("to"))
		s, ok := services[name]
		if !ok || (to != model.Blue && to != model.Green) {
			http.Error(w, "unknown service or colour", http.StatusBadRequest)
			return
		}
		if err := rds.UpdateResource(name, translator.ServiceRoute(s, SwitchedTraffic(to))); err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		fmt.Fprintln(w, "ok")
	})
	hm.HandleFunc("/debug/pprof/", pprof.Index)
	hs := &http.Server{Handler: hm, ReadHeaderTimeout: 10 * time.Second}

	errc := make(chan error, 2)
	go func() { errc <- gs.Serve(xdsLis) }()
	go func() { errc <- hs.Serve(adminLis) }()
	select {
	case <-ctx.Done():
		err = nil
	case err = <-errc:
	}
	gs.Stop()
	sctx, scancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer scancel()
	return errors.Join(err, hs.Shutdown(sctx))
}
