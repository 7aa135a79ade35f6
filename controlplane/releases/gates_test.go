package releases_test

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"

	apiv1 "github.com/bgctl/bg/controlplane/api/v1"
	"github.com/bgctl/bg/controlplane/gate"
	"github.com/bgctl/bg/controlplane/model"
	"github.com/bgctl/bg/controlplane/release"
)

// fakeGates answers release gates: a gate passes while pass[name] is true.
type fakeGates struct {
	mu    sync.Mutex
	pass  map[string]bool
	calls []gate.Payload
}

func (f *fakeGates) Call(_ context.Context, g model.Gate, p gate.Payload) model.GateResult {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, p)
	if f.pass[g.Name] {
		return model.GateResult{Gate: g.Name, Stage: p.Stage, Passed: true, Status: 200, Detail: "ok"}
	}
	return model.GateResult{Gate: g.Name, Stage: p.Stage, Status: 503, Detail: "not yet"}
}

func (f *fakeGates) set(name string, pass bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.pass[name] = pass
}

func (f *fakeGates) Calls() []gate.Payload {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.calls)
}

func relGate(name, onFailure string, stages ...string) model.Gate {
	return model.Gate{Name: name, URL: "http://gates.test/" + name, Stages: stages, Timeout: model.Duration(time.Second), OnFailure: onFailure}
}

// A group's pre gate holds the release: no member starts until it passes;
// it is called again every tick meanwhile. A release of --services has
// no gates.
func TestPreGateBlocksUntilItPasses(t *testing.T) {
	fg := &fakeGates{pass: map[string]bool{}}
	r := newRig(t, with(chain, func(o *rigOptions) {
		o.groupGates = map[string][]model.Gate{"checkout": {relGate("change", model.GateHold, model.GatePre)}}
		o.gates = fg
	}))
	ctx := context.Background()
	st, err := r.exec.Start(ctx, apiv1.ReleaseRequest{Group: "checkout"})
	if err != nil {
		t.Fatal(err)
	}
	if st.Release.Gate != model.GatePre || st.Release.Phase != release.Running {
		t.Fatalf("started: %s, gate %q", st.Release.Phase, st.Release.Gate)
	}
	r.rt.Advance(0)
	r.rt.Advance(3 * time.Second)
	if got := r.rec.Calls(); len(got) != 0 {
		t.Fatalf("members switched while the pre gate fails: %v", got)
	}
	calls := fg.Calls()
	if len(calls) != 4 { // at the start and at each of 3 ticks
		t.Fatalf("%d gate calls in 3 ticks, want 4: %+v", len(calls), calls)
	}
	if p := calls[0]; p.Service != "checkout" || p.Switch != "checkout-1" || p.Stage != model.GatePre || p.Steps != 3 {
		t.Fatalf("payload %+v, want the release checkout-1 at stage pre", p)
	}
	rel := r.stored("checkout-1")
	if rel.Gate != model.GatePre || len(rel.GateResults) != 1 || rel.GateResults[0].Attempts != 4 || rel.GateResults[0].Passed {
		t.Fatalf("stored gate %q results %+v", rel.Gate, rel.GateResults)
	}
	for _, m := range rel.Members {
		if m.Phase != release.MemberWaiting {
			t.Fatalf("%s %s while the pre gate fails", m.Service, m.Phase)
		}
	}
	if owner, _ := r.exec.Guard("api"); owner != "checkout-1" {
		t.Fatalf("api owned by %q while the release waits for its gate", owner)
	}

	fg.set("change", true)
	r.rt.Advance(time.Second)
	want := []string{"switch auth green", "switch api green", "switch web green"}
	if got := r.rec.Calls(); !slices.Equal(got, want) {
		t.Fatalf("switches %v, want %v", got, want)
	}
	if rel = r.stored("checkout-1"); rel.Phase != release.Promoted || rel.Gate != "" || !rel.GateResults[0].Passed {
		t.Fatalf("release %s gate %q results %+v", rel.Phase, rel.Gate, rel.GateResults)
	}

	// A release of --services has no gates, even of the same services.
	n := len(fg.Calls())
	if _, err := r.exec.Start(ctx, apiv1.ReleaseRequest{Name: "adhoc", Services: []string{"web", "api", "auth"}}); err != nil {
		t.Fatal(err)
	}
	r.rt.Advance(0)
	if rel = r.stored("adhoc-1"); rel.Phase != release.Promoted || len(rel.Gates) != 0 || len(fg.Calls()) != n {
		t.Fatalf("adhoc release %s with gates %v; %d gate calls", rel.Phase, rel.Gates, len(fg.Calls())-n)
	}
}

// A failing post rollback gate takes every promoted member back,
// consumers first, each after the one above it is confirmed; the release
// ends rolled_back with cause gate_failed naming the gate.
func TestFailingPostGateRollsBackConsumersFirst(t *testing.T) {
	fg := &fakeGates{pass: map[string]bool{}}
	r := newRig(t, with(chain, func(o *rigOptions) {
		o.groupGates = map[string][]model.Gate{"checkout": {relGate("soak", model.GateRollback, model.GatePost)}}
		o.gates = fg
	}))
	if _, err := r.exec.Start(context.Background(), apiv1.ReleaseRequest{Group: "checkout"}); err != nil {
		t.Fatal(err)
	}
	r.rt.Advance(0)
	r.rt.Advance(5 * time.Second)
	want := []string{"switch auth green", "switch api green", "switch web green", "back web blue", "back api blue", "back auth blue"}
	if got := r.rec.Calls(); !slices.Equal(got, want) {
		t.Fatalf("calls %v, want %v", got, want)
	}
	if calls := fg.Calls(); len(calls) != 1 || calls[0].Stage != model.GatePost {
		t.Fatalf("gate calls %+v, want one at stage post", calls)
	}
	rel := r.stored("checkout-1")
	if rel.Phase != release.RolledBack || rel.Cause != model.CauseGateFailed || rel.Member != "" || rel.Reason != "release gate soak (post) failed: HTTP 503: not yet" {
		t.Fatalf("release %s member %q cause %q reason %q", rel.Phase, rel.Member, rel.Cause, rel.Reason)
	}
	for _, s := range []string{"web", "api", "auth"} {
		if p := phaseOf(rel, s); p != release.MemberRolledBack {
			t.Errorf("%s: %s, want rolled_back", s, p)
		}
		if tr := r.traffic(s); tr.Serving() != model.Blue {
			t.Errorf("%s serves %q", s, tr.Serving())
		}
	}
}
