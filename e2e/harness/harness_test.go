package harness_test

import (
	"os"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"

	"github.com/bgctl/bg/e2e/harness"
)

func TestMain(m *testing.M) {
	// The test binary doubles as a fake bg for the BG tests (see fakebg_test.go).
	if os.Getenv(fakeBGEnv) == "1" {
		os.Exit(fakeBGMain(os.Args[1:]))
	}
	os.Exit(m.Run())
}

func TestConsulKVSurvivesRestart(t *testing.T) {
	t0 := time.Now()
	c := harness.StartConsul(t)
	t.Logf("consul start: %v (http %s)", time.Since(t0), c.HTTPAddr())

	kv := c.Client().KV()
	if _, err := kv.Put(&api.KVPair{Key: "bg/test", Value: []byte("blue")}, nil); err != nil {
		t.Fatal(err)
	}
	mustGetKV(t, c, "bg/test", "blue")
	b := harness.StartBackend(t, harness.BackendOptions{Service: "web", Color: "green", ID: "web-green-1", Version: "v2"})
	if err := b.Register(c.Client()); err != nil {
		t.Fatal(err)
	}
	waitHealth(t, c, "web", 5*time.Second, func(es []*api.ServiceEntry) bool { return len(es) == 1 })

	t1 := time.Now()
	c.Stop()
	t.Logf("consul stop: %v", time.Since(t1))
	if _, _, err := kv.Get("bg/test", nil); err == nil {
		t.Fatal("KV answered while consul was stopped")
	}
	t2 := time.Now()
	c.Start()
	t.Logf("consul restart: %v", time.Since(t2))
	mustGetKV(t, c, "bg/test", "blue")
	// Agent-registered services and their checks are restored from the data dir.
	waitHealth(t, c, "web", 5*time.Second, func(es []*api.ServiceEntry) bool {
		return len(es) == 1 && es[0].Service.ID == "web-green-1"
	})
}

func mustGetKV(t *testing.T, c *harness.Consul, key, want string) {
	t.Helper()
	p, _, err := c.Client().KV().Get(key, nil)
	if err != nil {
		t.Fatal(err)
	}
	if p == nil || string(p.Value) != want {
		t.Fatalf("KV %s = %v, want %q", key, p, want)
	}
}

func TestBackendRegistersWithGRPCHealthCheck(t *testing.T) {
	c := harness.StartConsul(t)
	b := harness.StartBackend(t, harness.BackendOptions{Service: "web", Color: "blue", ID: "web-blue-1", Version: "v1"})
	if err := b.Register(c.Client()); err != nil {
		t.Fatal(err)
	}

	e := waitHealth(t, c, "web", 5*time.Second, func(es []*api.ServiceEntry) bool { return len(es) == 1 })[0]
	if e.Service.ID != "web-blue-1" || e.Service.Port != b.Port() || e.Service.Meta["version"] != "v1" ||
		len(e.Service.Tags) != 1 || e.Service.Tags[0] != "blue" {
		t.Fatalf("unexpected entry %+v", e.Service)
	}

	// The check must really be run by Consul, not just stay at its initial
	// status: a NOT_SERVING backend turns critical, then passes again.
	b.SetServing(false)
	waitHealth(t, c, "web", 5*time.Second, func(es []*api.ServiceEntry) bool { return len(es) == 0 })
	b.SetServing(true)
	e = waitHealth(t, c, "web", 5*time.Second, func(es []*api.ServiceEntry) bool { return len(es) == 1 })[0]
	for _, chk := range e.Checks {
		if chk.CheckID == "grpc:web-blue-1" {
			if chk.Type != "grpc" {
				t.Errorf("check type %q, want grpc", chk.Type)
			}
			t.Logf("check output: %s", chk.Output)
		}
	}

	if err := b.Deregister(c.Client()); err != nil {
		t.Fatal(err)
	}
	es, _, err := c.Client().Health().Service("web", "", false, nil)
	if err != nil || len(es) != 0 {
		t.Fatalf("after deregister: %d entries, err %v", len(es), err)
	}
}

