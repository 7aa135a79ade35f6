package xds_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/bgctl/bg/controlplane/xds"
	"github.com/bgctl/bg/controlplane/xds/adssim"
)

func updateRouteGen(t *testing.T, s *xds.Server, greenPercent int, gen uint64) {
	t.Helper()
	if _, err := s.UpdateRouteGen("web", resources(greenPercent).Routes["web"], gen); err != nil {
		t.Fatal(err)
	}
}

func waitRouteGen(t *testing.T, s *xds.Server, gen uint64) xds.AckReport {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	rep := s.WaitRouteGen(ctx, "web", gen)
	if ctx.Err() != nil {
		t.Fatalf("WaitRouteGen(%d) ran into its deadline: %+v", gen, rep)
	}
	return rep
}

func TestRouteAcksFollowGenerations(t *testing.T) {
	s, addr := startServer(t, nil)
	s.MarkRouteGen("web", 1) // after Load
	clients := []*adssim.Client{
		dial(t, addr, adssim.Options{NodeID: "g1"}),
		dial(t, addr, adssim.Options{NodeID: "g2"}),
		dial(t, addr, adssim.Options{NodeID: "e1", UserAgent: "envoy"}),
	}
	for _, c := range clients {
		waitFor(t, c, "initial route", holds(split(0)))
	}
	if rep := waitRouteGen(t, s, 1); !rep.Complete() || rep.Acked != 3 || rep.Subscribed != 3 || rep.Generation != 1 {
		t.Fatalf("generation 1: %+v, want 3/3 on generation 1", rep)
	}

	// Not pushed yet: everyone is pending, holding generation 1.
	rep := s.RouteAcks("web", 2)
	if rep.Complete() || rep.Acked != 0 || len(rep.Pending) != 3 || rep.Generation != 1 || rep.Want != 2 {
		t.Fatalf("RouteAcks(2) before the push = %+v, want 3 pending on generation 1", rep)
	}
	for _, p := range rep.Pending {
		if p.Generation != 1 || p.LastNACK != nil {
			t.Errorf("pending %s holds %d (nack %+v), want 1 and no NACK", p.NodeID, p.Generation, p.LastNACK)
		}
	}

	updateRouteGen(t, s, 100, 2)
	if rep := waitRouteGen(t, s, 2); !rep.Complete() || rep.Acked != 3 {
		t.Fatalf("generation 2: %+v, want complete with 3 ACKs", rep)
	}
	for i, c := range clients {
		if w := c.State().Weights; w != split(100) {
			t.Errorf("client %d holds %+v after WaitRouteGen, want %+v", i, w, split(100))
		}
	}
	if rep := s.RouteAcks("web", 0); rep.Want != 2 || !rep.Complete() {
		t.Errorf("RouteAcks(0) = %+v, want the served generation 2, complete", rep)
	}
	if rep := s.RouteAcks("web", 1); !rep.Complete() || rep.Acked != 3 {
		t.Errorf("an older generation must count as held: %+v", rep)
	}
}

// A generation that leaves the route as it was (a pause) is not pushed, and
// the proxies holding that route hold the new generation at once.
func TestSameRouteNewGenerationIsNotPushed(t *testing.T) {
	s, addr := startServer(t, nil)
	updateRouteGen(t, s, 50, 2)
	c := dial(t, addr, adssim.Options{NodeID: "g1"})
	waitFor(t, c, "route", holds(split(50)))
	waitRouteGen(t, s, 2)
	before := c.State().Routes

	changed, stop := s.WatchAcks()
	defer stop()
	updateRouteGen(t, s, 50, 3) // equal route
	select {
	case <-changed:
	case <-time.After(time.Second):
		t.Fatal("declaring a generation did not signal WatchAcks")
	}
	if rep := s.RouteAcks("web", 3); !rep.Complete() || rep.Acked != 1 || rep.Generation != 3 {
		t.Fatalf("RouteAcks(3) = %+v, want complete at once", rep)
	}
	s.MarkRouteGen("web", 4)
	if rep := s.RouteAcks("web", 4); !rep.Complete() || rep.Generation != 4 {
		t.Fatalf("after MarkRouteGen(4): %+v", rep)
	}
	time.Sleep(200 * time.Millisecond)
	if after := c.State().Routes; after != before {
		t.Errorf("an unchanged route was pushed again: %d responses, had %d", after, before)
	}
	if s.RouteGeneration("web") != 4 {
		t.Errorf("RouteGeneration = %d, want 4", s.RouteGeneration("web"))
	}
}

