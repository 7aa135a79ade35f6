package commands_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/bgctl/bg/controlplane/acks"
	"github.com/bgctl/bg/controlplane/model"
	"github.com/bgctl/bg/controlplane/traffic"
	"github.com/bgctl/bg/controlplane/xds"
)

// statusWithAcks is the status as a control plane that aggregates ACKs
// over replicas sends it: traffic.Status plus "acks".
type statusWithAcks struct {
	traffic.Status
	Acks *acks.Result `json:"acks,omitempty"`
}

// promotedServer answers a progressive switch and then, per status read,
// the next of frames (the last repeats).
type promotedServer struct {
	mu     sync.Mutex
	frames []statusWithAcks
	reads  int
}

func (s *promotedServer) next() statusWithAcks {
	s.mu.Lock()
	defer s.mu.Unlock()
	f := s.frames[min(s.reads, len(s.frames)-1)]
	s.reads++
	return f
}

func startPromoted(t *testing.T, frames ...statusWithAcks) string {
	t.Helper()
	ps := &promotedServer{frames: frames}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/services/web/switch", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(traffic.Result{Changed: true, Status: frames[0].Status, Acks: xds.AckResult{Acked: 3}})
	})
	mux.HandleFunc("GET /v1/services/web", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(ps.next())
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv.Listener.Addr().String()
}

func promoted(gen uint64, a *acks.Result) statusWithAcks {
	return statusWithAcks{
		Status: traffic.Status{
			Service: "web", Weights: traffic.Weights{Green: 100}, Stable: model.Green, Phase: model.PhaseSwitched, Generation: gen,
			Switch:  &model.Rollout{ID: "sw-1", Phase: model.RolloutPromoted, From: model.Blue, To: model.Green, Plan: model.Plan{Steps: []int{50, 100}}, Step: 1},
			Proxies: traffic.ProxyCounts{Connected: 1, Acked: 1}, // the answering replica's own: not enough
		},
		Acks: a,
	}
}

func pendingOnR2(gen uint64, nack *xds.NACK) *acks.Result {
	return &acks.Result{Service: "web", Generation: gen, Subscribed: 3, Acked: 2,
		Pending:  []xds.ProxyInfo{{NodeID: "f-1", Replica: "r2", Generation: gen - 1, LastNACK: nack}},
		Replicas: []acks.ReplicaAcks{{Replica: "r1", Local: true, Subscribed: 1, Acked: 1, Complete: true}, {Replica: "r2", Subscribed: 2, Acked: 1}}}
}

func TestWaitPromotedWaitsForEveryReplica(t *testing.T) {
	done := &acks.Result{Service: "web", Generation: 7, Complete: true, Subscribed: 3, Acked: 3}
	addr := startPromoted(t, promoted(7, pendingOnR2(7, nil)), promoted(7, pendingOnR2(7, nil)), promoted(7, pendingOnR2(7, nil)), promoted(7, done))
	code, stdout, stderr := run(t, "--addr", addr, "switch", "web", "--to", "green", "--wait")
	expect(t, code, stdout, stderr, 0)
	if !strings.Contains(stdout, "switch sw-1 promoted; waiting for every proxy: 2/3 proxies on 2 replicas hold generation 7; pending: r2/f-1") {
		t.Errorf("stdout does not show the wait for r2's proxy:\n%s", stdout)
	}
}

func TestWaitPromotedNotAckedInTime(t *testing.T) {
	addr := startPromoted(t, promoted(7, pendingOnR2(7, nil)))
	code, stdout, stderr := run(t, "--addr", addr, "switch", "web", "--to", "green", "--wait", "--timeout", "600ms")
	expect(t, code, stdout, stderr, 4, "switch sw-1 promoted, but not every proxy ACKed generation 7 within 600ms", "r2/f-1")
}

func TestWaitPromotedRejectedByAFollowersProxy(t *testing.T) {
	nack := &xds.NACK{Message: "weights sum to 0", Generation: 7}
	addr := startPromoted(t, promoted(7, pendingOnR2(7, nack)))
	code, stdout, stderr := run(t, "--addr", addr, "switch", "web", "--to", "green", "--wait", "--timeout", "1m")
	expect(t, code, stdout, stderr, 4, "proxies rejected generation 7", "r2/f-1 (rejected: weights sum to 0)")
}

// A rejection of an older generation does not end the wait: the proxy may
// still take the promoted one.
func TestWaitPromotedIgnoresAnOldRejection(t *testing.T) {
	old := &xds.NACK{Message: "old", Generation: 6}
	done := &acks.Result{Service: "web", Generation: 7, Complete: true, Subscribed: 3, Acked: 3}
	addr := startPromoted(t, promoted(7, pendingOnR2(7, old)), promoted(7, pendingOnR2(7, old)), promoted(7, done))
	code, stdout, stderr := run(t, "--addr", addr, "switch", "web", "--to", "green", "--wait", "--timeout", "1m")
	expect(t, code, stdout, stderr, 0)
}

func TestWaitPromotedJSONCarriesAcks(t *testing.T) {
	done := &acks.Result{Service: "web", Generation: 7, Complete: true, Subscribed: 3, Acked: 3,
		Replicas: []acks.ReplicaAcks{{Replica: "r1", Complete: true}, {Replica: "r2", Complete: true}}}
	addr := startPromoted(t, promoted(7, done))
	code, stdout, stderr := run(t, "--addr", addr, "switch", "web", "--to", "green", "--wait", "-o", "json")
	expect(t, code, stdout, stderr, 0)
	var got statusWithAcks
	if err := json.Unmarshal([]byte(stdout), &got); err != nil {
		t.Fatalf("stdout is not one JSON status: %v\n%s", err, stdout)
	}
	if got.Acks == nil || !got.Acks.Complete || len(got.Acks.Replicas) != 2 || got.Switch.Phase != model.RolloutPromoted {
		t.Errorf("JSON status %+v", got)
	}
}

// A control plane without aggregated acks: the CLI falls back to the
// answering replica's own counts.
func TestWaitPromotedWithoutAcksField(t *testing.T) {
	behind := promoted(7, nil)
	behind.Proxies = traffic.ProxyCounts{Connected: 2, Acked: 1}
	addr := startPromoted(t, behind, behind, promoted(7, nil))
	code, stdout, stderr := run(t, "--addr", addr, "switch", "web", "--to", "green", "--wait")
	expect(t, code, stdout, stderr, 0)
	if !strings.Contains(stdout, "1/2 proxies ACKed (answering replica only)") {
		t.Errorf("stdout:\n%s", stdout)
	}
}

func TestWaitRolledBackDoesNotWaitForAcks(t *testing.T) {
	st := promoted(8, pendingOnR2(8, nil))
	st.Switch.Phase, st.Switch.Reason = model.RolloutRolledBack, "errors"
	addr := startPromoted(t, st)
	code, stdout, stderr := run(t, "--addr", addr, "switch", "web", "--to", "green", "--wait")
	expect(t, code, stdout, stderr, 10, "rolled back")
}
