package serve

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

func TestBoundedDialerHoldsAtMostNSockets(t *testing.T) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer lis.Close()
	go func() {
		for {
			c, err := lis.Accept()
			if err != nil {
				return
			}
			defer c.Close()
		}
	}()
	open := prometheus.NewGauge(prometheus.GaugeOpts{Name: "open"})
	dial := boundedDialer(2, open)
	ctx := context.Background()
	a, err := dial(ctx, "tcp", lis.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := dial(ctx, "tcp", lis.Addr().String()); err != nil {
		t.Fatal(err)
	}
	if v := testutil.ToFloat64(open); v != 2 {
		t.Fatalf("open = %v, want 2", v)
	}
	short, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	if c, err := dial(short, "tcp", lis.Addr().String()); err == nil {
		c.Close()
		t.Fatal("a third socket was dialled while two were open")
	}
	got := make(chan error, 1)
	go func() {
		c, err := dial(ctx, "tcp", lis.Addr().String())
		if err == nil {
			t.Cleanup(func() { c.Close() })
		}
		got <- err
	}()
	select {
	case err := <-got:
		t.Fatalf("third dial returned (%v) before a socket closed", err)
	case <-time.After(50 * time.Millisecond):
	}
	a.Close()
	a.Close() // a second Close gives back nothing more
	if err := <-got; err != nil {
		t.Fatalf("third dial after a close: %v", err)
	}
	if v := testutil.ToFloat64(open); v != 2 {
		t.Fatalf("open = %v after close and redial, want 2", v)
	}
}
