// Package serve wires sources, controller, xDS and admin servers into `bg serve`.
package serve

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"os"
	"os/signal"
	"runtime/debug"
	"slices"
	"syscall"
	"time"

	"github.com/bgctl/bg/controlplane/acks"
	"github.com/bgctl/bg/controlplane/fleetmetrics"
	"github.com/bgctl/bg/controlplane/memrelease"
	"github.com/bgctl/bg/controlplane/wait"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/bgctl/bg/controlplane/admin"
	apiv1 "github.com/bgctl/bg/controlplane/api/v1"
	"github.com/bgctl/bg/controlplane/config"
	"github.com/bgctl/bg/controlplane/converge"
	"github.com/bgctl/bg/controlplane/judge"
	"github.com/bgctl/bg/controlplane/leader"
	"github.com/bgctl/bg/controlplane/membership"
	consulsrc "github.com/bgctl/bg/controlplane/membership/consul"
	"github.com/bgctl/bg/controlplane/model"
	"github.com/bgctl/bg/controlplane/releases"
	"github.com/bgctl/bg/controlplane/state/consulkv"
	"github.com/bgctl/bg/controlplane/traffic"
	"github.com/bgctl/bg/controlplane/window"
	"github.com/bgctl/bg/controlplane/xds"
)

// Run serves until ctx ends. cfg must have passed Validate. It cannot
// reload its config (RunWith can).
func Run(ctx context.Context, cfg *config.Config, log *slog.Logger) error {
	return RunWith(ctx, cfg, log, ConfigSource{})
}

