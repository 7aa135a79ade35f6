package harness

import (
	"context"
	"fmt"
	"sync"
	"time"

	"google.golang.org/grpc"
	testpb "google.golang.org/grpc/interop/grpc_testing"
	"google.golang.org/grpc/metadata"
)

// TrafficOptions configure one proxyless gRPC client.
type TrafficOptions struct {
	XDSAddr string // management server, host:port
	NodeID  string // xDS node id; distinct ids give distinct ADS streams
	Service string // dialled as xds:///Service (the LDS listener name)
	Workers int    // concurrent callers; default 1
	// Metadata is sent with every call (e.g. a canary pool header).
	Metadata map[string]string
	// TLS, when set, reaches the management server over TLS (xdstls.go).
	TLS *XDSClientTLS
}

// callTimeout is each RPC's deadline.
const callTimeout = 2 * time.Second

// After failureRun consecutive failures a worker pauses failurePause per
// call, so instant failures (no config yet, no endpoints) do not spin a core
// on a 2-core machine, while a partly failing fleet keeps full call rate.
const (
	failureRun   = 5
	failurePause = 2 * time.Millisecond
)

// Traffic is a grpc-go client using the real xDS resolver with its own
// bootstrap, calling UnaryCall continuously and recording every result.
//
// Each Traffic gets its own xDS client and ADS stream through
// xds.NewXDSResolverWithConfigForTesting + grpc.WithResolvers, so many
// clients with different node ids can run in one test process; the
// process-global GRPC_XDS_BOOTSTRAP* variables are never used.
type Traffic struct {
	opts   TrafficOptions
	conn   *grpc.ClientConn
	cancel context.CancelFunc
	wg     sync.WaitGroup
	once   sync.Once
	log    *callLog
}

// Bootstrap returns the xDS bootstrap JSON for a client: only the server
// and the node id, as the brief for bg's clients prescribes.
func Bootstrap(xdsAddr, nodeID string) []byte {
	return fmt.Appendf(nil, `{"xds_servers":[{"server_uri":%q,"channel_creds":[{"type":"insecure"}],"server_features":["xds_v3"]}],"node":{"id":%q}}`, xdsAddr, nodeID)
}

// DialXDS opens a ClientConn to xds:///service with a private bootstrap.
func DialXDS(xdsAddr, nodeID, service string, opts ...grpc.DialOption) (*grpc.ClientConn, error) {
	return dialXDS(xdsAddr, nodeID, service, nil, opts...)
}

// StartTraffic starts Workers callers; they run until Stop or test end.
func StartTraffic(t TB, o TrafficOptions) *Traffic {
	t.Helper()
	if o.Workers <= 0 {
		o.Workers = 1
	}
	conn, err := dialXDS(o.XDSAddr, o.NodeID, o.Service, o.TLS)
	if err != nil {
		t.Fatalf("harness: traffic %s: %v", o.NodeID, err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	tr := &Traffic{opts: o, conn: conn, cancel: cancel, log: newCallLog()}
	client := testpb.NewTestServiceClient(conn)
	for range o.Workers {
		tr.wg.Add(1)
		go tr.work(ctx, client)
	}
	t.Cleanup(tr.Stop)
	return tr
}

func (tr *Traffic) work(ctx context.Context, client testpb.TestServiceClient) {
	defer tr.wg.Done()
	fails := 0
	callCtx := ctx
	for k, v := range tr.opts.Metadata {
		callCtx = metadata.AppendToOutgoingContext(callCtx, k, v)
	}
	for ctx.Err() == nil {
		start := time.Now()
		cctx, cancel := context.WithTimeout(callCtx, callTimeout)
		resp, err := client.UnaryCall(cctx, &testpb.SimpleRequest{})
		cancel()
		if ctx.Err() != nil {
			return // cancelled by Stop: not a result
		}
		tr.log.add(start, time.Now(), resp, err)
		if err == nil {
			fails = 0
		} else if fails++; fails >= failureRun {
			time.Sleep(failurePause)
		}
	}
}

// Stop ends the callers and closes the connection (and its ADS stream).
func (tr *Traffic) Stop() {
	tr.once.Do(func() {
		tr.cancel()
		tr.wg.Wait()
		tr.conn.Close()
	})
}

// Conn is the underlying ClientConn, e.g. to make calls of one's own.
func (tr *Traffic) Conn() *grpc.ClientConn { return tr.conn }

// Mark is a point in time in a Traffic's record.
type Mark struct {
	at  time.Time
	idx int // calls finished before the mark; later ones are all after idx
}

// Time of the mark.
func (m Mark) Time() time.Time { return m.at }

// Mark returns now; Since(mark) counts only calls started at or after it.
func (tr *Traffic) Mark() Mark { return tr.log.mark() }

// Since counts calls that started at or after m and have finished.
func (tr *Traffic) Since(m Mark) Counts { return tr.log.since(m) }

// Calls returns every call that started at or after m and has finished,
// in the order they finished, for analyses Counts does not cover.
func (tr *Traffic) Calls(m Mark) []Call { return tr.log.calls(m) }

// WaitFor polls windows of trafficWindow and returns the first window's
// Counts that satisfy ok; it fails the test after timeout.
func (tr *Traffic) WaitFor(t TB, timeout time.Duration, ok func(Counts) bool) Counts {
	t.Helper()
	deadline := time.Now().Add(timeout)
	var last Counts
	for {
		m := tr.Mark()
		time.Sleep(trafficWindow)
		last = tr.Since(m)
		if ok(last) {
			return last
		}
		if time.Now().After(deadline) {
			t.Fatalf("harness: traffic %s: condition not met within %v; last window %v", tr.opts.NodeID, timeout, last)
			return last
		}
	}
}

// Ready waits until a window has successful calls and no failures.
func (tr *Traffic) Ready(t TB, timeout time.Duration) Counts {
	t.Helper()
	return tr.WaitFor(t, timeout, func(c Counts) bool { return c.OK() > 0 && c.Failed == 0 })
}

// trafficWindow is WaitFor's polling window: long enough for many calls,
// short enough to see a flip quickly.
const trafficWindow = 200 * time.Millisecond
