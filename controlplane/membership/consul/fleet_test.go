package consul

import (
	"testing"

	"github.com/hashicorp/consul/api"
)

func entry(id string, tags []string, meta map[string]string, addr string, port, w int) *api.ServiceEntry {
	return &api.ServiceEntry{
		Node:    &api.Node{Node: "n1", Address: "10.9.9.9"},
		Service: &api.AgentService{ID: id, Tags: tags, Meta: meta, Address: addr, Port: port, Weights: api.AgentWeights{Passing: w}},
	}
}

func TestToMembershipByTag(t *testing.T) {
	rule := ColorRule{BlueTag: "blue", GreenTag: "green"}
	m, skipped := toMembership([]*api.ServiceEntry{
		entry("b2", []string{"blue"}, map[string]string{"version": "v1"}, "10.0.0.2", 80, 1),
		entry("b1", []string{"blue", "x"}, nil, "", 80, 500),
		entry("g1", []string{"green"}, map[string]string{"version": "v2"}, "10.0.0.3", 80, 0),
		entry("both", []string{"blue", "green"}, nil, "10.0.0.4", 80, 1),
		entry("none", nil, nil, "10.0.0.5", 80, 1),
		entry("badport", []string{"green"}, nil, "10.0.0.6", 0, 1),
	}, rule)
	if len(m.Blue.Endpoints) != 2 || m.Blue.Endpoints[0].ID != "b1" {
		t.Fatalf("blue = %+v", m.Blue.Endpoints)
	}
	if b1 := m.Blue.Endpoints[0]; b1.Address != "10.9.9.9" || b1.Weight != 128 {
		t.Errorf("b1 should fall back to node address and clamp weight: %+v", b1)
	}
	if g := m.Green.Endpoints; len(g) != 1 || g[0].Weight != 1 || g[0].Version != "v2" {
		t.Errorf("green = %+v", g)
	}
	if len(skipped) != 3 {
		t.Errorf("skipped = %v, want both, none, badport", skipped)
	}
	if v := m.Blue.Versions(); len(v) != 1 || v[0] != "v1" {
		t.Errorf("versions = %v", v)
	}
}

func TestToMembershipByMeta(t *testing.T) {
	rule := ColorRule{BlueTag: "blue", GreenTag: "green", MetaKey: "color"}
	m, skipped := toMembership([]*api.ServiceEntry{
		entry("a", []string{"green"}, map[string]string{"color": "blue"}, "10.0.0.1", 80, 1),
		entry("b", nil, map[string]string{"color": "green"}, "10.0.0.2", 80, 1),
		entry("c", []string{"blue"}, nil, "10.0.0.3", 80, 1),
		entry("d", nil, map[string]string{"color": "red"}, "10.0.0.4", 80, 1),
	}, rule)
	if len(m.Blue.Endpoints) != 1 || m.Blue.Endpoints[0].ID != "a" || len(m.Green.Endpoints) != 1 {
		t.Errorf("membership = %+v", m)
	}
	if len(skipped) != 2 {
		t.Errorf("skipped = %v", skipped)
	}
}

func TestNextIndex(t *testing.T) {
	cases := []struct{ prev, got, want uint64 }{
		{0, 10, 10}, {10, 10, 10}, {10, 12, 12}, {10, 5, 0}, {0, 0, 1}, {5, 0, 0},
	}
	for _, c := range cases {
		if got := nextIndex(c.prev, c.got); got != c.want {
			t.Errorf("nextIndex(%d,%d) = %d, want %d", c.prev, c.got, got, c.want)
		}
	}
}
