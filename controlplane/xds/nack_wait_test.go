package xds_test

import (
	"context"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/bgctl/bg/controlplane/xds/adssim"
)

// A NACK that lands after WaitRoute began but rejects an older version must
// not end the wait: the proxy is sent the awaited version next and may take it.
func TestStaleNACKDoesNotEndWait(t *testing.T) {
	s, addr := startServer(t, nil)
	slow := dial(t, addr, adssim.Options{NodeID: "slow", Routes: adssim.Reject, Delay: 300 * time.Millisecond})
	waitFor(t, slow, "first NACK", func(s adssim.State) bool { return s.NACKs == 1 })

	updateRoute(t, s, 100) // rejected, 300 ms from now
	waitFor(t, slow, "the route to reject", func(s adssim.State) bool { return s.Routes == 2 })
	updateRoute(t, s, 50) // will be accepted
	slow.SetRoutes(adssim.Accept)

	res := waitRoute(t, s)
	if !res.Complete() || res.Acked != 1 {
		t.Fatalf("WaitRoute = %+v, want complete with 1 ACK: the NACK was for an older version", res)
	}
	if w := slow.State().Weights; w != split(50) {
		t.Errorf("client holds %+v, want %+v", w, split(50))
	}
}

// A proxy that rejected the route before WaitRoute was called is not waited
// for until the deadline.
func TestWaitRouteAfterNACK(t *testing.T) {
	reg := prometheus.NewRegistry()
	s, addr := startServer(t, reg)
	good := dial(t, addr, adssim.Options{NodeID: "good"})
	bad := dial(t, addr, adssim.Options{NodeID: "bad", Routes: adssim.Reject})
	waitFor(t, good, "initial route", holds(split(0)))
	waitFor(t, bad, "first NACK", func(s adssim.State) bool { return s.NACKs == 1 })

	updateRoute(t, s, 100)
	waitFor(t, good, "new route", holds(split(100)))
	deadline := time.Now().Add(10 * time.Second)
	for nackCount(t, reg) < 2 { // the server has seen the second NACK
		if time.Now().After(deadline) {
			t.Fatal("the server never saw the NACK of the new route")
		}
		time.Sleep(5 * time.Millisecond)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	res := s.WaitRoute(ctx, "web")
	if ctx.Err() != nil {
		t.Fatalf("WaitRoute waited out its deadline for a proxy that had already rejected the route: %+v", res)
	}
	if res.Acked != 1 || len(res.Pending) != 1 || res.Pending[0].LastNACK == nil {
		t.Errorf("WaitRoute = %+v, want 1 ACK and the rejecting proxy pending with its NACK", res)
	}
}
