package model

import "fmt"

// threeSlots is the fixture of the serving-set tests: blue b1..b3 and
// green g1..g3 on slots s1..s3, and builders for rolls and expectations.
type threeSlots struct {
	b1, b2, b3, g1, g2, g3 Endpoint
	blue, green            Fleet
}

// slotEndpoint is an instance id on a slot.
func slotEndpoint(id, slot string) Endpoint {
	return Endpoint{ID: id, Address: "10.0.0.1", Port: 80, Weight: 1, Slot: slot}
}

func newThreeSlots() threeSlots {
	ep := slotEndpoint
	f := threeSlots{b1: ep("b1", "s1"), b2: ep("b2", "s2"), b3: ep("b3", "s3"), g1: ep("g1", "s1"), g2: ep("g2", "s2"), g3: ep("g3", "s3")}
	f.blue = Fleet{Endpoints: []Endpoint{f.b1, f.b2, f.b3}}
	f.green = Fleet{Endpoints: []Endpoint{f.g1, f.g2, f.g3}}
	return f
}

func servingOn(e Endpoint) ServingEndpoint  { return ServingEndpoint{Endpoint: e} }
func servingOff(e Endpoint) ServingEndpoint { return ServingEndpoint{Endpoint: e, Draining: true} }

// rollOf is a blue → green roll whose slot i is in states[i].
func rollOf(phase RollPhase, states ...SlotState) *Roll {
	r := &Roll{From: Blue, To: Green, Phase: phase}
	for i, st := range states {
		n := fmt.Sprint(i + 1)
		r.Slots = append(r.Slots, Slot{Key: "s" + n, Old: "b" + n, New: "g" + n, State: st})
	}
	return r
}
