package scale

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/bgctl/bg/controlplane/model"
	"github.com/bgctl/bg/e2e/harness"
)

// The bench's world is a pure function of the service count, so the bench
// (registering in Consul, writing bg's config) and the bare reference
// server (building resources without Consul) agree on every resource.

// basePort is the first instance port; instances do not listen (the
// simulated proxies never call them), the ports only have to be valid.
const basePort = 20000

// listenerBasePort is services[i].port in bg's config (unique per service).
const listenerBasePort = 10000

// ServiceName is the i-th of n services: svc-0000 … svc-0999.
func ServiceName(i, n int) string {
	width := len(fmt.Sprint(n - 1))
	if width < 4 {
		width = 4
	}
	return fmt.Sprintf("svc-%0*d", width, i)
}

// Instance is one registered instance: each service has a blue and a green one.
type Instance struct {
	Service, ID, Node, Address, Version string
	Color                               model.Color
	Port                                int
}

// Instances lists the 2n instances, service by service, blue first.
func Instances(n int) []Instance {
	out := make([]Instance, 0, 2*n)
	for i := range n {
		svc := ServiceName(i, n)
		for k, c := range model.Colors {
			out = append(out, Instance{
				Service: svc,
				ID:      svc + "-" + string(c),
				// One node per instance, as one VM or pod per instance
				// would be; external nodes, so no agent anti-entropy
				// touches them.
				Node:    "scale-" + svc + "-" + string(c),
				Address: "127.0.0.1",
				Version: fmt.Sprintf("v%d", k+1),
				Color:   c,
				Port:    basePort + 2*i + k,
			})
		}
	}
	return out
}

// modelService is services[i] of bg's config, as bg's serve builds it.
func modelService(i, n int) model.Service {
	return model.Service{Name: ServiceName(i, n), ListenerPort: listenerBasePort + i, Protocol: model.ProtocolHTTP2,
		Strategy: model.StrategyBlueGreen}
}

// View is the model bg builds from the config and Consul once every
// service is read: each fleet has its one instance, all traffic on blue.
func View(n int) model.View {
	v := model.View{EnvoyListenAddress: "0.0.0.0"}
	insts := Instances(n)
	for i := range n {
		sv := model.ServiceView{Service: modelService(i, n), Traffic: model.InitialTraffic()}
		for _, in := range insts[2*i : 2*i+2] {
			e := model.Endpoint{ID: in.ID, Node: in.Node, Address: in.Address, Port: in.Port, Weight: 1, Version: in.Version}
			if in.Color == model.Blue {
				sv.Membership.Blue.Endpoints = []model.Endpoint{e}
			} else {
				sv.Membership.Green.Endpoints = []model.Endpoint{e}
			}
		}
		v.Services = append(v.Services, sv)
	}
	return v
}

// SwitchedTraffic is a service's traffic after `bg switch --to c --instant`
// (only the split matters to the route).
func SwitchedTraffic(c model.Color) model.Traffic {
	t := model.InitialTraffic()
	if c == model.Green {
		t.Target, t.GreenPercent, t.Phase = model.Green, 100, model.PhaseSwitched
	} else {
		t.Target, t.Stable, t.Phase = model.Blue, model.Green, model.PhaseSwitched
	}
	return t
}

// ServicesOf is what proxy i follows: k consecutive services from i*k, mod n.
func ServicesOf(i, k, n int) []string {
	if k > n {
		k = n
	}
	out := make([]string, k)
	for j := range k {
		out[j] = ServiceName((i*k+j)%n, n)
	}
	return out
}

// BGConfig is what varies in the bench's `bg serve` config.
type BGConfig struct {
	ConsulAddr, XDSAddr, AdminAddr, Token string
	Services                              int
	SwitchTimeout                         string
}

// WriteBGConfig writes a config with n http2 services and returns its
// path. Everything else is bg's default except what the e2e configs also
// set (a short lock delay, so a restart is not held up).
func WriteBGConfig(t harness.TB, c BGConfig) string {
	t.Helper()
	var b strings.Builder
	fmt.Fprintf(&b, "consul:\n  address: %s\nxds:\n  listen: %s\nadmin:\n  listen: %s\n  token: %s\n  pprof: true\n",
		c.ConsulAddr, c.XDSAddr, c.AdminAddr, c.Token)
	fmt.Fprintf(&b, "switch:\n  timeout: %s\nleader:\n  lock_delay: 1s\nservices:\n", c.SwitchTimeout)
	for i := range c.Services {
		s := modelService(i, c.Services)
		fmt.Fprintf(&b, "  - name: %s\n    port: %d\n    protocol: %s\n", s.Name, s.ListenerPort, s.Protocol)
	}
	path := filepath.Join(t.TempDir(), "bg.yaml")
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		t.Fatalf("write bg config: %v", err)
	}
	return path
}