// RunWith is Run with a config file to reload on SIGHUP, POST /v1/reload
// and, with config.watch, when it changes (reload.go, apply.go).
func RunWith(ctx context.Context, cfg *config.Config, log *slog.Logger, cs ConfigSource) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	// SIGHUP reloads the config (below); caught from the start, so one sent
	// while bg starts waits for it instead of killing it.
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)

	log.Info("starting", "config", cfg) // Config.LogValue: never a secret
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))

	consul, err := consulClients(cfg.Consul, reg)
	if err != nil {
		return err
	}
	client := consul.Control
	xdsServer := xds.NewServer(log, reg)
	// A burst of xDS work (proxies reconnecting, the first fan-out) leaves
	// garbage an idle bg would hold at its high-water mark: return it once
	// xDS has been quiet for a second (one collection per burst, no timer
	// at idle).
	burst := memrelease.New(time.Second, log)
	xdsServer.SetActivityHook(burst.Touch)
	reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{
		Name: "bg_memory_releases_total",
		Help: "Collections run to return a burst's memory to the OS once xDS went quiet.",
	}, func() float64 { return float64(burst.Releases.Load()) }))
	if err := useXDSTLS(xdsServer, cfg.XDS.TLS, log); err != nil { // xdstls.go
		return err
	}
	var services []model.Service
	names := map[string]string{}
	for _, s := range cfg.Services {
		services = append(services, modelService(s))
		names[s.Name] = s.ConsulService
	}
	store := consulkv.New(client, cfg.Consul.KVPrefix)
	store.WatchVia(consul.Watch)
	ctrl := traffic.New(services, cfg.Envoy.ListenAddress, store, xdsServer, log, traffic.NewMetrics(reg))
	self := leader.Info{Replica: replicaID(), Admin: advertise(cfg.Admin.Listen)}
	ctrl.SetReplica(self.Replica)
	ctrl.UseElection() // only the leader creates, restores or advances state
	ctrl.SetShrinkGrace(cfg.Membership.ShrinkGrace)
	ctrl.SetHistoryRetention(cfg.History.Retention)
	elector := leader.New(client, leader.Options{
		Key: cfg.Consul.KVPrefix + "leader", Self: self, SessionTTL: cfg.Leader.SessionTTL, LockDelay: cfg.Leader.LockDelay,
		CheckTTL: cfg.Leader.CheckTTL,
	}, log, reg)
	store.SetFence(elector.Fence)
	// Each replica publishes which generation its proxies hold; "done"
	// (CLI exit 0, --wait promoted, status ACKed N/N) counts every replica.
	ackAgg, err := acks.Start(ctx, client, consul.Watch, cfg.Consul.KVPrefix, self.Replica, elector.CheckID(), xdsServer, slices.Sorted(maps.Keys(names)), ctrl.Rolling, log)
	if err != nil {
		return err
	}
	ctrl.SetAcks(ackAgg)
	ctrl.SetControlInfo(func() any {
		info := struct {
			Replica string                `json:"replica"`
			Leading bool                  `json:"leading"`
			Consul  consulkv.Reachability `json:"consul"`
			Note    string                `json:"note,omitempty"`
			// Election: term, the replica's check, the last takeover.
			Election leader.Status `json:"election"`
		}{Replica: self.Replica, Leading: elector.Leading(), Consul: store.Reachability(), Election: elector.Status()}
		if !info.Consul.Reachable {
			info.Note = "consul unreachable: this replica serves its last config and no switch advances"
		}
		return info
	})
	prom, plans, err := analysis(cfg, log, reg)
	if err != nil {
		return err
	}
	var src fleetmetrics.Source
	var templates templateSetter
	if prom != nil { // a nil *Source in an interface would not be nil
		src, templates = prom, prom
	}
	ctrl.SetAnalysis(src, plans)
	windows := map[string]*window.Schedule{}
	for _, s := range cfg.Services {
		if windows[s.Name], err = s.Schedule(); err != nil {
			return fmt.Errorf("services %s windows: %w", s.Name, err)
		}
	}
	ctrl.SetWindows(windows)
	rollParams := map[string]model.RollParams{}
	for _, s := range cfg.Services {
		rollParams[s.Name] = s.Rolling.Params()
	}
	ctrl.SetRolling(rollParams)
	// Releases run on the leader, over the same store and fence; while one
	// runs, its members refuse every command that is not the release's.
	var serviceNames []string
	for _, s := range cfg.Services {
		serviceNames = append(serviceNames, s.Name)
	}
	var consumers *releases.ConsumerWatch
	if cfg.Release.WatchConsumers && src != nil {
		ct := cfg.Release.Consumers
		consumers = &releases.ConsumerWatch{Source: src, Lookback: ct.Lookback,
			Test: judge.Consumer{Confidence: ct.Confidence, Margin: ct.Margin, MinErrors: float64(ct.MinErrors)}}
	}
	targets, err := cfg.NotifyTargets()
	if err != nil {
		return err
	}
	notes := newNotifiers(ctx, ctrl, cfg.Admin.Listen, log, reg)
	notes.set(targets)
	rels := releases.New(ctrl, store, releases.Options{
		Services: serviceNames, Dependencies: cfg.Dependencies(), Groups: cfg.Groups(), GroupGates: cfg.GroupGates(), MaxParallel: cfg.Release.MaxParallel, Keep: cfg.Release.Keep,
		Consumers: consumers, Notify: notes.release, Timeout: cfg.Switch.Timeout, Runtime: ctrl.Runtime(), Log: log, Metrics: releases.NewMetrics(reg),
	})
	ctrl.SetReleaseGuard(rels.Guard)
	// Declarative delivery: every replica evaluates (status); the leader
	// starts the switches, through the same entry point as POST /switch.
	autos := map[string]config.Auto{}
	for _, s := range cfg.Services {
		autos[s.Name] = s.Auto
	}
	conv := converge.New(ctrl, store, converge.Options{Auto: autos, Timeout: cfg.Switch.Timeout, Log: log, Metrics: converge.NewMetrics(reg), Releases: rels,
		Owner: func(service string) string { owner, _ := rels.Guard(service); return owner }})
	ctrl.SetConvergeStatus(conv.Convergence)
	ctrl.Subscribe(func(string) { conv.Poke() }) // a switch began or ended: decide again now

	members := consulsrc.New(consulsrc.APICatalog{Watch: consul.Watch, Read: consul.Read}, consulsrc.ColorRule{BlueTag: cfg.Consul.Color.BlueTag, GreenTag: cfg.Consul.Color.GreenTag, MetaKey: cfg.Consul.Color.MetaKey},
		names, cfg.Consul.Wait, log, reg)
	members.Readers = consulReaders
	live := &liveApplier{ctx: ctx, ctrl: ctrl, log: log, prom: templates, members: members, store: store, acks: ackAgg, notes: notes, rels: rels, conv: conv,
		served: maps.Clone(names)}
	live.plans, live.templates = plansOf(cfg)
	ctrl.SetOnRetired(live.onRetired)
	reload := newReloader(cs, cfg, live, log, newReloadMetrics(reg))
	ctrl.SetReloadStatus(reload.Status)

	// Bind both ports first: a port clash is a startup error, not a hang.
	xdsLis, err := net.Listen("tcp", cfg.XDS.Listen)
	if err != nil {
		return fmt.Errorf("xds.listen: %w", err)
	}
	adminLis, err := net.Listen("tcp", cfg.Admin.Listen)
	if err != nil {
		xdsLis.Close()
		return fmt.Errorf("admin.listen: %w", err)
	}
	adminSec, err := adminSecurity(cfg.Admin, log) // admintls.go
	if err != nil {
		xdsLis.Close()
		adminLis.Close()
		return err
	}
	if adminSec.tls.Server != nil {
		adminLis = tls.NewListener(adminLis, adminSec.tls.Server)
	}
	httpServer := &http.Server{
		Handler: admin.Handler(ctrl, admin.Options{
			Tokens: adminSec.creds, AuthMetrics: admin.NewAuthMetrics(reg), Forward: adminSec.tls.Forward, Pprof: cfg.Admin.Pprof, DefaultTimeout: cfg.Switch.Timeout, Proxies: xdsServer.Proxies, Gatherer: reg, Log: log,
			Releases: rels,
			Reload:   func() apiv1.ReloadAttempt { return reload.Reload(apiv1.TriggerAPI) },
			Converge: conv,
			Leader: func(ctx context.Context) (string, bool, error) {
				if elector.Leading() {
					return "", true, nil
				}
				in, err := elector.Leader(ctx)
				if err == nil && in.Replica == self.Replica {
					return "", true, nil // our own stale key: handle here; the fence decides
				}
				return in.Admin, false, err
			},
		}),
		ReadHeaderTimeout: 10 * time.Second,
	}
	errc := make(chan error, 2)
	go func() {
		if err := httpServer.Serve(adminLis); err != nil && !errors.Is(err, http.ErrServerClosed) {
			errc <- fmt.Errorf("admin server: %w", err)
		}
	}()
	log.Info("admin API listening", "addr", adminLis.Addr().String())

	go members.Run(ctx, func(u membership.Update) {
		ctrl.OnMembership(u)
		conv.Poke() // a fleet change may make a service ready
	})
	// Each replica reloads its own file; only the leader writes state.
	go func() {
		for {
			select {
			case <-ctx.Done():
				return
			case <-hup:
				reload.Reload(apiv1.TriggerSignal)
			}
		}
	}()
	go reload.watch(ctx, time.Second)

	// Campaign from the start: only the leader creates a missing initial state.
	electorDone := make(chan struct{})
	go func() {
		defer close(electorDone)
		// The leader resumes running switches, then running releases.
		elector.Run(ctx, func(lctx context.Context) {
			conv.Lead(lctx) // returns at once; acts while lctx lives
			rels.Lead(lctx)
		})
	}()
	go func() {
		if err := publishWhenComplete(ctx, ctrl, log); err != nil {
			return
		}
		live.mu.Lock()                                      // a reload may have changed the served services
		store.Expect(slices.Sorted(maps.Keys(live.served))) // a key gone unseen is still reported
		live.mu.Unlock()
		go store.Watch(ctx, log, ctrl.OnStored, ctrl.OnIntent)
		go conv.Run(ctx)
		log.Info("xDS serving", "addr", xdsLis.Addr().String())
		if err := xdsServer.Serve(ctx, xdsLis); err != nil {
			errc <- fmt.Errorf("xds server: %w", err)
		}
	}()

	select {
	case <-ctx.Done():
	case err = <-errc:
	}
	cancel()
	shutdown, stop := context.WithTimeout(context.Background(), 5*time.Second)
	defer stop()
	_ = httpServer.Shutdown(shutdown)
	xdsLis.Close()
	// The elector releases the lock (a leader's successor leads at once,
	// with no lock delay), destroys its session and deregisters its check
	// before returning; its blocking queries end with ctx, so a follower
	// returns at once too.
	select {
	case <-electorDone:
	case <-shutdown.Done():
	}
	select { // our ACK reports leave with us
	case <-ackAgg.Stopped():
	case <-shutdown.Done():
	}
	return err
}

