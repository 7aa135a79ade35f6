package traffic_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/bgctl/bg/controlplane/model"
	"github.com/bgctl/bg/controlplane/state/memstate"
	"github.com/bgctl/bg/controlplane/traffic"
)

// A subscriber is told of every change of a service's served state as it
// happens, and already reads the new state with TrafficState: each step
// of a judged switch, its promotion, an instant switch back; nothing once
// it has cancelled.
func TestSubscribeTellsEachChange(t *testing.T) {
	rt := newFakeRuntime(t)
	c := analysedController(t, rt, jsonStore{memstate.New()}, newFakeFleets(rt, 1000, 0.01), nil, false)
	type seen struct {
		gen   uint64
		green int
		phase model.RolloutPhase
	}
	var got []seen
	cancel := c.Subscribe(func(service string) {
		if service != "web" {
			t.Errorf("told of %q", service)
		}
		tr, err := c.TrafficState(service)
		if err != nil {
			t.Fatal(err)
		}
		s := seen{gen: tr.Generation, green: tr.GreenPercent}
		if tr.Rollout != nil {
			s.phase = tr.Rollout.Phase
		}
		got = append(got, s)
	})
	startSwitch(t, c)
	if tr, _ := c.TrafficState("web"); len(got) != 1 || got[0].phase != model.RolloutProgressing || got[0].gen != tr.Generation {
		t.Fatalf("after the start: %+v", got)
	}
	// The plan's steps (10, 50, 100) are judged every 2 s; the switch ends
	// promoted, each stored change told once, in order.
	for i := 0; i < 30 && running(t, c).Phase != model.RolloutPromoted; i++ {
		rt.Advance(500 * time.Millisecond)
	}
	last := got[len(got)-1]
	if last.phase != model.RolloutPromoted || last.green != 100 {
		t.Fatalf("last told: %+v (all: %+v)", last, got)
	}
	var greens []int
	for i, s := range got {
		if i > 0 && s.gen <= got[i-1].gen {
			t.Fatalf("told out of order or twice: %+v", got)
		}
		if !slices.Contains(greens, s.green) {
			greens = append(greens, s.green)
		}
	}
	if !slices.Equal(greens, []int{10, 50, 100}) {
		t.Fatalf("splits told %v, want every step: 10, 50, 100", greens)
	}
	// An instant switch back: told with the state it stored.
	n := len(got)
	if _, err := c.Switch(context.Background(), traffic.Request{Service: "web", To: model.Blue, Instant: true, Timeout: time.Second}); err != nil {
		t.Fatal(err)
	}
	if len(got) != n+1 || got[n].green != 0 {
		t.Fatalf("after the switch back: %+v", got[n:])
	}
	// Cancelled: no more.
	cancel()
	if _, err := c.Switch(context.Background(), traffic.Request{Service: "web", To: model.Green, Instant: true, Timeout: time.Second}); err != nil {
		t.Fatal(err)
	}
	rt.Advance(time.Second)
	if len(got) != n+1 {
		t.Fatalf("told after cancelling: %+v", got[n+1:])
	}
}
