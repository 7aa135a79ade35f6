package harness_test

import (
	"context"
	"errors"
	"math"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	testpb "google.golang.org/grpc/interop/grpc_testing"

	"github.com/bgctl/bg/controlplane/fleetmetrics"
	promsource "github.com/bgctl/bg/controlplane/fleetmetrics/prometheus"
	"github.com/bgctl/bg/controlplane/judge"
	"github.com/bgctl/bg/controlplane/model"
	"github.com/bgctl/bg/e2e/harness"
)

func TestPrometheusJudgesBackendErrorRatios(t *testing.T) {
	blue := harness.StartBackend(t, harness.BackendOptions{Service: "web", Color: "blue", ID: "web-blue-1", Version: "v1"})
	green := harness.StartBackend(t, harness.BackendOptions{Service: "web", Color: "green", ID: "web-green-1", Version: "v2"})
	t0 := time.Now()
	pr := harness.StartPrometheus(t, []string{blue.MetricsAddr(), green.MetricsAddr()})
	t.Logf("prometheus start: %v (%s)", time.Since(t0), pr.Addr())
	pr.WaitTargetsUp(10 * time.Second)

	src, err := promsource.New(pr.URL(), map[string]promsource.Templates{
		"web": {Requests: harness.AppRequestsTemplate, Errors: harness.AppErrorsTemplate},
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	green.SetFailRatio(0.2)
	const calls = 1000
	callBackend(t, blue, calls)
	callBackend(t, green, calls)
	if got := green.Failed(); got < 150 || got > 250 {
		t.Fatalf("green failed %d of %d calls, want about 200", got, calls)
	}

	// increase() only grows past the pre-traffic zero, so once both fleets
	// show every call, the last scrape is in.
	q := func(c model.Color) fleetmetrics.Query {
		return fleetmetrics.Query{Service: "web", Color: c, Window: 10 * time.Second}
	}
	var b, g judge.Sample
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("calls not all scraped: blue %+v, green %+v, err %v", b, g, err)
		}
		if b, err = src.Sample(context.Background(), q(model.Blue)); err != nil {
			continue
		}
		if g, err = src.Sample(context.Background(), q(model.Green)); err != nil {
			continue
		}
		if b.Requests >= calls && g.Requests >= calls {
			break
		}
	}
	t.Logf("blue %+v, green %+v (green failed %d)", b, g, green.Failed())
	if b.Errors != 0 {
		t.Errorf("blue errors = %v, want 0", b.Errors)
	}
	// Errors and requests come from one scrape, so extrapolation cancels in
	// the ratio; compare with what the backend actually failed.
	want := float64(green.Failed()) / calls
	if r := g.Errors / g.Requests; math.Abs(r-want) > 0.01 {
		t.Errorf("green error ratio = %.3f, want %.3f", r, want)
	}

	pr.Stop()
	if _, err := src.Sample(context.Background(), q(model.Green)); !errors.Is(err, fleetmetrics.ErrUnavailable) {
		t.Fatalf("Sample with prometheus stopped = %v, want ErrUnavailable", err)
	} else {
		t.Logf("stopped: %v", err)
	}
	if err := src.Check(context.Background()); !errors.Is(err, fleetmetrics.ErrUnavailable) {
		t.Fatalf("Check with prometheus stopped = %v, want ErrUnavailable", err)
	}

	t1 := time.Now()
	pr.Start()
	t.Logf("prometheus restart: %v", time.Since(t1))
	if err := src.Check(context.Background()); err != nil {
		t.Fatal(err)
	}
	// The WAL came back: a window reaching back past the first scrape still
	// sees every call.
	long := q(model.Green)
	long.Window = time.Minute
	if g2, err := src.Sample(context.Background(), long); err != nil || g2.Requests < calls {
		t.Fatalf("after restart: %+v, %v; want >= %d requests", g2, err, calls)
	}
}

// callBackend makes n UnaryCalls straight to one backend, no xDS.
func callBackend(t *testing.T, b *harness.Backend, n int) {
	t.Helper()
	cc, err := grpc.NewClient(b.Addr(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	c := testpb.NewTestServiceClient(cc)
	for range n {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		_, _ = c.UnaryCall(ctx, &testpb.SimpleRequest{})
		cancel()
	}
	if got := b.Calls(); got != int64(n) {
		t.Fatalf("%s got %d calls, want %d", b.Options().ID, got, n)
	}
}
