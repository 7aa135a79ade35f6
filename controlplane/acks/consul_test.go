package acks_test

import (
	"context"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"

	"github.com/bgctl/bg/controlplane/acks"
	"github.com/bgctl/bg/controlplane/model"
	"github.com/bgctl/bg/controlplane/translator"
	"github.com/bgctl/bg/controlplane/xds"
	"github.com/bgctl/bg/controlplane/xds/adssim"
	"github.com/bgctl/bg/e2e/harness"
)

// requireConsul fails under CI (any non-empty $CI) when no consul binary
// is installed, and skips elsewhere; harness.StartConsul looks in the same
// places ($BG_CONSUL_BIN, <repo>/.cache/bin/consul, PATH).
func requireConsul(t *testing.T) {
	t.Helper()
	if p := os.Getenv("BG_CONSUL_BIN"); p != "" {
		return // the harness checks it
	}
	// Like the harness: <repo>/.cache/bin/consul, the repo found upwards
	// from the working directory.
	if dir, err := os.Getwd(); err == nil {
		for {
			if _, err := os.Stat(filepath.Join(dir, ".cache", "bin", "consul")); err == nil {
				return
			}
			if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil || filepath.Dir(dir) == dir {
				break
			}
			dir = filepath.Dir(dir)
		}
	}
	if _, err := exec.LookPath("consul"); err == nil {
		return
	}
	msg := "consul binary not found ($BG_CONSUL_BIN, .cache/bin/consul, PATH); run scripts/install-test-deps.sh"
	if os.Getenv("CI") != "" {
		t.Fatal(msg)
	}
	t.Skip(msg)
}

func route(greenPercent int) translator.Resources {
	return translator.Translate(model.View{
		EnvoyListenAddress: "0.0.0.0",
		Services: []model.ServiceView{{
			Service: model.Service{Name: "web", ListenerPort: 10000, Protocol: model.ProtocolHTTP2},
			Membership: model.Membership{
				Blue:  model.Fleet{Endpoints: []model.Endpoint{{ID: "b1", Address: "10.0.0.1", Port: 8080, Weight: 1}}},
				Green: model.Fleet{Endpoints: []model.Endpoint{{ID: "g1", Address: "10.0.1.1", Port: 8080, Weight: 1}}},
			},
			Traffic: model.Traffic{Stable: model.Blue, GreenPercent: greenPercent, Phase: model.PhaseStable, Generation: 1},
		}},
	})
}

// replica is one bg replica reduced to its xDS server and ACK reports.
type replica struct {
	id     string
	srv    *xds.Server
	agg    *acks.Aggregator
	client *adssim.Client
	cancel context.CancelFunc
}

func startReplica(t *testing.T, c *api.Client, id string, mode adssim.RouteMode) *replica {
	t.Helper()
	return startReplicaWithCheck(t, c, id, mode, "")
}

// startReplicaWithCheck binds the replica's report session to checkID.
func startReplicaWithCheck(t *testing.T, c *api.Client, id string, mode adssim.RouteMode, checkID string) *replica {
	t.Helper()
	log := slog.New(slog.DiscardHandler)
	srv := xds.NewServer(log, nil)
	srv.Load(route(0))
	srv.MarkRouteGen("web", 1)
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan struct{})
	go func() {
		defer close(served)
		_ = srv.Serve(ctx, lis)
	}()
	agg, err := acks.Start(ctx, c, c, "bgtest/", id, checkID, srv, []string{"web"}, nil, log)
	if err != nil {
		t.Fatal(err)
	}
	r := &replica{id: id, srv: srv, agg: agg, cancel: cancel}
	t.Cleanup(func() {
		cancel()
		<-served
		<-agg.Stopped()
	})
	dctx, dcancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer dcancel()
	if r.client, err = adssim.Dial(dctx, lis.Addr().String(), adssim.Options{Service: "web", NodeID: id + "-proxy", Routes: mode}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(r.client.Close)
	return r
}

func (r *replica) push(t *testing.T, greenPercent int, gen uint64) {
	t.Helper()
	if _, err := r.srv.UpdateRouteGen("web", route(greenPercent).Routes["web"], gen); err != nil {
		t.Fatal(err)
	}
}

