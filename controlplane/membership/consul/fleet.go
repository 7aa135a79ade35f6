package consul

import (
	"fmt"
	"sort"

	"github.com/hashicorp/consul/api"

	"github.com/bgctl/bg/controlplane/model"
)

// Service meta keys bg reads.
const (
	// VersionMeta is shown in status as the instance's version.
	VersionMeta = "version"
	// SlotMeta is a stateful instance's slot: its replacement carries the same value.
	SlotMeta = "slot"
	// StrategyMeta "rolling" marks a service stateful from Consul.
	StrategyMeta = "bg-strategy"
	// AffinityHeaderMeta names the session header of such a service.
	AffinityHeaderMeta = "bg-affinity-header"
)

// strategyHint reads bg-strategy and bg-affinity-header from passing instances.
func strategyHint(entries []*api.ServiceEntry) (rolling bool, header string) {
	for _, e := range entries {
		if e.Service == nil || e.Service.Meta[StrategyMeta] != "rolling" {
			continue
		}
		rolling = true
		if h := e.Service.Meta[AffinityHeaderMeta]; h != "" && header == "" {
			header = h
		}
	}
	return rolling, header
}

// toMembership colours passing instances into fleets. Instances that cannot
// be served (no colour, bad address or port) are skipped with a reason.
func toMembership(entries []*api.ServiceEntry, rule ColorRule) (model.Membership, []string) {
	var m model.Membership
	var skipped []string
	for _, e := range entries {
		s := e.Service
		if s == nil {
			continue
		}
		c, err := rule.colorOf(s)
		if err != nil {
			skipped = append(skipped, fmt.Sprintf("%s: %v", s.ID, err))
			continue
		}
		addr := s.Address
		if addr == "" && e.Node != nil {
			addr = e.Node.Address
		}
		if addr == "" {
			skipped = append(skipped, fmt.Sprintf("%s: no address", s.ID))
			continue
		}
		if s.Port < 1 || s.Port > 65535 {
			skipped = append(skipped, fmt.Sprintf("%s: port %d out of range", s.ID, s.Port))
			continue
		}
		ep := model.Endpoint{ID: s.ID, Address: addr, Port: s.Port, Weight: weight(s.Weights.Passing), Version: s.Meta[VersionMeta], Slot: s.Meta[SlotMeta]}
		if e.Node != nil {
			ep.Node = e.Node.Node
		}
		if c == model.Blue {
			m.Blue.Endpoints = append(m.Blue.Endpoints, ep)
		} else {
			m.Green.Endpoints = append(m.Green.Endpoints, ep)
		}
	}
	sortFleet(m.Blue)
	sortFleet(m.Green)
	return m, skipped
}

// weight clamps Consul's passing weight to 1..128 as Consul's own xDS does;
// 0 would be NACKed by gRPC.
func weight(w int) uint32 {
	switch {
	case w < 1:
		return 1
	case w > 128:
		return 128
	}
	return uint32(w)
}

func sortFleet(f model.Fleet) {
	sort.Slice(f.Endpoints, func(i, j int) bool {
		a, b := f.Endpoints[i], f.Endpoints[j]
		if a.ID != b.ID {
			return a.ID < b.ID
		}
		return a.Node < b.Node
	})
}
