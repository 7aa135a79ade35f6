package translator

import (
	"fmt"
	"slices"
	"testing"
	"time"

	endpoint "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"

	"github.com/bgctl/bg/controlplane/model"
)

// ringEntry is one EDS host as a ring-hash client places it: by its
// envoy.lb hash_key (gRFC A76), with its health and weight.
type ringEntry struct {
	Host, Status string
	Weight       uint32
}

// ring maps each hash_key of a load assignment to the hosts on it.
func ring(cla *endpoint.ClusterLoadAssignment) map[string][]ringEntry {
	out := map[string][]ringEntry{}
	for _, loc := range cla.GetEndpoints() {
		for _, lb := range loc.GetLbEndpoints() {
			key := lb.GetMetadata().GetFilterMetadata()[hashKeyFilter].GetFields()[hashKeyField].GetStringValue()
			out[key] = append(out[key], ringEntry{lb.GetEndpoint().GetHostname(), lb.GetHealthStatus().String(), lb.GetLoadBalancingWeight().GetValue()})
		}
	}
	for k := range out {
		slices.SortFunc(out[k], func(a, b ringEntry) int {
			if a.Host < b.Host {
				return -1
			}
			if a.Host > b.Host {
				return 1
			}
			return 0
		})
	}
	return out
}

// vanishView is a roll of n slots from blue to green: slots before mid are
// replaced, slot mid bakes, slot mid+1 drains, the rest are pending. Host i
// of each colour sits in slot "slot-i". Old hosts weigh 1 + i%3 so that a
// wrong host on a key shows in the weights too.
func vanishView(n, mid int, green []int) model.ServiceView {
	var slots []model.Slot
	var blue, greenF model.Fleet
	for i := range n {
		key := fmt.Sprintf("slot-%d", i)
		old, repl := fmt.Sprintf("kv-blue-%d", i), fmt.Sprintf("kv-green-%d", i)
		st := model.SlotPending
		switch {
		case i < mid:
			st = model.SlotReplaced
		case i == mid:
			st = model.SlotBaking
		case i == mid+1:
			st = model.SlotDraining
		}
		s := model.Slot{Key: key, Old: old, State: st, Since: rollStart}
		if st != model.SlotPending {
			s.New = repl
		}
		slots = append(slots, s)
		blue.Endpoints = append(blue.Endpoints, model.Endpoint{ID: old, Address: fmt.Sprintf("10.1.0.%d", i+1), Port: 7000, Weight: uint32(1 + i%3), Slot: key})
	}
	for _, i := range green {
		greenF.Endpoints = append(greenF.Endpoints, model.Endpoint{ID: fmt.Sprintf("kv-green-%d", i), Address: fmt.Sprintf("10.2.0.%d", i+1), Port: 7000, Weight: uint32(1 + i%3), Slot: fmt.Sprintf("slot-%d", i)})
	}
	roll := &model.Roll{
		ID: "roll-3", From: model.Blue, To: model.Green, Phase: model.RollRolling, Slots: slots, StartedAt: rollStart,
		Params: model.RollParams{MaxUnavailable: 2, MinAvailable: 1, DrainTimeout: model.Duration(time.Minute),
			Bake: model.Duration(time.Minute), ReplaceTimeout: model.Duration(5 * time.Minute), Interval: model.Duration(time.Second)},
	}
	return model.ServiceView{
		Service:    model.Service{Name: "kv", ListenerPort: 10010, Protocol: model.ProtocolHTTP2, Strategy: model.StrategyRolling, Affinity: model.Affinity{Header: "x-session"}},
		Membership: model.Membership{Blue: blue, Green: greenF},
		Traffic:    model.Traffic{Stable: model.Blue, Target: model.Green, Phase: model.PhaseSwitching, Generation: 9, Roll: roll},
	}
}

// Invariant 5, make-before-break on the way back: the EDS update pushed on
// the membership read that loses a replacement puts the slot's old host
// back on the slot's hash key, serving, and leaves every other slot's
// hosts, health and weights exactly as they were, so no session of an
// untouched slot moves (an A76 client rebuilds its ring from the same keys
// and weights).
func TestVanishedReplacementOldHostBackInSameUpdate(t *testing.T) {
	const n, mid = 8, 3 // slot-0..2 replaced, slot-3 baking, slot-4 draining, slot-5..7 pending
	all := []int{0, 1, 2, 3, 4, 5, 6, 7}
	for _, gone := range []int{0, 2, 3, 4} {
		t.Run(fmt.Sprintf("replacement of slot-%d", gone), func(t *testing.T) {
			before := vanishView(n, mid, all)
			after := vanishView(n, mid, slices.DeleteFunc(slices.Clone(all), func(i int) bool { return i == gone }))
			was := ring(Endpoints(before)["kv-blue"].(*endpoint.ClusterLoadAssignment))
			now := ring(Endpoints(after)["kv-blue"].(*endpoint.ClusterLoadAssignment))
			key := fmt.Sprintf("slot-%d", gone)
			want := []ringEntry{{fmt.Sprintf("kv-blue-%d", gone), "HEALTHY", uint32(1 + gone%3)}}
			if !slices.Equal(now[key], want) {
				t.Errorf("%s after its replacement left: %v, want the old host back serving %v (was %v)", key, now[key], want, was[key])
			}
			for k, hs := range was {
				if k != key && !slices.Equal(now[k], hs) {
					t.Errorf("untouched %s changed in the same update: %v -> %v", k, hs, now[k])
				}
			}
			if len(now) != n {
				t.Errorf("%d hash keys on the ring, want %d: %v", len(now), n, now)
			}
		})
	}
}
