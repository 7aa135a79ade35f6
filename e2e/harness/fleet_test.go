package harness_test

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/bgctl/bg/e2e/harness"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	testpb "google.golang.org/grpc/interop/grpc_testing"
)

// TestBackendDelayAndMetricsSwitch: SetDelay slows every answer and the
// latency histogram sees it; SetMetricsServing(false) makes /metrics
// answer 503 (a failed scrape) until it is switched back on.
func TestBackendDelayAndMetricsSwitch(t *testing.T) {
	b := harness.StartBackend(t, harness.BackendOptions{Service: "web", Color: "green", ID: "web-green-1", Version: "v2"})
	const delay = 30 * time.Millisecond
	b.SetDelay(delay)
	start := time.Now()
	callN(t, b, 5)
	if took := time.Since(start); took < 5*delay {
		t.Fatalf("5 calls with a %v delay took %v", delay, took)
	}
	b.SetDelay(0)
	callN(t, b, 10)

	status, body := getMetrics(t, b)
	if status != http.StatusOK {
		t.Fatalf("/metrics: %d", status)
	}
	// Buckets double from 50 µs: 25.6 ms holds the 10 fast calls (not the
	// slow ones), 51.2 ms all 15.
	for le, want := range map[string]string{"0.0256": "10", "0.0512": "15"} {
		line := `bg_demo_request_duration_seconds_bucket{color="green",service="web",le="` + le + `"} ` + want
		if !strings.Contains(body, line+"\n") {
			t.Errorf("/metrics lacks %q:\n%s", line, body)
		}
	}

	b.SetMetricsServing(false)
	if status, _ := getMetrics(t, b); status != http.StatusServiceUnavailable {
		t.Fatalf("/metrics switched off: %d, want 503", status)
	}
	callN(t, b, 15) // calls are still served
	b.SetMetricsServing(true)
	if status, body := getMetrics(t, b); status != http.StatusOK || !strings.Contains(body, `bg_demo_requests_total{color="green",service="web"} 30`) {
		t.Fatalf("/metrics switched on again: %d\n%s", status, body)
	}
}

// callN makes n UnaryCalls straight to b; each must succeed.
func callN(t *testing.T, b *harness.Backend, n int) {
	t.Helper()
	cc, err := grpc.NewClient(b.Addr(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	c := testpb.NewTestServiceClient(cc)
	for range n {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		_, err := c.UnaryCall(ctx, &testpb.SimpleRequest{})
		cancel()
		if err != nil {
			t.Fatal(err)
		}
	}
}

func getMetrics(t *testing.T, b *harness.Backend) (int, string) {
	t.Helper()
	resp, err := http.Get("http://" + b.MetricsAddr() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(body)
}
