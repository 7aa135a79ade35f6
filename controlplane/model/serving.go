package model

import (
	"cmp"
	"slices"
)

// ServingEndpoint is one host of a cluster during a roll. A draining host
// keeps its open sessions but gets no new ones.
type ServingEndpoint struct {
	Endpoint Endpoint
	Draining bool
}

// ServingSet is what the From colour's cluster carries while roll r runs:
// per slot the old host, its replacement or both, as the slot's state says,
// plus From hosts that joined after the roll began. An ended roll carries
// one whole fleet: the To fleet once completed, else the From fleet (also
// for a nil roll).
//
// Hosts are named by ID and taken from the fleets as they are now, so a
// host that left its fleet is left out: a slot never invents an endpoint.
// A From host under a slot's key but not the slot's old host is left out
// too: the key is the slot's ring-hash key, and a second host on it would
// split the slot's sessions. Order is stable: slots in roll order (old host
// first), then the joined hosts by ID. What proxies receive is Serving
// (rolling.go), which also returns the old host of a slot whose
// replacement left; ServingSet is the cautious count the roll invariants use.
func ServingSet(r *Roll, from, to Fleet) []ServingEndpoint {
	switch {
	case r == nil || r.Phase == RollRolledBack || r.Phase == RollAborted:
		return whole(from)
	case r.Phase == RollCompleted:
		return whole(to)
	}
	olds, news := byID(from), byID(to)
	var out []ServingEndpoint
	add := func(in map[string]Endpoint, id string, draining bool) {
		if e, ok := in[id]; ok {
			out = append(out, ServingEndpoint{Endpoint: e, Draining: draining})
		}
	}
	keys, slotted := map[string]bool{}, map[string]bool{}
	for _, s := range r.Slots {
		keys[s.Key], slotted[s.Old] = true, true
		switch s.State {
		case SlotPending, SlotRestored:
			add(olds, s.Old, false)
		case SlotDraining:
			add(olds, s.Old, true)
			add(news, s.New, false)
		case SlotBaking, SlotReplaced:
			add(news, s.New, false)
		case SlotRestoring:
			add(olds, s.Old, false)
			add(news, s.New, true)
		}
	}
	var joined []Endpoint
	for _, e := range from.Endpoints {
		if !keys[e.SlotKey()] && !slotted[e.ID] {
			joined = append(joined, e)
		}
	}
	slices.SortStableFunc(joined, func(a, b Endpoint) int { return cmp.Compare(a.ID, b.ID) })
	for _, e := range joined {
		out = append(out, ServingEndpoint{Endpoint: e})
	}
	return out
}

func whole(f Fleet) []ServingEndpoint {
	out := make([]ServingEndpoint, 0, len(f.Endpoints))
	for _, e := range f.Endpoints {
		out = append(out, ServingEndpoint{Endpoint: e})
	}
	return out
}

func byID(f Fleet) map[string]Endpoint {
	m := make(map[string]Endpoint, len(f.Endpoints))
	for _, e := range f.Endpoints {
		m[e.ID] = e
	}
	return m
}
