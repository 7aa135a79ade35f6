package scale

import (
	"context"
	"fmt"
	"net/http"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/bgctl/bg/controlplane/config"
	"github.com/bgctl/bg/controlplane/model"
	"github.com/bgctl/bg/controlplane/xds/adssim"
	"github.com/bgctl/bg/e2e/harness"
)

// The config bg gets is valid and describes the services the bare server
// builds: the two servers serve the same world.
func TestConfigMatchesView(t *testing.T) {
	const n = 12
	path := WriteBGConfig(t, BGConfig{ConsulAddr: "127.0.0.1:8500", XDSAddr: "127.0.0.1:18000", AdminAddr: "127.0.0.1:9090",
		Token: "x", Services: n, SwitchTimeout: "40s"})
	cfg, err := config.Load(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	v := View(n)
	if len(cfg.Services) != n || len(v.Services) != n {
		t.Fatalf("%d services in config, %d in view; want %d", len(cfg.Services), len(v.Services), n)
	}
	for i, s := range cfg.Services {
		// As controlplane/serve builds its services from the config.
		got := model.Service{Name: s.Name, ListenerPort: s.Port, Protocol: model.Protocol(s.Protocol),
			Strategy: model.Strategy(s.Strategy), Affinity: model.Affinity{Header: s.Affinity.Header, Cookie: s.Affinity.Cookie},
			Pools: s.ModelPools(), MirrorPercent: s.Mirror.Percent}
		if want := v.Services[i].Service; !reflect.DeepEqual(got, want) {
			t.Errorf("services[%d] = %+v, bare server has %+v", i, got, want)
		}
		if s.ConsulService != s.Name {
			t.Errorf("services[%d] reads Consul service %q", i, s.ConsulService)
		}
	}
	if got := ServicesOf(3, 5, n); !reflect.DeepEqual(got, []string{"svc-0003", "svc-0004", "svc-0005", "svc-0006", "svc-0007"}) {
		t.Errorf("ServicesOf(3, 5, 12) = %q", got)
	}
}

// The bare server serves every chain and moves a route on POST /switch.
func TestBareServer(t *testing.T) {
	const n, p, k = 10, 20, 3
	xdsAddr := fmt.Sprintf("127.0.0.1:%d", harness.FreePort(t))
	admin := fmt.Sprintf("127.0.0.1:%d", harness.FreePort(t))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	served := make(chan error, 1)
	go func() { served <- ServeBare(ctx, BareOptions{Services: n, XDSAddr: xdsAddr, AdminAddr: admin}) }()
	defer func() {
		cancel()
		if err := <-served; err != nil {
			t.Error(err)
		}
	}()
	for {
		resp, err := http.Get("http://" + admin + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
		if ctx.Err() != nil {
			t.Fatal("bare server never ready")
		}
		time.Sleep(20 * time.Millisecond)
	}
	f, err := adssim.StartFleet(ctx, xdsAddr, adssim.FleetOptions{
		Options:    adssim.Options{NodeID: "t", Clusters: true},
		Size:       p,
		ServicesOf: func(i int) []string { return ServicesOf(i, k, n) },
		Conns:      2,
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
	svc := ServiceName(4, n)
	post := func(q string) int {
		resp, err := http.Post("http://"+admin+"/switch?"+q, "", nil)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if code := post("service=" + svc + "&to=green"); code != http.StatusOK {
		t.Fatalf("switch: HTTP %d", code)
	}
	if err := f.WaitService(ctx, svc, adssim.Weights{Green: 100}); err != nil {
		t.Fatal(err)
	}
	if got := f.Subscribers(svc); got != p*k/n {
		t.Errorf("%s has %d subscribers, want %d", svc, got, p*k/n)
	}
	if other := ServiceName(5, n); f.Holding(other, adssim.Weights{Blue: 100}) != f.Subscribers(other) {
		t.Errorf("%s moved too", other)
	}
	if code := post("service=nope&to=green"); code != http.StatusBadRequest {
		t.Errorf("unknown service: HTTP %d, want 400", code)
	}

	// A proxy following a service nobody serves never gets its chains, and
	// the report names it.
	g, err := adssim.StartFleet(ctx, xdsAddr, adssim.FleetOptions{
		Options: adssim.Options{NodeID: "missing", Clusters: true},
		Size:    2,
		ServicesOf: func(i int) []string {
			if i == 1 {
				return []string{ServiceName(0, n), "nope"}
			}
			return []string{ServiceName(0, n)}
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	short, cancelShort := context.WithTimeout(ctx, time.Second)
	defer cancelShort()
	if err := g.WaitReady(short); err == nil {
		t.Fatal("WaitReady returned for a proxy without its chains")
	}
	if msg := notReady(g); !strings.Contains(msg, "missing-1:") || strings.Contains(msg, "missing-0:") || !strings.Contains(msg, "services ready 1/2") {
		t.Errorf("notReady = %q, want missing-1 only", msg)
	}
}
