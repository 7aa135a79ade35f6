package harness_test

import (
	"context"
	"errors"
	"math"
	"reflect"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	testpb "google.golang.org/grpc/interop/grpc_testing"

	"github.com/bgctl/bg/controlplane/fleetmetrics"
	promsource "github.com/bgctl/bg/controlplane/fleetmetrics/prometheus"
	"github.com/bgctl/bg/controlplane/model"
	"github.com/bgctl/bg/e2e/harness"
)

// TestPrometheusCountsBackendCallsExactly reads the backends' own counters
// through the App templates, as an analysis does: both fleets at one
// instant, differenced by fleetmetrics.Tracker. The counts are exactly what
// the backends served and failed.
func TestPrometheusCountsBackendCallsExactly(t *testing.T) {
	blue := harness.StartBackend(t, harness.BackendOptions{Service: "web", Color: "blue", ID: "web-blue-1", Version: "v1"})
	green := harness.StartBackend(t, harness.BackendOptions{Service: "web", Color: "green", ID: "web-green-1", Version: "v2"})
	t0 := time.Now()
	pr := harness.StartPrometheus(t, []string{blue.MetricsAddr(), green.MetricsAddr()})
	t.Logf("prometheus start: %v (%s)", time.Since(t0), pr.Addr())
	pr.WaitTargetsUp(10 * time.Second)

	src, err := promsource.New(pr.URL(), map[string]promsource.Templates{
		"web": {Requests: harness.AppRequestsTemplate, Errors: harness.AppErrorsTemplate, Latency: harness.AppLatencyTemplate},
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	// The switch starts: the counters exist at 0 from the first scrape.
	start, b0, g0 := readFleets(t, src, "the start", func(b, g fleetmetrics.Reading) bool {
		return len(b.Requests) == 1 && len(g.Requests) == 1 && len(b.Errors) == 1 && len(g.Errors) == 1
	})
	var tb, tg fleetmetrics.Tracker
	tb.Advance(b0)
	tg.Advance(g0)

	green.SetFailRatio(0.2)
	const calls = 1000
	callBackend(t, blue, calls)
	callBackend(t, green, calls)
	if got := green.Failed(); got < 150 || got > 250 {
		t.Fatalf("green failed %d of %d calls, want about 200", got, calls)
	}
	// Every call has returned, so the counters are final: once both fleets
	// show every call, the scrape read has every error too.
	at, b, g := readFleets(t, src, "every call", func(b, g fleetmetrics.Reading) bool {
		return total(b.Requests) == calls && total(g.Requests) == calls
	})
	cb, _ := tb.Advance(b)
	cg, _ := tg.Advance(g)
	t.Logf("over %v: blue %+v", at.Sub(start).Round(time.Millisecond), cb)
	t.Logf("green %+v (backend failed %d)", cg, green.Failed())
	if cb.Requests != calls || cb.Errors != 0 || cb.Series != 1 {
		t.Errorf("blue counts %+v, want exactly %d requests, 0 errors, 1 series", cb, calls)
	}
	if cg.Requests != calls || cg.Errors != float64(green.Failed()) || cg.Series != 1 {
		t.Errorf("green counts %+v, want exactly %d requests and the %d the backend failed", cg, calls, green.Failed())
	}
	for name, c := range map[string]fleetmetrics.Counts{"blue": cb, "green": cg} {
		if n := len(c.Latency); n != 15 || c.Latency[n-1].Le != math.Inf(1) || c.Latency[n-1].Count != calls {
			t.Errorf("%s latency %+v, want 14 bounds and +Inf holding all %d calls", name, c.Latency, calls)
			continue
		}
		for i := 1; i < len(c.Latency); i++ {
			if c.Latency[i].Count < c.Latency[i-1].Count {
				t.Errorf("%s latency buckets not cumulative: %+v", name, c.Latency)
			}
		}
	}

	pr.Stop()
	if _, err := src.Read(context.Background(), fleetmetrics.Query{Service: "web", Color: model.Green, At: at}); !errors.Is(err, fleetmetrics.ErrUnavailable) {
		t.Fatalf("Read with prometheus stopped = %v, want ErrUnavailable", err)
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
	// The WAL came back: a read at the earlier instant is the same read.
	for c, want := range map[model.Color]fleetmetrics.Reading{model.Blue: b, model.Green: g} {
		got, err := src.Read(context.Background(), fleetmetrics.Query{Service: "web", Color: c, At: at})
		if err != nil || !reflect.DeepEqual(got, want) {
			t.Errorf("%s read at %v after the restart: %+v, %v; want the same as before %+v", c, at, got, err, want)
		}
	}
	now, err := src.Read(context.Background(), fleetmetrics.Query{Service: "web", Color: model.Green})
	t.Logf("green read now, before the first scrape since the restart: %d request series (%v), err %v", len(now.Requests), now.Requests, err)
	// Once scraping resumes, nothing happened in between: zero counts, not
	// a phantom reset.
	pr.WaitTargetsUp(15 * time.Second)
	_, b2, g2 := readFleets(t, src, "scraping again", func(b, g fleetmetrics.Reading) bool {
		return len(b.Requests) == 1 && len(g.Requests) == 1
	})
	cb, _ = tb.Advance(b2)
	cg, _ = tg.Advance(g2)
	if cb.Requests != 0 || cb.Errors != 0 || cg.Requests != 0 || cg.Errors != 0 || cg.Series != 1 {
		t.Errorf("counts across the prometheus restart: blue %+v, green %+v; want 0 requests, 0 errors", cb, cg)
	}
}

// readFleets reads both fleets of "web" at one instant, now, until done
// says the scrape it waits for is in.
func readFleets(t *testing.T, src *promsource.Source, what string, done func(b, g fleetmetrics.Reading) bool) (time.Time, fleetmetrics.Reading, fleetmetrics.Reading) {
	t.Helper()
	began := time.Now()
	for deadline := began.Add(10 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		at := time.Now()
		b, errB := src.Read(context.Background(), fleetmetrics.Query{Service: "web", Color: model.Blue, At: at})
		g, errG := src.Read(context.Background(), fleetmetrics.Query{Service: "web", Color: model.Green, At: at})
		err := errors.Join(errB, errG)
		if err == nil && done(b, g) {
			t.Logf("%s: read after %v", what, time.Since(began).Round(time.Millisecond))
			return at, b, g
		}
		if time.Now().After(deadline) {
			t.Fatalf("waiting for %s: blue %+v, green %+v, err %v", what, b, g, err)
		}
	}
}

func total(m map[string]float64) float64 {
	s := 0.0
	for _, v := range m {
		s += v
	}
	return s
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