// waitHealth polls /v1/health/service/<svc>?passing=true until ok.
func waitHealth(t *testing.T, c *harness.Consul, svc string, timeout time.Duration, ok func([]*api.ServiceEntry) bool) []*api.ServiceEntry {
	t.Helper()
	start := time.Now()
	for {
		es, _, err := c.Client().Health().Service(svc, "", true, nil)
		if err == nil && ok(es) {
			t.Logf("health of %s as wanted after %v", svc, time.Since(start).Round(time.Millisecond))
			return es
		}
		if time.Since(start) > timeout {
			t.Fatalf("health of %s not as wanted after %v: %d passing, err %v", svc, timeout, len(es), err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestTrafficOverXDS(t *testing.T) {
	x := startTestXDS(t)
	b1 := harness.StartBackend(t, harness.BackendOptions{Service: "web", Color: "blue", ID: "blue-1", Version: "v1"})
	b2 := harness.StartBackend(t, harness.BackendOptions{Service: "web", Color: "blue", ID: "blue-2", Version: "v1"})
	nodes := []string{"client-a", "client-b"}
	x.setRoute(t, "1", "web", "blue", nodes, b1, b2)

	a := harness.StartTraffic(t, harness.TrafficOptions{XDSAddr: x.addr, NodeID: "client-a", Service: "web", Workers: 2})
	b := harness.StartTraffic(t, harness.TrafficOptions{XDSAddr: x.addr, NodeID: "client-b", Service: "web", Workers: 1})
	a.Ready(t, 10*time.Second)
	b.Ready(t, 10*time.Second)

	m := a.Mark()
	time.Sleep(500 * time.Millisecond)
	got := a.Since(m)
	t.Logf("client-a over 500ms: %v", got)
	if got.Blue == 0 || got.Failed != 0 || got.Green != 0 || got.Other != 0 {
		t.Fatalf("want only blue answers and no failures, got %v", got)
	}
	if got.ByServer["blue-1"] == 0 || got.ByServer["blue-2"] == 0 {
		t.Fatalf("want both blue servers used, got %v", got.ByServer)
	}

	// Two node ids, two ADS streams, in one process.
	if saw := x.sawNodes(); !saw["client-a"] || !saw["client-b"] {
		t.Fatalf("xDS server saw nodes %v, want client-a and client-b", saw)
	}
	if n := x.nackCount(); n != 0 {
		t.Fatalf("%d NACKs", n)
	}

	// Injected failures are reported as failed calls.
	b1.SetFailRatio(1)
	got = a.WaitFor(t, 5*time.Second, func(c harness.Counts) bool { return c.Failed > 0 })
	if len(got.Errors) == 0 {
		t.Fatalf("failures without error texts: %v", got)
	}
	t.Logf("with blue-1 failing: %v", got)
	b1.SetFailRatio(0)
	a.Ready(t, 5*time.Second)

	// Calls records match Counts for the same mark.
	calls := a.Calls(m)
	if len(calls) < got.Total() {
		t.Fatalf("Calls(m) has %d calls, fewer than a later window's %d", len(calls), got.Total())
	}
	for _, c := range calls {
		if c.Start.Before(m.Time()) {
			t.Fatalf("call started %v before mark %v", c.Start, m.Time())
		}
	}
}

func TestFreePortAndRepoRoot(t *testing.T) {
	if p := harness.FreePort(t); p <= 0 || p > 65535 {
		t.Fatalf("port %d", p)
	}
	root := harness.RepoRoot(t)
	if _, err := os.Stat(root + "/e2e/harness/harness_test.go"); err != nil {
		t.Fatalf("RepoRoot %s: %v", root, err)
	}
}

func TestBootstrapShape(t *testing.T) {
	got := string(harness.Bootstrap("127.0.0.1:1234", "n1"))
	want := `{"xds_servers":[{"server_uri":"127.0.0.1:1234","channel_creds":[{"type":"insecure"}],"server_features":["xds_v3"]}],"node":{"id":"n1"}}`
	if got != want {
		t.Fatalf("bootstrap\n got %s\nwant %s", got, want)
	}
}