func TestRouteAcksShowNACKWithGeneration(t *testing.T) {
	s, addr := startServer(t, nil)
	s.MarkRouteGen("web", 1)
	good := dial(t, addr, adssim.Options{NodeID: "good"})
	bad := dial(t, addr, adssim.Options{NodeID: "bad", Routes: adssim.Reject})
	waitFor(t, good, "initial route", holds(split(0)))
	waitFor(t, bad, "first NACK", func(s adssim.State) bool { return s.NACKs > 0 })

	updateRouteGen(t, s, 100, 2)
	rep := waitRouteGen(t, s, 2) // ends on the NACK, not the deadline
	if rep.Complete() || !rep.Settled() || rep.Acked != 1 || len(rep.Pending) != 1 {
		t.Fatalf("WaitRouteGen = %+v, want 1 ACK and the rejecting proxy pending", rep)
	}
	p := rep.Pending[0]
	if p.NodeID != "bad" || p.LastNACK == nil || p.LastNACK.Generation != 2 || !strings.Contains(p.LastNACK.Message, "rejecting route") {
		t.Fatalf("pending = %+v (nack %+v), want bad with its message for generation 2", p, p.LastNACK)
	}
	if p.Generation != 0 {
		t.Errorf("the rejecting proxy never accepted a route; held generation %d, want 0", p.Generation)
	}
	if res := rep.AckResult(); res.Complete() || res.Acked != 1 || res.PendingCount() != 1 {
		t.Errorf("AckResult = %+v", res)
	}

	// A NACK of generation 2 does not settle a wait for generation 3, which
	// the proxy has not been sent yet.
	if rep := s.RouteAcks("web", 3); rep.Settled() {
		t.Errorf("RouteAcks(3) settled on a NACK of generation 2: %+v", rep)
	}
	// The same route declared as generation 3: the rejection stands for it.
	s.MarkRouteGen("web", 3)
	if rep := s.RouteAcks("web", 3); !rep.Settled() || rep.Pending[0].LastNACK.Generation != 3 {
		t.Errorf("RouteAcks(3) of the rejected route = %+v, want settled", rep)
	}

	bad.SetRoutes(adssim.Accept)
	updateRouteGen(t, s, 50, 4)
	if rep := waitRouteGen(t, s, 4); !rep.Complete() || rep.Acked != 2 {
		t.Fatalf("after recovery: %+v, want complete with 2 ACKs", rep)
	}
}

func TestWaitRouteGenDropsDisconnectedProxy(t *testing.T) {
	s, addr := startServer(t, nil)
	s.MarkRouteGen("web", 1)
	good := dial(t, addr, adssim.Options{NodeID: "good"})
	stuck := dial(t, addr, adssim.Options{NodeID: "stuck", Routes: adssim.Ignore})
	waitFor(t, good, "initial route", holds(split(0)))
	waitFor(t, stuck, "initial route response", func(s adssim.State) bool { return s.Routes > 0 })

	updateRouteGen(t, s, 100, 2)
	got := make(chan xds.AckReport, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		got <- s.WaitRouteGen(ctx, "web", 2)
	}()
	waitFor(t, good, "new route", holds(split(100)))
	select {
	case rep := <-got:
		t.Fatalf("WaitRouteGen returned while a proxy had not ACKed: %+v", rep)
	case <-time.After(300 * time.Millisecond):
	}
	stuck.Close()
	select {
	case rep := <-got:
		if !rep.Complete() || rep.Acked != 1 || rep.Subscribed != 1 {
			t.Errorf("after disconnect: %+v, want complete 1/1", rep)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("WaitRouteGen still waits for a proxy that disconnected")
	}
}

// A proxy with no proxies subscribed is complete for any generation, even
// one not pushed yet: there is nobody to wait for.
func TestRouteAcksWithoutProxies(t *testing.T) {
	s, _ := startServer(t, nil)
	if rep := s.RouteAcks("web", 7); !rep.Complete() || rep.Subscribed != 0 {
		t.Errorf("RouteAcks with no proxies = %+v, want complete", rep)
	}
}
