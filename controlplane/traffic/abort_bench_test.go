package traffic_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/bgctl/bg/controlplane/membership"
	"github.com/bgctl/bg/controlplane/model"
	"github.com/bgctl/bg/controlplane/state/memstate"
	"github.com/bgctl/bg/controlplane/traffic"
	"github.com/bgctl/bg/controlplane/xds"
)

// BenchmarkAbortAcked times Switch(green) and Abort, alternating, from the
// call to its return with every subscribed client's ACK in hand.
func BenchmarkAbortAcked(b *testing.B) {
	for _, n := range []int{100, 1000} {
		b.Run(fmt.Sprintf("N=%d", n), func(b *testing.B) { benchAbortAcked(b, n) })
	}
}

func benchAbortAcked(b *testing.B, n int) {
	srv := xds.NewServer(quiet, nil)
	c := traffic.New([]model.Service{webService}, "0.0.0.0", memstate.New(), srv, quiet, traffic.NewMetrics(nil))
	ctx := context.Background()
	c.OnMembership(membership.Update{Service: "web", Membership: webMembership()})
	if err := c.LoadState(ctx); err != nil {
		b.Fatal(err)
	}
	if err := c.Publish(); err != nil {
		b.Fatal(err)
	}
	f := fleet(b, serveBG(b, srv), n, 0)

	m := newMeter()
	green := false
	for b.Loop() {
		green = !green
		req := traffic.Request{Service: "web", Instant: true, Timeout: time.Minute}
		start := time.Now()
		var res traffic.Result
		var err error
		if green {
			req.To = model.Green
			res, err = c.Switch(ctx, req)
		} else {
			res, err = c.Abort(ctx, req)
		}
		if !green {
			m.add(time.Since(start)) // the figure is abort → all ACKed; switches only set it up
		}
		if err != nil || !res.Changed || !res.Acks.Complete() || res.Acks.Acked != n {
			b.Fatalf("switch to green=%v: changed=%v acks=%d pending=%d err=%v", green, res.Changed, res.Acks.Acked, len(res.Acks.Pending), err)
		}
	}
	b.StopTimer()
	want := split(0)
	if green {
		want = split(100)
	}
	wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := f.Wait(wctx, want); err != nil { // the clients agree with the ACKs
		b.Fatal(err)
	}
	m.report(b)
}