func wait(t *testing.T, a *acks.Aggregator, gen uint64, d time.Duration) (acks.Result, bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	res := a.Wait(ctx, "web", gen)
	return res, ctx.Err() == nil
}

// Three replicas with one proxy each against a real Consul: the leader's
// answer counts every replica's proxy, waits for a replica that has not
// pushed yet, shows a follower's NACK, and forgets a replica that stopped.
func TestThreeReplicasOneConsul(t *testing.T) {
	requireConsul(t)
	consul := harness.StartConsul(t)
	c := consul.Client()
	r1 := startReplica(t, c, "r1", adssim.Accept)
	r2 := startReplica(t, c, "r2", adssim.Accept)
	r3 := startReplica(t, c, "r3", adssim.Accept)
	// A replica and its proxies are known once it has published them.
	deadline := time.Now().Add(10 * time.Second)
	for st := r1.agg.Status(context.Background(), "web", 1); len(st.Replicas) < 3 || st.Subscribed < 3; st = r1.agg.Status(context.Background(), "web", 1) {
		if time.Now().After(deadline) {
			t.Fatalf("not every replica published: %s", r1.agg.Status(context.Background(), "web", 1).Summary())
		}
		time.Sleep(10 * time.Millisecond)
	}

	res, inTime := wait(t, r1.agg, 1, 10*time.Second)
	if !inTime || !res.Complete || res.Acked != 3 || res.Subscribed != 3 || len(res.Replicas) != 3 {
		t.Fatalf("generation 1: %s (%+v)", res.Summary(), res)
	}

	// r3 has not adopted generation 2: the leader must not report it done.
	start := time.Now()
	r1.push(t, 100, 2)
	r2.push(t, 100, 2)
	res, inTime = wait(t, r1.agg, 2, 1500*time.Millisecond)
	if inTime || res.Complete || res.Acked != 2 || res.PendingCount() != 1 || res.AckResult().Complete() {
		t.Fatalf("generation 2 without r3: %s (%+v)", res.Summary(), res)
	}
	if !strings.Contains(res.Summary(), "r3 serves generation 1, not 2 yet") {
		t.Errorf("summary %q does not say r3 is behind", res.Summary())
	}
	st := r1.agg.Status(context.Background(), "web", 2)
	if st.Complete || st.Acked != 2 || st.Subscribed != 3 {
		t.Errorf("Status = %s", st.Summary())
	}
	pushed := make(chan time.Time, 1)
	go func() {
		time.Sleep(200 * time.Millisecond)
		pushed <- time.Now()
		r3.push(t, 100, 2)
	}()
	res, inTime = wait(t, r1.agg, 2, 10*time.Second)
	if !inTime || !res.Complete || res.Acked != 3 {
		t.Fatalf("generation 2: %s (%+v)", res.Summary(), res)
	}
	t.Logf("generation 2 confirmed on 3 replicas %v after r3 pushed it (%v after the first push)", time.Since(<-pushed), time.Since(start))

	// A follower's proxy rejects generation 3: the wait ends on the NACK,
	// and the leader's answer carries the proxy's message.
	r2.client.SetRoutes(adssim.Reject)
	t0 := time.Now()
	for _, r := range []*replica{r1, r2, r3} {
		r.push(t, 50, 3)
	}
	res, inTime = wait(t, r1.agg, 3, 10*time.Second)
	if !inTime {
		t.Fatalf("generation 3: the wait ran out although the only pending proxy rejected it: %s", res.Summary())
	}
	if res.Complete || res.Acked != 2 || len(res.Pending) != 1 {
		t.Fatalf("generation 3: %s (%+v)", res.Summary(), res)
	}
	p := res.Pending[0]
	if p.Replica != "r2" || p.NodeID != "r2-proxy" || p.LastNACK == nil || !strings.Contains(p.LastNACK.Message, "rejecting route") || p.LastNACK.Generation != 3 {
		t.Errorf("pending %+v (nack %+v), want r2's proxy with its rejection of generation 3", p, p.LastNACK)
	}
	t.Logf("follower NACK reached the leader's answer in %v: %s", time.Since(t0), res.Summary())

	// It recovers; then r3 stops cleanly and drops out of the answer.
	r2.client.SetRoutes(adssim.Accept)
	for _, r := range []*replica{r1, r2, r3} {
		r.push(t, 0, 4)
	}
	if res, inTime = wait(t, r1.agg, 4, 10*time.Second); !inTime || !res.Complete || res.Acked != 3 {
		t.Fatalf("generation 4: %s", res.Summary())
	}
	r3.cancel()
	select {
	case <-r3.agg.Stopped():
	case <-time.After(5 * time.Second):
		t.Fatal("r3's publisher did not stop")
	}
	pairs, _, err := c.KV().List(acks.Dir("bgtest/", "web"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(pairs) != 2 {
		t.Errorf("%d reports after r3 stopped, want 2 (r3's removed with its session)", len(pairs))
	}
	for _, r := range []*replica{r1, r2} {
		r.push(t, 100, 5)
	}
	if res, inTime = wait(t, r1.agg, 5, 10*time.Second); !inTime || !res.Complete || res.Acked != 2 || len(res.Replicas) != 2 {
		t.Fatalf("generation 5 without r3: %s", res.Summary())
	}
}

// A report written under a session that Consul then invalidates vanishes,
// and the publisher writes it again under a new session.
func TestReportSurvivesSessionLoss(t *testing.T) {
	requireConsul(t)
	consul := harness.StartConsul(t)
	c := consul.Client()
	r1 := startReplica(t, c, "r1", adssim.Accept)
	key := acks.Key("bgtest/", "web", "r1")
	var pair *api.KVPair
	deadline := time.Now().Add(10 * time.Second)
	for {
		p, _, err := c.KV().Get(key, nil)
		if err == nil && p != nil && strings.Contains(string(p.Value), `"acked":1`) {
			pair = p
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no report with the proxy's ACK at %s", key)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if pair.Session == "" {
		t.Fatal("report has no session")
	}
	if _, err := c.Session().Destroy(pair.Session, nil); err != nil {
		t.Fatal(err)
	}
	r1.push(t, 100, 2) // a change: the write finds the session gone
	deadline = time.Now().Add(10 * time.Second)
	for {
		p, _, err := c.KV().Get(key, nil)
		if err == nil && p != nil && p.Session != "" && p.Session != pair.Session && strings.Contains(string(p.Value), `"generation":2`) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("report not rewritten under a new session: %+v", p)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// A replica's reports are bound to its own check: when the check turns
// critical (the process died and stopped passing it), Consul deletes them
// at once, not after the session's TTL.
func TestReportsVanishWithTheReplicasCheck(t *testing.T) {
	requireConsul(t)
	consul := harness.StartConsul(t)
	c := consul.Client()
	const checkID = "bg-control-plane-r1-alive"
	if err := c.Agent().ServiceRegister(&api.AgentServiceRegistration{ID: "bg-control-plane-r1", Name: "bg-control-plane",
		Check: &api.AgentServiceCheck{CheckID: checkID, TTL: "1m", Status: api.HealthPassing}}); err != nil {
		t.Fatal(err)
	}
	startReplicaWithCheck(t, c, "r1", adssim.Accept, checkID)
	key := acks.Key("bgtest/", "web", "r1")
	var pair *api.KVPair
	deadline := time.Now().Add(10 * time.Second)
	for pair == nil {
		if p, _, err := c.KV().Get(key, nil); err == nil && p != nil && p.Session != "" {
			pair = p
		} else if time.Now().After(deadline) {
			t.Fatalf("no report at %s", key)
		}
		time.Sleep(20 * time.Millisecond)
	}
	se, _, err := c.Session().Info(pair.Session, nil)
	if err != nil || se == nil {
		t.Fatalf("session %s: %v", pair.Session, err)
	}
	bound := false
	for _, sc := range se.ServiceChecks {
		bound = bound || sc.ID == checkID
	}
	if !bound {
		t.Fatalf("report session %+v is not bound to check %s", se, checkID)
	}
	if err := c.Agent().UpdateTTL(checkID, "replica gone", api.HealthCritical); err != nil {
		t.Fatal(err)
	}
	failed := time.Now()
	for {
		p, _, err := c.KV().Get(key, nil)
		if err == nil && (p == nil || p.Session != pair.Session) {
			break
		}
		if time.Since(failed) > 2*time.Second {
			t.Fatalf("report still held by session %s 2 s after its check turned critical", pair.Session)
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Logf("report gone %v after the replica's check turned critical", time.Since(failed).Round(time.Millisecond))
}