// publishWhenComplete loads persisted state and waits for the first fleet
// read of every service before serving any xDS: a proxy must never see a
// default split or an empty fleet that differs from the truth.
func publishWhenComplete(ctx context.Context, ctrl *traffic.Controller, log *slog.Logger) error {
	backoff := 200 * time.Millisecond
	for {
		err := ctrl.LoadState(ctx)
		if err == nil {
			break
		}
		if errors.Is(err, traffic.ErrStateMissing) {
			// The leader creates it, once it has read the fleets.
			if !wait.Sleep(ctx, 100*time.Millisecond) {
				return ctx.Err()
			}
			continue
		}
		log.Warn("loading traffic state from consul failed; retrying", "error", err, "retry_in", backoff)
		if !wait.Sleep(ctx, backoff) {
			return ctx.Err()
		}
		backoff = min(backoff*2, 5*time.Second)
	}
	for {
		if err := ctrl.Publish(); err == nil {
			// Loading every service (Consul reads, first state, translating
			// everything) is a burst of short-lived memory; return it to the
			// OS now rather than holding it at idle (about 20 MiB at 1,000
			// services, measured with e2e/cmd/bg-scale).
			debug.FreeOSMemory()
			return nil
		}
		if !wait.Sleep(ctx, 50*time.Millisecond) {
			return ctx.Err()
		}
	}
}
