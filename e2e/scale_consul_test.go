package e2e

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/bgctl/bg/e2e/harness"
	"github.com/bgctl/bg/e2e/scale"
)

// TestThousandServicesOnDefaultConsul runs bg at the size its users run it:
// 1,000 services (a blue and a green instance each) in one Consul agent
// with Consul's default limits (200 HTTP connections per client address).
// bg must become ready, hold at most serve.ConsulConnections connections
// to Consul throughout, bring a newly registered instance to a subscribed
// grpc-go client, and switch a service under traffic with no failed call.
func TestThousandServicesOnDefaultConsul(t *testing.T) {
	const (
		n         = 1000
		maxConns  = 8 // serve.ConsulConnections (the bound)
		readyMost = 30 * time.Second
	)
	consul := harness.StartConsul(t)
	svc500, svc999 := scale.ServiceName(500, n), scale.ServiceName(999, n)

	// 998 services registered in the catalog (instances that never take
	// calls); the two services the test calls run real backends,
	// registered with the agent and its gRPC health checks.
	var insts []scale.Instance
	for _, in := range scale.Instances(n) {
		if in.Service != svc500 && in.Service != svc999 {
			insts = append(insts, in)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := scale.Register(ctx, consul.HTTPAddr(), insts); err != nil {
		t.Fatal(err)
	}
	backend := func(service, color, id, version string) *harness.Backend {
		b := harness.StartBackend(t, harness.BackendOptions{Service: service, Color: color, ID: id, Version: version})
		if err := b.Register(consul.Client()); err != nil {
			t.Fatalf("register %s: %v", id, err)
		}
		return b
	}
	backend(svc500, "blue", svc500+"-blue-1", "v1")
	green500 := backend(svc500, "green", svc500+"-green-1", "v2")
	backend(svc999, "blue", svc999+"-blue-1", "v1")
	backend(svc999, "green", svc999+"-green-1", "v2")

	bin := harness.BuildBG(t)
	xdsAddr := fmt.Sprintf("127.0.0.1:%d", harness.FreePort(t))
	admin := fmt.Sprintf("127.0.0.1:%d", harness.FreePort(t))
	const token = "e2e-secret"
	cfg := scale.WriteBGConfig(t, scale.BGConfig{ConsulAddr: consul.HTTPAddr(), XDSAddr: xdsAddr, AdminAddr: admin, Token: token,
		Services: n, SwitchTimeout: "60s"})
	started := time.Now()
	bg := harness.StartBG(t, harness.BGOptions{Bin: bin, Config: cfg, AdminAddr: admin, Token: token, SkipReady: true})
	_, port, _ := strings.Cut(consul.HTTPAddr(), ":")
	consulPort, _ := strconv.Atoi(port)
	// Every 20 ms, from start to the end of the test: a connection opened
	// for a burst of reads lives at least until it idles out, far longer.
	conns := scale.SampleConnections(bg.Pid(), consulPort, 20*time.Millisecond)

	ready := waitReadyWithin(t, bg, admin, token, started, readyMost)
	t.Logf("%d services, first start (creates every traffic state): bg ready %v after start", n, ready.Round(time.Millisecond))

	// An instance registered for service 999 reaches a subscribed client.
	tr999 := harness.StartTraffic(t, harness.TrafficOptions{XDSAddr: xdsAddr, NodeID: "client-999", Service: svc999, Workers: 2})
	tr999.Ready(t, 30*time.Second)
	added := harness.StartBackend(t, harness.BackendOptions{Service: svc999, Color: "blue", ID: svc999 + "-blue-2", Version: "v1"})
	registered := time.Now()
	if err := added.Register(consul.Client()); err != nil {
		t.Fatal(err)
	}
	for added.Calls() == 0 {
		if time.Since(registered) > 20*time.Second {
			t.Fatalf("instance registered for %s never called by its subscribed client", svc999)
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Logf("instance registered for %s → first call from a subscribed grpc-go client: %v", svc999, time.Since(registered).Round(time.Millisecond))
	if c := tr999.Since(tr999.Mark()); c.Failed != 0 {
		t.Errorf("calls failed after adding an instance: %+v", c)
	}

	// A switch of service 500 under traffic fails no call.
	tr500 := harness.StartTraffic(t, harness.TrafficOptions{XDSAddr: xdsAddr, NodeID: "client-500", Service: svc500, Workers: 4})
	tr500.Ready(t, 30*time.Second)
	mark := tr500.Mark()
	before := green500.Calls()
	out, stderr, code := harness.RunCLIEnv(t, bin, []string{"BG_ADDR=" + admin, "BG_TOKEN=" + token}, "switch", svc500, "--to", "green", "--instant")
	if code != 0 {
		t.Fatalf("bg switch %s: exit %d\n%s%s", svc500, code, out, stderr)
	}
	tr500.WaitFor(t, 20*time.Second, func(c harness.Counts) bool { return c.Green > 0 && c.Blue == 0 })
	got := tr500.Since(mark)
	if got.Failed != 0 {
		t.Errorf("switch of %s failed %d of %d calls: %v", svc500, got.Failed, got.Total(), got.Errors)
	}
	if green500.Calls() == before {
		t.Errorf("green of %s took no call after the switch", svc500)
	}
	t.Logf("switch of %s under traffic: %d calls, %d failed", svc500, got.Total(), got.Failed)

	most := conns.Stop()
	if err := conns.Err(); err != nil || most < 1 {
		t.Fatalf("could not count bg's connections to Consul (max %d): %v", most, err)
	}
	if most > maxConns {
		t.Errorf("bg held %d connections to Consul at once, want ≤ %d", most, maxConns)

	}
	t.Logf("bg's connections to Consul: at most %d at once from start to switch", most)

	// A restart reads every stored state in one request.
	bg.Stop()
	restarted := time.Now()
	bg.Restart()
	conns = scale.SampleConnections(bg.Pid(), consulPort, 20*time.Millisecond)
	ready = waitReadyWithin(t, bg, admin, token, restarted, readyMost)
	time.Sleep(2 * time.Second) // settled: blocking queries in place, reports written
	most = conns.Stop()
	t.Logf("%d services, restart: bg ready %v after start, at most %d connections to Consul", n, ready.Round(time.Millisecond), most)
	if most > maxConns {
		t.Errorf("after a restart bg held %d connections to Consul at once, want ≤ %d", most, maxConns)
	}
	tr500.WaitFor(t, 20*time.Second, func(c harness.Counts) bool { return c.Green > 0 && c.Blue == 0 && c.Failed == 0 })
}

// waitReadyWithin polls bg's /readyz until 200 and returns how long after
// started that was; it fails the test after most, or if bg exits.
func waitReadyWithin(t *testing.T, bg *harness.BG, admin, token string, started time.Time, most time.Duration) time.Duration {
	t.Helper()
	for {
		if code := httpStatus("http://"+admin+"/readyz", token); code == http.StatusOK {
			return time.Since(started)
		}
		if !bg.Running() {
			t.Fatalf("bg exited before becoming ready:\n%s", bg.Log())
		}
		if time.Since(started) > most {
			t.Fatalf("bg not ready %v after start on a default Consul:\n%s", most, bg.Log())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// httpStatus is the status of a GET with a bearer token (0: no answer).
func httpStatus(url, token string) int {
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		return 0
	}
	req.Header.Set("Authorization", "Bearer "+token)
	c := http.Client{Timeout: 2 * time.Second}
	resp, err := c.Do(req)
	if err != nil {
		return 0
	}
	resp.Body.Close()
	return resp.StatusCode
}
