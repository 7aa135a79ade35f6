package consul

import (
	"testing"

	"github.com/hashicorp/consul/api"
)

// A reload adds and removes services: an added one is read at once, a
// removed one is no longer reported, and one added back gets a first read
// again even if its fleets did not change.
func TestSetServices(t *testing.T) {
	f := twoServices()
	s, r := startSource(t, f, "web")
	settle(t, s)
	if _, n := r.get("api"); n != 0 {
		t.Fatalf("api reported before it was watched: %d", n)
	}
	s.SetServices(map[string]string{"web": "", "api": ""})
	eventually(t, "api's first read", func() bool { _, n := r.get("api"); return n == 1 })
	if u, _ := r.get("api"); len(u.Membership.Blue.Endpoints) != 1 || len(u.Membership.Green.Endpoints) != 1 {
		t.Fatalf("api = %+v", u.Membership)
	}

	s.SetServices(map[string]string{"web": ""})
	settle(t, s)
	_, before := r.get("api")
	f.register("api", "api-g2", "n3", "green", "v2", api.HealthPassing)
	f.register("web", "web-g2", "n2", "green", "v2", api.HealthPassing)
	eventually(t, "web sees its new instance", func() bool { u, _ := r.get("web"); return len(u.Membership.Green.Endpoints) == 2 })
	settle(t, s)
	if _, n := r.get("api"); n != before {
		t.Fatalf("a removed service was still reported: %d updates, had %d", n, before)
	}

	s.SetServices(map[string]string{"web": "", "api": ""})
	eventually(t, "api read again", func() bool { u, n := r.get("api"); return n == before+1 && len(u.Membership.Green.Endpoints) == 2 })
}
